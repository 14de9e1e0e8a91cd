/*
 * The benchmark's load generator: a closed loop of `concurrency` clients over keep-alive connections,
 * each sending its next request when the last one is answered, for a fixed count (bounded by a deadline).
 * Node builtins only: the harness ships this file, transpiled, to a sandbox host and runs it with the
 * host's bare `node`, where the hop it measures is reachable (a unix socket, the gateway's loopback):
 *
 *   node loadgen.js '<LoadSpec as JSON>'     → one line of JSON on stdout: LoadResult
 *
 * Streamed requests (`stream: true`) also record when each SSE chunk that carries a token arrived.
 */
import * as http from "node:http";

export interface LoadSpec {
    /** TCP host and port, or a unix socket. */
    host?: string;
    port?: number;
    socketPath?: string;
    path: string;
    headers: Record<string, string>;
    /** The POST body (JSON text). */
    body: string;
    concurrency: number;
    /** Answered first and not recorded: connections open, caches warm. */
    warmup: number;
    requests: number;
    /** The run stops issuing requests after this long (the count not reached is reported). */
    maxSeconds: number;
    /** SSE answers: record the arrival of every chunk that carries a token. */
    stream?: boolean;
}

export interface LoadResult {
    /** Latency of each recorded request, microseconds, in completion order. */
    latenciesUs: number[];
    /** Wall time of the recorded part. */
    seconds: number;
    /** Requests answered, warm-up included (the divisor of CPU per request). */
    answered: number;
    /** Failures by cause ("status 502", "ECONNRESET"), warm-up included. */
    errors: Record<string, number>;
    /** The generator's own CPU, microseconds (user + system), whole run. */
    cpuUs: number;
    /** Streams: microseconds to the first token chunk, and between consecutive token chunks. */
    firstChunkUs?: number[];
    chunkGapsUs?: number[];
}

/** The token of one SSE `data:` line, or undefined for chunks without one (role, finish, usage, [DONE]). */
export function tokenOf(line: string): string | undefined {
    const data = line.startsWith("data:") ? line.slice(5).trim() : "";
    if (data === "" || data === "[DONE]") {
        return undefined;
    }
    try {
        const chunk = JSON.parse(data) as { choices?: { delta?: { content?: string }; text?: string }[] };
        const choice = chunk.choices?.[0];
        const token = choice?.delta?.content ?? choice?.text;
        return token ? token : undefined;
    } catch {
        return undefined;
    }
}

interface Outcome {
    ok: boolean;
    cause?: string;
    /** Streams: hrtime (ns) of each token chunk's arrival. */
    tokenTimes?: bigint[];
}

function send(spec: LoadSpec, agent: http.Agent): Promise<Outcome> {
    return new Promise((resolve) => {
        const req = http.request(
            {
                host: spec.host,
                port: spec.port,
                socketPath: spec.socketPath,
                path: spec.path,
                method: "POST",
                agent,
                timeout: 30000,
                headers: { "content-type": "application/json", "content-length": Buffer.byteLength(spec.body), ...spec.headers },
            },
            (res) => {
                const tokenTimes: bigint[] = [];
                let pending = "";
                res.setEncoding("utf8");
                res.on("data", (text: string) => {
                    if (!spec.stream) {
                        return;
                    }
                    const now = process.hrtime.bigint();
                    pending += text;
                    const lines = pending.split("\n");
                    pending = lines.pop() ?? "";
                    for (const line of lines) {
                        if (tokenOf(line) !== undefined) {
                            tokenTimes.push(now);
                        }
                    }
                });
                res.on("end", () =>
                    resolve(res.statusCode === 200 ? { ok: true, ...(spec.stream ? { tokenTimes } : {}) } : { ok: false, cause: `status ${res.statusCode}` }),
                );
                res.on("error", (err: NodeJS.ErrnoException) => resolve({ ok: false, cause: err.code ?? err.message }));
            },
        );
        req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
        req.on("error", (err: NodeJS.ErrnoException) => resolve({ ok: false, cause: err.code ?? err.message }));
        req.end(spec.body);
    });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency, maxFreeSockets: spec.concurrency });
    const cpuStart = process.cpuUsage();
    const errors: Record<string, number> = {};
    const latenciesUs: number[] = [];
    const firstChunkUs: number[] = [];
    const chunkGapsUs: number[] = [];
    let answered = 0;
    const deadline = Date.now() + spec.maxSeconds * 1000;

    // One phase: `count` requests by `concurrency` clients in a closed loop.
    const phase = async (count: number, record: boolean) => {
        let issued = 0;
        const client = async () => {
            while (issued < count && Date.now() < deadline) {
                issued++;
                const t0 = process.hrtime.bigint();
                const outcome = await send(spec, agent);
                const t1 = process.hrtime.bigint();
                answered++;
                if (!outcome.ok) {
                    errors[outcome.cause ?? "?"] = (errors[outcome.cause ?? "?"] ?? 0) + 1;
                    continue;
                }
                if (!record) {
                    continue;
                }
                latenciesUs.push(Number((t1 - t0) / 1000n));
                const times = outcome.tokenTimes ?? [];
                if (times.length > 0) {
                    firstChunkUs.push(Number((times[0] - t0) / 1000n));
                    for (let i = 1; i < times.length; i++) {
                        chunkGapsUs.push(Number((times[i] - times[i - 1]) / 1000n));
                    }
                }
            }
        };
        await Promise.all(Array.from({ length: spec.concurrency }, client));
    };

    await phase(spec.warmup, false);
    const started = process.hrtime.bigint();
    await phase(spec.requests, true);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    agent.destroy();
    const cpu = process.cpuUsage(cpuStart);
    return {
        latenciesUs,
        seconds,
        answered,
        errors,
        cpuUs: cpu.user + cpu.system,
        ...(spec.stream ? { firstChunkUs, chunkGapsUs } : {}),
    };
}

if (require.main === module) {
    runLoad(JSON.parse(process.argv[2] ?? "{}") as LoadSpec).then(
        (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
        (err: Error) => {
            process.stderr.write(`loadgen: ${err.stack ?? err.message}\n`);
            process.exit(1);
        },
    );
}
