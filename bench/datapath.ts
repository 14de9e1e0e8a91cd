// Data path, hop by hop: small non-streamed chat completions through each added hop at each concurrency,
// every hop once per repetition in a rotating order, with the CPU each process on the path spent.
import { cpuBetween, gatewayLogBytes, pathProcesses, sampleCpu, type LogBytes, type PathProcess } from "./cpu";
import type { HostSession } from "./hosts";
import type { LoadSpec } from "./loadgen";
import type { BenchMode } from "./mode";
import { fmt, median, pct, ratio, summarize, type RunSummary } from "./stats";
import type { Table } from "./table";
import { chatBody, type Hop } from "./topology";

export interface PathRun {
    /** The hop's name, or a variant's (prior art). */
    variant: string;
    concurrency: number;
    repetition: number;
    summary: RunSummary;
    /** CPU per answered request, microseconds, of each process kind, and of the load generator. */
    cpuUs: Record<PathProcess, number>;
    loadgenCpuUs: number;
    /** Bytes the gateway's logs grew per answered request. */
    logBytes: LogBytes;
    errors: Record<string, number>;
}

/** One bounded run against one target, with the CPU of the path's processes around it. */
export async function measure(
    session: HostSession,
    variant: string,
    target: Hop["target"],
    concurrency: number,
    repetition: number,
    mode: BenchMode,
    body = chatBody(),
): Promise<PathRun> {
    const spec: LoadSpec = {
        ...target,
        path: "/v1/chat/completions",
        body,
        concurrency,
        warmup: mode.warmup[concurrency],
        requests: mode.requests[concurrency],
        maxSeconds: mode.maxSeconds,
    };
    const before = sampleCpu();
    const logsBefore = gatewayLogBytes();
    const result = await session.load(spec);
    const cpu = cpuBetween(before, sampleCpu());
    const logsAfter = gatewayLogBytes();
    const perRequest = (us: number) => ratio(us, result.answered);
    const failed = Object.values(result.errors).reduce((a, b) => a + b, 0);
    if (failed > 0) {
        console.error(`bench: ${variant} at concurrency ${concurrency}: ${failed} failed requests ${JSON.stringify(result.errors)}`);
    }
    return {
        variant,
        concurrency,
        repetition,
        summary: summarize(result.latenciesUs, result.seconds),
        cpuUs: Object.fromEntries(pathProcesses.map((p) => [p, perRequest(cpu[p])])) as Record<PathProcess, number>,
        loadgenCpuUs: perRequest(result.cpuUs),
        logBytes: { router: perRequest(logsAfter.router - logsBefore.router), nginx: perRequest(logsAfter.nginx - logsBefore.nginx) },
        errors: result.errors,
    };
}

/** One path of a side-by-side phase: where the load generator runs and what it loads. */
export interface SideBySideTarget {
    name: string;
    session: HostSession;
    target: Hop["target"];
}

/** Every target at every concurrency, `repetitions` times; the order rotates so none always runs first. */
export async function measureSideBySide(phase: string, targets: SideBySideTarget[], mode: BenchMode): Promise<PathRun[]> {
    const runs: PathRun[] = [];
    const width = Math.max(...targets.map((t) => t.name.length));
    for (let repetition = 0; repetition < mode.repetitions; repetition++) {
        for (const concurrency of mode.concurrencies) {
            for (let k = 0; k < targets.length; k++) {
                const t = targets[(k + repetition) % targets.length];
                const run = await measure(t.session, t.name, t.target, concurrency, repetition, mode);
                console.error(
                    `bench: ${phase} ${repetition + 1}/${mode.repetitions} c=${concurrency} ${t.name.padEnd(width)} ` +
                        `p50 ${fmt(run.summary.p50Ms)} ms p99 ${fmt(run.summary.p99Ms)} ms ${fmt(run.summary.requestsPerSecond, 0)} req/s`,
                );
                runs.push(run);
            }
        }
    }
    return runs;
}

/** Every hop of the data path, each loaded from where it is reachable. */
export function measureDataPath(sessions: Record<Hop["from"], HostSession>, path: Hop[], mode: BenchMode): Promise<PathRun[]> {
    return measureSideBySide(
        "data path",
        path.map((hop) => ({ name: hop.name, session: sessions[hop.from], target: hop.target })),
        mode,
    );
}

/** The runs of one variant at one concurrency. */
function select(runs: PathRun[], variant: string, concurrency: number): PathRun[] {
    return runs.filter((r) => r.variant === variant && r.concurrency === concurrency);
}

/** Per repetition, `figure` of the variant against the baseline's in the same repetition; the median of those. */
export function medianAgainst(runs: PathRun[], variant: string, baseline: string, concurrency: number, figure: (v: PathRun, b: PathRun) => number): number {
    const base = select(runs, baseline, concurrency);
    return median(
        select(runs, variant, concurrency).flatMap((run) => {
            const b = base.find((x) => x.repetition === run.repetition);
            return b ? [figure(run, b)] : [];
        }),
    );
}

/** Latency and throughput per variant and concurrency, against a baseline variant (medians over repetitions). */
export function latencyTable(runs: PathRun[], variants: { name: string; label: string }[], baseline: string, concurrencies: number[]): Table {
    const rows: string[][] = [];
    for (const concurrency of concurrencies) {
        for (const v of variants) {
            const mine = select(runs, v.name, concurrency);
            rows.push([
                String(concurrency),
                v.label,
                fmt(median(mine.map((r) => r.summary.p50Ms))),
                fmt(median(mine.map((r) => r.summary.p99Ms))),
                fmt(median(mine.map((r) => r.summary.requestsPerSecond)), 0),
                v.name === baseline ? "" : fmt(medianAgainst(runs, v.name, baseline, concurrency, (a, b) => a.summary.p50Ms - b.summary.p50Ms)),
                v.name === baseline
                    ? ""
                    : pct(medianAgainst(runs, v.name, baseline, concurrency, (a, b) => ratio(a.summary.requestsPerSecond, b.summary.requestsPerSecond))),
            ]);
        }
    }
    return {
        headers: ["conc.", "path", "p50 ms", "p99 ms", "req/s", "p50 added ms", "req/s vs first"],
        rows,
        align: ["right", "left", "right", "right", "right", "right", "right"],
    };
}

/** CPU per request of each process kind on the path, microseconds, and the log bytes written (medians over repetitions). */
export function cpuTable(runs: PathRun[], variants: { name: string; label: string }[], concurrencies: number[]): Table {
    const rows: string[][] = [];
    for (const concurrency of concurrencies) {
        for (const v of variants) {
            const mine = select(runs, v.name, concurrency);
            const per = (p: PathProcess) => median(mine.map((r) => r.cpuUs[p]));
            const total = median(mine.map((r) => pathProcesses.reduce((sum, p) => sum + r.cpuUs[p], 0)));
            rows.push([
                String(concurrency),
                v.label,
                ...pathProcesses.map((p) => fmt(per(p), 0)),
                fmt(total, 0),
                fmt(median(mine.map((r) => r.loadgenCpuUs)), 0),
                fmt(median(mine.map((r) => r.logBytes.router)), 0),
                fmt(median(mine.map((r) => r.logBytes.nginx)), 0),
            ]);
        }
    }
    return {
        headers: [
            "conc.",
            "path",
            "nginx",
            "router",
            "ssh (gw)",
            "sshd (replica)",
            "worker",
            "journald",
            "path total",
            "load generator",
            "router log B",
            "nginx log B",
        ],
        rows,
        align: ["right", "left", ...Array<"right">(10).fill("right")],
    };
}
