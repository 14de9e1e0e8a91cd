// BENCHMARKS.md: the machine, the command, the figures (tables of medians and ratios) and what they say.
import { cpuTable, latencyTable, medianAgainst, type PathRun } from "./datapath";
import type { Machine } from "./machine";
import type { BenchMode } from "./mode";
import { priorArtVariants } from "./prior-art";
import { changeStepsTable, scalingTable, type ScalingResult } from "./scaling";
import { fmt, median, pct, ratio } from "./stats";
import { noSessionLabel, streamHops, streamTable, type StreamRun } from "./streams";
import { renderTable } from "./table";
import { bridgeVariants, routerVariants, tunnelVariants } from "./tuning";
import { serveTable, type ServeRun } from "./time-to-serve";
import type { Hop } from "./topology";

export interface BenchResults {
    mode: BenchMode;
    command: string;
    started: Date;
    minutes: number;
    machine: Machine;
    routerPackage: string;
    nginx: string;
    otherSandboxes: string[];
    loadAverages: number[];
    hops: Hop[];
    dataPath: PathRun[];
    streams: StreamRun[];
    priorArt: PathRun[];
    /** Absent in results saved before the phase existed. */
    tuning?: PathRun[];
    scaling: ScalingResult;
    timeToServe: ServeRun[];
}

/** Sentences computed from the figures: what the issue asked, answered with this run's numbers. */
export function findings(r: BenchResults): string[] {
    const out: string[] = [];
    const [c1, cMax] = [r.mode.concurrencies[0], r.mode.concurrencies[r.mode.concurrencies.length - 1]];
    const added = medianAgainst(r.dataPath, "gateway", "direct", c1, (a, b) => a.summary.p50Ms - b.summary.p50Ms);
    const share = (hop: string) => medianAgainst(r.dataPath, hop, "direct", cMax, (a, b) => ratio(a.summary.requestsPerSecond, b.summary.requestsPerSecond));
    out.push(
        `At concurrency ${c1} the whole gateway adds ${fmt(added)} ms at p50 over the model server direct (the hand measurement found about 0.7 ms).`,
        `At concurrency ${cMax} the whole gateway carries ${pct(share("gateway"))} of direct throughput, the path up to the router ${pct(share("router"))}, ` +
            `the bridge ${pct(share("bridge"))}, the tunnel alone ${pct(share("tunnel"))} (hand measurement: 37% and 39%).`,
    );
    const cpu = (hop: string, p: keyof PathRun["cpuUs"]) =>
        median(r.dataPath.filter((x) => x.variant === hop && x.concurrency === cMax).map((x) => x.cpuUs[p]));
    const gw = {
        nginx: cpu("gateway", "nginx"),
        router: cpu("gateway", "router"),
        ssh: cpu("gateway", "ssh") + cpu("gateway", "sshd"),
        worker: cpu("gateway", "worker"),
        journald: cpu("gateway", "journald"),
    };
    const total = gw.nginx + gw.router + gw.ssh + gw.worker + gw.journald;
    const logs = (hop: string, f: (x: PathRun) => number) => median(r.dataPath.filter((x) => x.variant === hop).map(f));
    out.push(
        `CPU per request through the whole gateway at concurrency ${cMax}: router ${fmt(gw.router, 0)} µs, nginx (both passes) ${fmt(gw.nginx, 0)} µs, ` +
            `ssh + sshd ${fmt(gw.ssh, 0)} µs, worker ${fmt(gw.worker, 0)} µs, journald ${fmt(gw.journald, 0)} µs: the router is ${pct(ratio(gw.router, total))} of the path's CPU.`,
        `Logs: the router writes ${fmt(
            logs("router", (x) => x.logBytes.router),
            0,
        )} bytes per request to its log file (one JSON line a request, also sent to journald), ` +
            `nginx ${fmt(
                logs("gateway", (x) => x.logBytes.nginx),
                0,
            )} bytes per request of access log on the public listener (the bridges log nothing).`,
    );
    const streamFigure = (variant: string, pace: number, f: (s: StreamRun) => number) =>
        median(r.streams.filter((s) => s.variant === variant && s.tokensPerSecond === pace && s.concurrency === c1).map(f));
    for (const pace of r.mode.streamPaces) {
        const name = (h: string) => (h === "tunnelNoSession" ? "-N tunnel" : h);
        const hopsSaid = streamHops.map((h) => `${name(h)} ${fmt(streamFigure(h, pace, (s) => s.firstChunkMs.p90))} ms`).join(", ");
        const bunched = streamHops.map((h) => `${name(h)} ${pct(streamFigure(h, pace, (s) => s.bunched))}`).join(", ");
        out.push(
            `Streams at ${pace} tokens/s (a chunk every ${fmt(1000 / pace, 0)} ms), concurrency ${c1}: gaps at p50 ${fmt(streamFigure("direct", pace, (s) => s.gapMs.p50))} ms direct, ` +
                `${fmt(streamFigure("gateway", pace, (s) => s.gapMs.p50))} ms through the gateway; bunched gaps ${bunched}; first chunk at p90 ${hopsSaid}.`,
        );
    }
    const prior = (c: number) => medianAgainst(r.priorArt, "priorArt", "ours", c, (a, b) => ratio(a.summary.requestsPerSecond, b.summary.requestsPerSecond));
    const priorCpu = (v: string, c: number) => median(r.priorArt.filter((x) => x.variant === v && x.concurrency === c).map((x) => x.cpuUs.ssh + x.cpuUs.sshd));
    out.push(
        `Prior art's bridge: ${r.mode.concurrencies.map((c) => pct(prior(c))).join(", ")} of this project's throughput at concurrency ${r.mode.concurrencies.join(", ")}; ` +
            `ssh + sshd spend ${fmt(priorCpu("priorArt", cMax), 0)} µs per request without keepalive against ${fmt(priorCpu("ours", cMax), 0)} µs with it (concurrency ${cMax}).`,
    );
    out.push(...tuningFindings(r.tuning ?? [], cMax, c1));
    const previews = r.scaling.runs.filter((x) => x.kind === "preview");
    const changed = [...new Set(previews.map((x) => Object.values(x.planned ?? {}).reduce((a, b) => a + b, 0)))];
    const byStep = (kind: string, f: (t: ScalingResult["runs"][number]["timing"]) => number) => {
        const steps = [...new Set(r.scaling.runs.filter((x) => x.kind === kind).map((x) => x.from))].sort((a, b) => a - b);
        return steps.map((from) => ({ from, value: median(r.scaling.runs.filter((x) => x.kind === kind && x.from === from).map((x) => f(x.timing))) }));
    };
    const previewWall = byStep("preview", (t) => t.wallSeconds);
    const previewLoad = byStep("preview", (t) => t.programLoadSeconds);
    const previewRegister = byStep("preview", (t) => t.registrationSeconds);
    const transpileOnly = byStep("preview, transpile-only", (t) => t.wallSeconds);
    const upWall = byStep("up", (t) => t.wallSeconds);
    const upLoad = byStep("up", (t) => t.programLoadSeconds);
    const upChanges = byStep("up", (t) => t.changeSeconds);
    const upRest = byStep("up", (t) => t.wallSeconds - t.programLoadSeconds - t.providerStartSeconds - t.changeSeconds);
    const stateAt = (from: number) => {
        const ups = r.scaling.runs.filter((x) => x.kind === "up" && x.from === from);
        const bytes = median(ups.map((x) => x.stateBytes ?? NaN));
        const share = median(ups.map((x) => ratio(x.stateProviderBytes ?? NaN, x.stateBytes ?? NaN)));
        return `${fmt(bytes / 1e6, 1)} MB at N=${from} (${pct(share)} of it the dynamic providers' serialized code, one copy per resource)`;
    };
    const stateSaid = upWall.length ? [upWall[0].from, upWall[upWall.length - 1].from].map(stateAt).join(", ") : "–";
    const span = (list: { from: number; value: number }[], digits = 1) =>
        list.length
            ? `${fmt(list[0].value, digits)} s (N=${list[0].from}) → ${fmt(list[list.length - 1].value, digits)} s (N=${list[list.length - 1].from})`
            : "–";
    const previewLogins = [...new Set(previews.map((x) => (x.sshLogins ? x.sshLogins.gw + x.sshLogins.r1 + x.sshLogins.r2 : NaN)))];
    const upLogins = [
        ...new Set(r.scaling.runs.filter((x) => x.kind === "up").map((x) => (x.sshLogins ? `${x.sshLogins.gw}/${x.sshLogins.r1 + x.sshLogins.r2}` : "?"))),
    ];
    if (previewWall.length > 0) {
        out.push(
            `Scaling: every N→N+1 preview plans ${changed.join(" or ")} changed resources, whatever N; previews log in over SSH ${previewLogins.join(" or ")} times, ` +
                `and up N→N+1 ${upLogins.join(" or ")} times (gateway/replica hosts): the remote work does not grow with N.`,
            `Preview wall time ${span(previewWall)}: loading the program (node, ts-node type-checking it) ${span(previewLoad)}, registering every resource ` +
                `(the program's closures, the engine's check and diff) ${span(previewRegister)}; with the type-check off (PULUMI_NODEJS_TRANSPILE_ONLY) the whole preview takes ${span(transpileOnly)}.`,
            `Up N→N+1 ${span(upWall)}: program load ${span(upLoad)}, the new replica's four remote steps ${span(upChanges)}, ` +
                `the rest (the program registering every resource, the engine's check, diff and state) ${span(upRest)}; ` +
                `the state file holds ${stateSaid} after up.`,
        );
    }
    if (r.scaling.stoppedAt) {
        out.push(`Scaling was not measured to the end: ${r.scaling.stoppedAt.split("\n")[0]}`);
    }
    const serve = median(r.timeToServe.map((s) => s.up.wallSeconds + s.firstAnswerSeconds));
    const load = median(r.timeToServe.map((s) => s.up.programLoadSeconds));
    const setup = median(r.timeToServe.map((s) => s.up.changes.filter((c) => c.step.endsWith("-setup")).reduce((t, c) => t + c.seconds, 0)));
    out.push(
        `Time to serve: ${fmt(serve, 1)} s from fresh hosts to the first answer; loading the program takes ${fmt(load, 1)} s of it and the gateway's setup ` +
            `(router install) ${fmt(setup, 1)} s.`,
    );
    return out;
}

function tuningSection(r: BenchResults): string[] {
    const runs = r.tuning ?? [];
    if (runs.length === 0) return [];
    return [
        "## Tuning: the defaults against their alternatives",
        "",
        "Beside the deployed path, on the gateway, in front of the same model server (replica 0), each a process of its own started for the phase and measured " +
            "side by side as above. The router's rows: smg with the deployed flags and worker, changing one thing each, against its log as it was before 0.4 " +
            "(two ANSI-coloured INFO lines a request); the last routes to an SSH TCP forward to the model server instead of the bridge. The tunnel's rows: the " +
            "deployed tunnel's ssh command with another cipher, or with idle connections held open on its socket (each an SSH channel), load on its socket. " +
            "The bridge's rows: two more bridges rendered from the template, with their upstream keepalive (idle connections kept per nginx worker) changed. " +
            "Below the router every variant has a tunnel of its own (ssh's work per request grows with the channels open, so variants sharing one would " +
            "charge each other for their idle connections); the router's variants share the deployed bridge and tunnel.",
        "",
        renderTable(latencyTable(runs, routerVariants, "routerTwoLines", r.mode.concurrencies)),
        "",
        renderTable(latencyTable(runs, bridgeVariants, "bridgeKeepalive16", r.mode.concurrencies)),
        "",
        renderTable(latencyTable(runs, tunnelVariants, "tunnelChacha", r.mode.concurrencies)),
        "",
        renderTable(cpuTable(runs, [...routerVariants, ...bridgeVariants, ...tunnelVariants], r.mode.concurrencies)),
        "",
    ];
}

/** What each alternative to a default bought or cost, within its repetition. */
function tuningFindings(runs: PathRun[], cMax: number, c1: number): string[] {
    if (runs.length === 0) return [];
    const rate = (v: string, base: string, c: number) =>
        medianAgainst(runs, v, base, c, (a, b) => ratio(a.summary.requestsPerSecond, b.summary.requestsPerSecond));
    const added = (v: string, base: string, c: number) => medianAgainst(runs, v, base, c, (a, b) => a.summary.p50Ms - b.summary.p50Ms);
    const cpu = (v: string, f: (x: PathRun) => number, c = cMax) => median(runs.filter((x) => x.variant === v && x.concurrency === c).map(f));
    const router = (v: string) =>
        `${fmt(
            cpu(v, (x) => x.cpuUs.router),
            0,
        )} µs`;
    const logged = (v: string) =>
        `${fmt(
            cpu(v, (x) => x.logBytes.router),
            0,
        )} B`;
    const journald = (v: string) =>
        `${fmt(
            cpu(v, (x) => x.cpuUs.journald),
            0,
        )} µs`;
    const ssh = (v: string, c = cMax) =>
        `${fmt(
            cpu(v, (x) => x.cpuUs.ssh + x.cpuUs.sshd, c),
            0,
        )} µs`;
    const idleOf = (v: string) => tunnelVariants.find((t) => t.name === v)?.idle ?? 0;
    return [
        `Router logging at concurrency ${cMax} (router CPU, journald CPU, log bytes per request): two coloured lines ${router("routerTwoLines")}, ${journald("routerTwoLines")}, ` +
            `${logged("routerTwoLines")}; one JSON line (the default now) ${router("routerOneLine")}, ${journald("routerOneLine")}, ${logged("routerOneLine")}; ` +
            `none ${router("routerQuiet")}, ${journald("routerQuiet")}, ${logged("routerQuiet")}. Throughput against two lines: one line ${pct(rate("routerOneLine", "routerTwoLines", cMax))}, ` +
            `none ${pct(rate("routerQuiet", "routerTwoLines", cMax))}; at concurrency ${c1} the p50 moves by ${fmt(added("routerOneLine", "routerTwoLines", c1))} ms and ${fmt(added("routerQuiet", "routerTwoLines", c1))} ms.`,
        `Without the bridge (the router straight to an SSH TCP forward): ${pct(rate("routerNoBridge", "routerOneLine", cMax))} of the bridged router's throughput at concurrency ${cMax}, ` +
            `p50 ${fmt(added("routerNoBridge", "routerOneLine", c1))} ms at concurrency ${c1} (nginx ${fmt(
                cpu("routerOneLine", (x) => x.cpuUs.nginx),
                0,
            )} µs a request with the bridge, ` +
            `${fmt(
                cpu("routerNoBridge", (x) => x.cpuUs.nginx),
                0,
            )} µs without; ssh + sshd ${ssh("routerOneLine")} and ${ssh("routerNoBridge")}).`,
        `Bridge keepalive 64 instead of 16: ${pct(rate("bridgeKeepalive64", "bridgeKeepalive16", cMax))} of the throughput at concurrency ${cMax} ` +
            `(ssh + sshd ${ssh("bridgeKeepalive64")} against ${ssh("bridgeKeepalive16")} a request, nginx ${fmt(
                cpu("bridgeKeepalive64", (x) => x.cpuUs.nginx),
                0,
            )} µs against ` +
            `${fmt(
                cpu("bridgeKeepalive16", (x) => x.cpuUs.nginx),
                0,
            )} µs).`,
        `Idle SSH channels: with ${idleOf("tunnelIdle")} idle connections held open on its socket, the tunnel carries ${pct(rate("tunnelIdle", "tunnelChacha", c1))} ` +
            `of its throughput at concurrency ${c1} (p50 ${fmt(added("tunnelIdle", "tunnelChacha", c1))} ms, ssh + sshd ${ssh("tunnelIdle", c1)} against ${ssh("tunnelChacha", c1)} a request) ` +
            `and ${pct(rate("tunnelIdle", "tunnelChacha", cMax))} at concurrency ${cMax}: why the bridge closes an idle connection after 10 s.`,
        `SSH cipher: aes128-gcm carries ${pct(rate("tunnelAesGcm", "tunnelChacha", cMax))} of chacha20-poly1305's throughput through the tunnel socket at concurrency ${cMax} ` +
            `(ssh + sshd ${ssh("tunnelAesGcm")} against ${ssh("tunnelChacha")} a request); p50 ${fmt(added("tunnelAesGcm", "tunnelChacha", c1))} ms at concurrency ${c1}.`,
    ];
}

export function renderReport(r: BenchResults): string {
    const labels = { ...Object.fromEntries(r.hops.map((h) => [h.name, h.label])), tunnelNoSession: noSessionLabel };
    const loads = [...r.loadAverages].sort((a, b) => a - b);
    const lines = [
        "# Benchmarks",
        "",
        `Written by \`${r.command}\` (${r.mode.name} mode) on ${r.started.toISOString().slice(0, 16).replace("T", " ")} UTC, in ${fmt(r.minutes, 0)} minutes. ` +
            "Run it again to replace these figures; `npm run bench -- --quick` is a smoke run with small counts whose figures are not comparable.",
        "",
        "## Machine",
        "",
        `- ${r.machine.cores} × ${r.machine.cpu}, ${r.machine.memory} memory, Linux ${r.machine.kernel}; Node.js ${r.machine.node}, Pulumi ${r.machine.pulumi}.`,
        `- Router ${r.routerPackage} (policy round_robin), ${r.nginx} on the gateway host; hosts are Debian bookworm sandbox containers (systemd-nspawn) ` +
            "on this one machine: every process of the path, and the load generator, share its cores.",
        r.otherSandboxes.length > 0
            ? `- Other engineers' sandboxes ran on the machine at the same time (${r.otherSandboxes.length}: ${r.otherSandboxes.join(", ")}): absolute figures are noisy; compare within a table.`
            : "- No other sandbox ran on the machine at the start of the run.",
        `- Load average (1 min) sampled between measurements: min ${fmt(loads[0], 1)}, median ${fmt(median(loads), 1)}, max ${fmt(loads[loads.length - 1], 1)}.`,
        "",
        "## How it measures",
        "",
        `- Load: a closed loop of N clients on keep-alive connections (\`bench/loadgen.ts\`), each sending its next request when the last is answered; ` +
            `${Object.entries(r.mode.requests)
                .map(([c, n]) => `${n} recorded requests after ${r.mode.warmup[Number(c)]} warm-up ones at concurrency ${c}`)
                .join(", ")}, at most ${r.mode.maxSeconds} s a run. ` +
            "It runs where the hop is reachable: on the replica host for the model server direct, on the gateway host for the tunnel socket, the bridge, " +
            "the router and the public listener (127.0.0.1:80 with the service's Host header and token).",
        `- Side by side: each repetition runs every path once, in an order that rotates between repetitions; tables give the median of ${r.mode.repetitions} ` +
            "repetitions, and ratios are taken within a repetition, then their median.",
        "- Requests: a chat completion of 4 tokens, not streamed, against one replica (a fake SGLang worker that answers at once, without logging).",
        "- CPU per request: utime + stime of each process on the path (/proc/<pid>/stat, read on this machine, which sees the containers' processes), " +
            "before and after a run, divided by the requests answered (warm-up included). The load generator reports its own.",
        "",
        "## Data path, hop by hop",
        "",
        "Each row adds one hop in front of the previous one; `p50 added` and `req/s vs first` compare with the model server direct.",
        "",
        renderTable(latencyTable(r.dataPath, r.hops, "direct", r.mode.concurrencies)),
        "",
        "CPU time per request, µs (medians), by process kind: nginx (the public listener and the bridge), the router, the tunnel's ssh on the gateway, its sshd on the " +
            "replica host, the fake worker, and journald (on every host: what the processes log). Then the bytes per request the gateway's logs grew: the router's " +
            "log directory and nginx's logs.",
        "",
        renderTable(cpuTable(r.dataPath, r.hops, r.mode.concurrencies)),
        "",
        "## Streams",
        "",
        `Streamed chat completions of ${r.mode.streamTokens} tokens at ${r.mode.streamPaces.join(" and ")} tokens a second, direct, through the tunnel socket alone, ` +
            "and through the whole gateway. The first chunk is the first that carries a token (the worker sends it right after the role chunk); gaps are between " +
            "chunks that carry a token, as the client received them; a bunched gap (under half the pace) means chunks were held and released together.",
        "",
        renderTable(streamTable(r.streams, labels, r.mode)),
        "",
        "## Prior art in the same run",
        "",
        "Two bridges rendered from this project's template on the gateway, in front of the same tunnel socket: as this project writes it, and as the prior art " +
            "wrote it (no upstream keepalive: every request opens a new connection to the socket, so the tunnel opens a new SSH channel and a new connection to the worker).",
        "",
        renderTable(latencyTable(r.priorArt, priorArtVariants, "ours", r.mode.concurrencies)),
        "",
        renderTable(cpuTable(r.priorArt, priorArtVariants, r.mode.concurrencies)),
        "",
        ...tuningSection(r),
        "## Scaling cost",
        "",
        `Fake workers over r1 and r2 (replica i on host i mod 2, port 8000 + i div 2). For each N: N→N+1 previewed ${r.mode.scalingRepetitions}× (\`pulumi preview --json\`), ` +
            `as often with \`PULUMI_NODEJS_TRANSPILE_ONLY=true\`, and \`pulumi up\` N→N+1 and back ${r.mode.scalingRepetitions}×; a service has at most 64 replicas, so N=64 is measured as 63→64. ` +
            "The breakdowns come from the engine's trace (`--otel-traces`): program load is from node's start to the program's first resource after the stack; " +
            "registering all is from there to its last resource; changes sum the provider's create and delete calls, and the rest of up is the engine, its state " +
            "and the waits between steps; state MB is the stack's state file after up, with the share of it that is the dynamic providers' serialized code (every resource stores its own copy). SSH logins are counted in each host's sshd journal.",
        "",
        renderTable(scalingTable(r.scaling)),
        "",
        "The replica's own steps in up (N→N+1 creates) and in the way back (deletes), median seconds:",
        "",
        renderTable(changeStepsTable(r.scaling)),
        "",
        ...(r.scaling.stoppedAt ? [`Not measured to the end: ${r.scaling.stoppedAt}`, ""] : []),
        "## Time to serve",
        "",
        `From fresh sandbox hosts (down and up again; ${r.timeToServe.length}×) to the first successful request through the public listener; one replica.`,
        "",
        renderTable(serveTable(r.timeToServe)),
        "",
        "## Findings",
        "",
        ...findings(r).map((f) => `- ${f}`),
        "",
    ];
    return lines.join("\n");
}
