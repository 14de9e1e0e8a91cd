/*
 * Start fake SGLang workers (test/fixtures/fake-worker.ts) as child processes.
 *
 *   const fleet = await startFakeWorkers(2, { namePrefix: "replica" });   // free loopback ports
 *   fleet.workers[0].url      // http://127.0.0.1:<port>, name "replica-0"
 *   await fleet.stop();
 *
 *   await startFakeWorkers(1, { unixSocketDir: "/tmp/x" });               // unix:/tmp/x/worker-0.sock
 *
 * Ports are race-free: each worker listens on port 0 and reports the port on its ready line.
 * Node builtins only.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { terminate, track } from "./child-processes";

const REPO = path.resolve(__dirname, "..", "..");
export const FAKE_WORKER_TS = path.join(REPO, "test", "fixtures", "fake-worker.ts");

export interface FakeWorkerSpawnOptions {
    name?: string;
    /** listen on this unix socket instead of a TCP port */
    unixSocket?: string;
    /** fixed TCP port (default 0 = free port) */
    port?: number;
    /** more fake-worker flags, e.g. ["--tokens-per-second", "20", "--fail-health"] */
    args?: string[];
    env?: NodeJS.ProcessEnv;
    /** a compiled fake-worker.js to run with bare node instead of the .ts via ts-node */
    script?: string;
    /** bound for "ready line + GET /health == 200" (default 20000) */
    startTimeoutMs?: number;
    /** wait for /health 200 (default true; set false with --fail-health) */
    waitHealthy?: boolean;
}

export interface FakeWorkerProc {
    name: string;
    /** http://127.0.0.1:<port>, or unix:<path> for socket workers */
    url: string;
    port?: number;
    socketPath?: string;
    pid: number;
    /** stdout+stderr so far (ready line, one line per request) */
    logs(): string;
    /** number of logged requests matching METHOD and path prefix, e.g. requestCount("POST", "/v1/chat") */
    requestCount(method: string, pathPrefix: string): number;
    /** SIGTERM, SIGKILL after timeoutMs (default 5000) */
    stop(timeoutMs?: number): Promise<void>;
}

export interface FakeWorkerFleet {
    workers: FakeWorkerProc[];
    stop(): Promise<void>;
}

export interface FakeWorkersOptions extends Omit<FakeWorkerSpawnOptions, "name" | "unixSocket" | "port"> {
    /** names are `${namePrefix}-${i}` (default "worker") */
    namePrefix?: string;
    /** when set, worker i listens on `${unixSocketDir}/${namePrefix}-${i}.sock` */
    unixSocketDir?: string;
}

/** GET path over TCP or a unix socket; resolves the status code or an error message. */
export function getStatus(target: { port?: number; socketPath?: string }, urlPath: string, timeoutMs = 1000): Promise<number | string> {
    return new Promise((resolve) => {
        const req = http.request(
            {
                host: "127.0.0.1",
                port: target.port,
                socketPath: target.socketPath,
                path: urlPath,
                method: "GET",
                timeout: timeoutMs,
                agent: false,
            },
            (res) => {
                res.resume();
                res.on("end", () => resolve(res.statusCode ?? 0));
            },
        );
        req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
        req.on("error", (e) => resolve(e.message));
        req.end();
    });
}

export async function startFakeWorker(opts: FakeWorkerSpawnOptions = {}): Promise<FakeWorkerProc> {
    const flags: string[] = [];
    if (opts.unixSocket !== undefined) flags.push("--unix-socket", opts.unixSocket);
    else flags.push("--port", String(opts.port ?? 0));
    if (opts.name !== undefined) flags.push("--name", opts.name);
    flags.push(...(opts.args ?? []));
    const argv =
        opts.script !== undefined
            ? [opts.script, ...flags]
            : ["-r", require.resolve("ts-node/register/transpile-only", { paths: [REPO] }), FAKE_WORKER_TS, ...flags];
    const child = spawn(process.execPath, argv, {
        cwd: REPO,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "1", ...opts.env },
    });
    track(child);
    let output = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (output += d));
    let exited: string | undefined;
    const exitPromise = new Promise<void>((resolve) => {
        child.once("exit", (code, sig) => {
            exited = `exited (code ${code}, signal ${sig})`;
            resolve();
        });
    });
    child.once("error", (e) => (exited = `cannot spawn: ${e.message}`));

    const stop = async (timeoutMs = 5000): Promise<void> => {
        if (exited !== undefined) return;
        await terminate(child, exitPromise, timeoutMs);
    };
    const fail = async (why: string): Promise<never> => {
        await stop(1000);
        throw new Error(`fake worker ${opts.name ?? ""} ${why}\n--- output ---\n${output.split("\n").slice(-20).join("\n")}`);
    };

    const timeoutMs = opts.startTimeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    // 1. ready line: "fake-worker <name> ready on <url> (...)"
    let ready: RegExpMatchArray | null = null;
    while (ready === null) {
        ready = output.match(/^fake-worker (\S+) ready on (\S+)/m);
        if (ready !== null) break;
        if (exited !== undefined) return fail(`${exited} before its ready line`);
        if (Date.now() > deadline) return fail(`printed no ready line within ${timeoutMs}ms`);
        await new Promise((r) => setTimeout(r, 25));
    }
    const name = ready[1];
    const url = ready[2];
    const portMatch = url.match(/^http:\/\/127\.0\.0\.1:(\d+)$/);
    const port = portMatch !== null ? Number(portMatch[1]) : undefined;
    const socketPath = url.startsWith("unix:") ? url.slice("unix:".length) : undefined;
    if (port === undefined && socketPath === undefined) return fail(`reported an unexpected address ${url}`);

    // 2. GET /health == 200
    if (opts.waitHealthy !== false) {
        let last: number | string = "not tried";
        while (last !== 200) {
            last = await getStatus({ port, socketPath }, "/health");
            if (last === 200) break;
            if (exited !== undefined) return fail(`${exited} before /health answered 200`);
            if (Date.now() > deadline) return fail(`GET /health not 200 within ${timeoutMs}ms (last: ${last})`);
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    const requestCount = (method: string, prefix: string): number =>
        output.split("\n").filter((l) => {
            const m = l.match(/^\S+ \S+ (\S+) (\S+) \d{3} /);
            return m !== null && m[1] === method && m[2].startsWith(prefix);
        }).length;

    return { name, url, port, socketPath, pid: child.pid as number, logs: () => output, requestCount, stop };
}

export async function startFakeWorkers(n: number, opts: FakeWorkersOptions = {}): Promise<FakeWorkerFleet> {
    const prefix = opts.namePrefix ?? "worker";
    if (opts.unixSocketDir !== undefined) fs.mkdirSync(opts.unixSocketDir, { recursive: true });
    const { namePrefix: _p, unixSocketDir, ...common } = opts;
    void _p;
    const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) =>
            startFakeWorker({
                ...common,
                name: `${prefix}-${i}`,
                unixSocket: unixSocketDir !== undefined ? path.join(unixSocketDir, `${prefix}-${i}.sock`) : undefined,
            }),
        ),
    );
    const workers = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const stop = async (): Promise<void> => {
        await Promise.all(workers.map((w) => w.stop()));
    };
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) {
        await stop();
        throw failed.reason;
    }
    return { workers, stop };
}
