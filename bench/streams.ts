// Streams: does each chunk reach the client when the worker sends it? Time to the first token chunk and
// the gaps between token chunks, direct on the replica host, through the tunnel alone and through the
// whole gateway, side by side, at a slow and a fast token pace.
import { replicaPaths } from "../components/naming";
import { sandboxState } from "../test/helpers/sandbox";
import type { HostSession } from "./hosts";
import type { BenchMode } from "./mode";
import { fmt, median, pct, percentile } from "./stats";
import type { Table } from "./table";
import { chatBody, modelServerPort, service, type Hop } from "./topology";

/** The paths streams are compared on: the data path's, and an experiment beside the tunnel. */
export const streamHops = ["direct", "tunnel", "tunnelNoSession", "gateway"];

/**
 * The comparison: a second tunnel to the same model server, the same as the gateway's but as it ran before
 * 0.3, with `-N` (no session) instead of a session with a pty. sshd sets TCP_NODELAY on its connection only
 * for sessions with a pty: `-N`'s chunks may wait for the ACK of the previous one.
 */
const noSessionSocket = "/run/sgw-bench-nosession.sock";
const noSessionPidFile = "/run/sgw-bench-nosession.pid";

export const noSessionLabel = "+ SSH tunnel with -N, no session (before 0.3: no TCP_NODELAY; comparison)";

/** A path a stream is measured on: where the generator runs and what it sends to. */
interface StreamPath {
    variant: string;
    from: Hop["from"];
    target: Hop["target"];
}

async function startNoSessionTunnel(gateway: HostSession): Promise<StreamPath> {
    const paths = replicaPaths(service, 0);
    const replicaHost = sandboxState().hosts.r1.address;
    await gateway.run(
        `setsid nohup ssh -N -i ${paths.tunnelKey} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${paths.tunnelKnownHosts} ` +
            `-o ExitOnForwardFailure=yes -o StreamLocalBindUnlink=yes -L ${noSessionSocket}:127.0.0.1:${modelServerPort} root@${replicaHost} ` +
            `</dev/null >/dev/null 2>&1 & echo $! > ${noSessionPidFile}; for i in $(seq 50); do [ -S ${noSessionSocket} ] && exit 0; sleep 0.2; done; exit 1`,
    );
    return { variant: "tunnelNoSession", from: "gw", target: { socketPath: noSessionSocket, headers: {} } };
}

async function stopNoSessionTunnel(gateway: HostSession): Promise<void> {
    await gateway.run(`[ -f ${noSessionPidFile} ] && kill $(cat ${noSessionPidFile}) 2>/dev/null; rm -f ${noSessionPidFile} ${noSessionSocket}`);
}

export interface StreamRun {
    variant: string;
    tokensPerSecond: number;
    concurrency: number;
    repetition: number;
    streams: number;
    firstChunkMs: { p50: number; p90: number; p99: number };
    gapMs: { p50: number; p99: number; max: number };
    /** Share of gaps under half the worker's pace: chunks that arrived bunched instead of as sent. */
    bunched: number;
    errors: number;
}

/** Sets the fake worker's pace (tokens per second; 0 answers at once) on the replica host. */
export async function setPace(replicaHost: HostSession, tokensPerSecond: number): Promise<void> {
    const body = JSON.stringify({ tokensPerSecond });
    await replicaHost.run(`curl -sf -X POST -H 'content-type: application/json' -d '${body}' http://127.0.0.1:${modelServerPort}/_fake/state >/dev/null`);
}

/** One run's figures from the generator's chunk timings (microseconds). */
export function streamFigures(firstChunkUs: number[], chunkGapsUs: number[], tokensPerSecond: number) {
    const first = firstChunkUs.map((us) => us / 1000);
    const gaps = chunkGapsUs.map((us) => us / 1000);
    const paceMs = 1000 / tokensPerSecond;
    return {
        firstChunkMs: { p50: percentile(first, 50), p90: percentile(first, 90), p99: percentile(first, 99) },
        gapMs: { p50: percentile(gaps, 50), p99: percentile(gaps, 99), max: percentile(gaps, 100) },
        bunched: gaps.length ? gaps.filter((g) => g < paceMs / 2).length / gaps.length : NaN,
    };
}

export async function measureStreams(sessions: Record<Hop["from"], HostSession>, path: Hop[], mode: BenchMode): Promise<StreamRun[]> {
    const runs: StreamRun[] = [];
    try {
        const experiment = await startNoSessionTunnel(sessions.gw);
        const paths: StreamPath[] = path.filter((h) => streamHops.includes(h.name)).map((h) => ({ variant: h.name, from: h.from, target: h.target }));
        const compared = [...paths.slice(0, 2), experiment, ...paths.slice(2)];
        for (const tokensPerSecond of mode.streamPaces) {
            await setPace(sessions.r1, tokensPerSecond);
            for (let repetition = 0; repetition < mode.repetitions; repetition++) {
                for (const [concurrency, count] of Object.entries(mode.streams).map(([c, n]) => [Number(c), n])) {
                    for (let k = 0; k < compared.length; k++) {
                        const hop = compared[(k + repetition) % compared.length];
                        const result = await sessions[hop.from].load({
                            ...hop.target,
                            path: "/v1/chat/completions",
                            body: chatBody({ tokens: mode.streamTokens }),
                            concurrency,
                            // One round of streams first: a fresh generator's first requests also open connections and warm its code.
                            warmup: concurrency,
                            requests: count,
                            maxSeconds: mode.maxSeconds,
                            stream: true,
                        });
                        const run: StreamRun = {
                            variant: hop.variant,
                            tokensPerSecond,
                            concurrency,
                            repetition,
                            streams: result.latenciesUs.length,
                            ...streamFigures(result.firstChunkUs ?? [], result.chunkGapsUs ?? [], tokensPerSecond),
                            errors: Object.values(result.errors).reduce((a, b) => a + b, 0),
                        };
                        console.error(
                            `bench: streams ${tokensPerSecond}/s ${repetition + 1}/${mode.repetitions} c=${concurrency} ${hop.variant.padEnd(13)} ` +
                                `first chunk p50 ${fmt(run.firstChunkMs.p50)} p90 ${fmt(run.firstChunkMs.p90)} ms, ` +
                                `gap p50 ${fmt(run.gapMs.p50)} p99 ${fmt(run.gapMs.p99)} ms, bunched ${pct(run.bunched)}`,
                        );
                        runs.push(run);
                    }
                }
            }
        }
    } finally {
        await setPace(sessions.r1, 0);
        await stopNoSessionTunnel(sessions.gw);
    }
    return runs;
}

export function streamTable(runs: StreamRun[], labels: Record<string, string>, mode: BenchMode): Table {
    const rows: string[][] = [];
    for (const tokensPerSecond of mode.streamPaces) {
        for (const concurrency of Object.keys(mode.streams).map(Number)) {
            for (const variant of streamHops) {
                const mine = runs.filter((r) => r.variant === variant && r.concurrency === concurrency && r.tokensPerSecond === tokensPerSecond);
                const m = (f: (r: StreamRun) => number) => median(mine.map(f));
                rows.push([
                    `${tokensPerSecond}/s (${fmt(1000 / tokensPerSecond, 0)} ms)`,
                    String(concurrency),
                    labels[variant] ?? variant,
                    String(mine.reduce((n, r) => n + r.streams, 0)),
                    fmt(m((r) => r.firstChunkMs.p50)),
                    fmt(m((r) => r.firstChunkMs.p90)),
                    fmt(m((r) => r.firstChunkMs.p99)),
                    fmt(m((r) => r.gapMs.p50)),
                    fmt(m((r) => r.gapMs.p99)),
                    fmt(m((r) => r.gapMs.max)),
                    pct(m((r) => r.bunched)),
                    String(mine.reduce((n, r) => n + r.errors, 0)),
                ]);
            }
        }
    }
    return {
        headers: ["pace", "conc.", "path", "streams", "1st chunk p50 ms", "p90", "p99", "gap p50 ms", "gap p99", "gap max", "bunched gaps", "failed"],
        rows,
        align: ["left", "right", "left", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
    };
}
