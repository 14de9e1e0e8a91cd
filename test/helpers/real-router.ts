/*
 * Start the REAL SGLang router (smg 1.x or sglang-router 0.3.x, from the host venvs that
 * scripts/setup/router.sh builds) on free loopback ports, for integration tests.
 *
 *   const router = await startRealRouter({ policy: "round_robin" });
 *   await fetch(`${router.url}/workers`, { method: "POST", ... });
 *   await router.stop();
 *
 * Facts about the router: docs/router-smg-1.md, docs/router-0.3.2.md.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { gatewayCacheDir } from "./cache";
import { freePort } from "./ports";
import { terminate, track } from "./child-processes";
import { generationOf, generations } from "../../components/routers/sglang/generations";

/** Every router version the library installs, newest generation first: the integration suites run against each. */
export const ROUTER_VERSIONS = generations.flatMap((g) => g.versions);

/** The python of a router version's venv; throws a clear error when router.sh has not been run. */
export function routerPython(version: string): string {
    const generation = generationOf(version);
    if (!generation) throw new Error(`no router generation has version ${version}`);
    const py = path.join(gatewayCacheDir(), "routers", `${generation.packageName}-${version}`, "bin", "python");
    if (!fs.existsSync(py)) {
        throw new Error(`router venv missing: ${py} does not exist; run \`bash scripts/setup/router.sh\` first`);
    }
    return py;
}

/** true when nothing listens on 127.0.0.1:port right now */
export function portIsFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.unref();
        srv.once("error", () => resolve(false));
        srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
}

/**
 * Linux: does process `pid` own the LISTEN socket on 127.0.0.1:port? (/proc/net/tcp + /proc/pid/fd)
 * Guards against a /health answer from ANOTHER router that holds the port: a router that cannot
 * bind exits with "Address already in use (os error 98)" only after ~1s.
 * Returns undefined where /proc is not available.
 */
export function ownsListener(pid: number, port: number): boolean | undefined {
    let table: string;
    try {
        table = fs.readFileSync("/proc/net/tcp", "utf8");
    } catch {
        return undefined;
    }
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    const inodes = new Set<string>();
    for (const line of table.split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f[1] === want && f[3] === "0A") inodes.add(f[9]);
    }
    if (inodes.size === 0) return false;
    let fds: string[];
    try {
        fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
        return undefined;
    }
    for (const fd of fds) {
        try {
            const m = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
            if (m !== null && inodes.has(m[1])) return true;
        } catch {
            /* fd closed meanwhile */
        }
    }
    return false;
}

export interface RealRouterOptions {
    /** router version (default: the newest generation's, smg) */
    version?: string;
    /** --policy (default round_robin: deterministic for tests) */
    policy?: string;
    /** --api-key: then admin and inference routes need `Authorization: Bearer <key>` */
    apiKey?: string;
    /** fixed ports; default: free ports */
    port?: number;
    prometheusPort?: number;
    /** more CLI flags, e.g. ["--health-check-interval-secs", "1"] */
    args?: string[];
    /** how long to wait for GET /health == 200 (default 30000) */
    startTimeoutMs?: number;
    /** router stdout+stderr go here (default: a fresh file under os.tmpdir()) */
    logFile?: string;
    env?: NodeJS.ProcessEnv;
}

export interface RealRouter {
    /** http://127.0.0.1:<port> */
    url: string;
    port: number;
    prometheusPort: number;
    /** http://127.0.0.1:<prometheusPort>/metrics */
    metricsUrl: string;
    pid: number;
    logFile: string;
    /** the router log without ANSI colors (0.3.2 always colors its console output) */
    logs(): string;
    /** SIGTERM the process group, SIGKILL after timeoutMs (default 10000); resolves once it exited */
    stop(timeoutMs?: number): Promise<void>;
}

export function stripAnsi(s: string): string {
    // eslint-disable-next-line no-control-regex
    return s.replace(/\x1b\[[0-9;]*m/g, "");
}

function tail(s: string, lines = 30): string {
    return s.split("\n").slice(-lines).join("\n");
}

async function httpStatus(url: string, timeoutMs: number): Promise<number | string> {
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        return res.status;
    } catch (err) {
        return (err as Error).message;
    }
}

/** Start one router; retries with new ports if the chosen port was taken meanwhile. */
export async function startRealRouter(opts: RealRouterOptions = {}): Promise<RealRouter> {
    const attempts = opts.port === undefined ? 3 : 1;
    let lastErr: Error | undefined;
    for (let i = 0; i < attempts; i++) {
        try {
            return await startOnce(opts);
        } catch (err) {
            lastErr = err as Error;
            if (!/address already in use|Address in use|EADDRINUSE/i.test(lastErr.message)) throw lastErr;
        }
    }
    throw lastErr;
}

async function startOnce(opts: RealRouterOptions): Promise<RealRouter> {
    const version = opts.version ?? ROUTER_VERSIONS[0];
    const python = routerPython(version);
    const generation = generationOf(version)!;
    const port = opts.port ?? (await freePort());
    let prometheusPort = opts.prometheusPort ?? (await freePort());
    while (prometheusPort === port) prometheusPort = await freePort();
    for (const [flag, p] of [
        ["--port", port],
        ["--prometheus-port", prometheusPort],
    ] as const) {
        if (!(await portIsFree(p))) {
            // (0.3.2 exits with "Address already in use (os error 98)"; a busy Prometheus port is a panic)
            throw new Error(`cannot start the router: ${flag} ${p} on 127.0.0.1 is in use (EADDRINUSE)`);
        }
    }
    const logFile = opts.logFile ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sglang-router-")), "router.log");
    const args = [
        "-m",
        generation.launchModule,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--prometheus-host",
        "127.0.0.1",
        "--prometheus-port",
        String(prometheusPort),
        "--policy",
        opts.policy ?? "round_robin",
        ...(opts.apiKey !== undefined ? ["--api-key", opts.apiKey] : []),
        ...(opts.args ?? []),
    ];
    const out = fs.openSync(logFile, "a");
    const child = spawn(python, args, {
        detached: true, // own process group: stop() kills the whole group
        stdio: ["ignore", out, out],
        env: { ...process.env, ...opts.env },
    });
    fs.closeSync(out);
    track(child);
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exitPromise = new Promise<void>((resolve) => {
        child.once("exit", (code, signal) => {
            exited = { code, signal };
            resolve();
        });
    });
    const logs = (): string => {
        try {
            return stripAnsi(fs.readFileSync(logFile, "utf8"));
        } catch {
            return "";
        }
    };
    const url = `http://127.0.0.1:${port}`;
    const stop = async (timeoutMs = 10_000): Promise<void> => {
        if (exited !== undefined) return;
        await terminate(child, exitPromise, timeoutMs);
    };

    // wait for GET /health == 200
    const timeoutMs = opts.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last: number | string = "not tried";
    let failure: string | undefined;
    child.once("error", (e) => {
        failure = `cannot spawn ${python}: ${e.message}`;
    });
    for (;;) {
        if (failure !== undefined) break;
        if (exited !== undefined) {
            failure = `router exited (code ${exited.code}, signal ${exited.signal}) before answering /health`;
            break;
        }
        last = await httpStatus(`${url}/health`, 1000);
        if (last === 200) {
            const mine = ownsListener(child.pid as number, port);
            if (mine !== false) break;
            last = `200 from a process other than pid ${child.pid}`;
        }
        if (Date.now() > deadline) {
            failure = `router did not answer GET ${url}/health with 200 within ${timeoutMs}ms (last: ${last})`;
            break;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    if (failure !== undefined) {
        await stop(2000);
        throw new Error(`${failure}\n--- ${logFile} (tail) ---\n${tail(logs())}`);
    }
    return {
        url,
        port,
        prometheusPort,
        metricsUrl: `http://127.0.0.1:${prometheusPort}/metrics`,
        pid: child.pid as number,
        logFile,
        logs,
        stop,
    };
}
