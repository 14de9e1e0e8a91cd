// The benchmark's pure parts (`npm run bench` itself is never part of the test suite: its figures are
// timings of a noisy machine). Percentiles and medians, the tables, and how runs and traces are read.
import * as assert from "assert";
import { bridgeFile, tunnelUnitFile } from "../../components/host-files/replica";
import { replicaPaths } from "../../components/naming";
import { classify, cpuTicks } from "../../bench/cpu";
import { latencyTable, type PathRun } from "../../bench/datapath";
import { tokenOf } from "../../bench/loadgen";
import { quickMode } from "../../bench/mode";
import { renderReport } from "../../bench/report";
import { hops } from "../../bench/topology";
import { withoutKeepalive } from "../../bench/prior-art";
import { bridgeVariant, bridgeVariants, routerVariants, tunnelCommand, tunnelVariants } from "../../bench/tuning";
import { operationsOf, parseSpans, timingOf } from "../../bench/pulumi-timing";
import { plannedChanges, providerBytes, scalingStep } from "../../bench/scaling";
import { median, medianOfRatios, percentile, ratio, summarize } from "../../bench/stats";
import { streamFigures } from "../../bench/streams";
import { renderTable } from "../../bench/table";
import { nginxTest } from "../helpers/nginx";

describe("bench: statistics", () => {
    it("percentiles are nearest-rank: always a measured value", () => {
        const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert.strictEqual(percentile(values, 50), 5);
        assert.strictEqual(percentile(values, 99), 10);
        assert.strictEqual(percentile(values, 100), 10);
        assert.strictEqual(percentile(values, 0), 1);
        assert.strictEqual(percentile([7], 99), 7);
        assert.ok(Number.isNaN(percentile([], 50)));
        assert.throws(() => percentile(values, 101), /outside 0..100/);
        // The input is not reordered.
        assert.deepStrictEqual(values.slice(0, 3), [5, 1, 4]);
    });

    it("p99 of 1000 latencies is the 990th smallest", () => {
        const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
        assert.strictEqual(percentile(values, 99), 990);
        assert.strictEqual(percentile(values, 50), 500);
    });

    it("medians of runs: the middle one, the mean of the middle two, NaN runs left out", () => {
        assert.strictEqual(median([3, 1, 2]), 2);
        assert.strictEqual(median([4, 1, 3, 2]), 2.5);
        assert.strictEqual(median([NaN, 1, 3]), 2);
        assert.ok(Number.isNaN(median([])));
    });

    it("ratios over nothing are no figure, and ratios of runs are taken per repetition", () => {
        assert.ok(Number.isNaN(ratio(1, 0)));
        assert.strictEqual(ratio(37, 100), 0.37);
        // Each repetition's ratio, then their median: a slow repetition slows both sides alike.
        assert.strictEqual(
            medianOfRatios([
                { value: 40, baseline: 100 },
                { value: 20, baseline: 50 },
                { value: 90, baseline: 100 },
            ]),
            0.4,
        );
    });

    it("a run's summary: requests per second from the recorded requests, percentiles in ms", () => {
        const summary = summarize([1000, 2000, 3000, 4000], 0.5);
        assert.deepStrictEqual(summary, { requests: 4, seconds: 0.5, requestsPerSecond: 8, p50Ms: 2, p99Ms: 4 });
    });
});

describe("bench: tables", () => {
    it("renders Markdown whose columns line up, numbers right-aligned, pipes escaped", () => {
        const text = renderTable({
            headers: ["path", "p50 ms"],
            rows: [
                ["direct", "0.43"],
                ["a|b", "12.10"],
            ],
        });
        assert.strictEqual(text, ["| path   | p50 ms |", "| ------ | -----: |", "| direct |   0.43 |", "| a\\|b   |  12.10 |"].join("\n"));
    });

    it("refuses a row with another number of cells than the header", () => {
        assert.throws(() => renderTable({ headers: ["a", "b"], rows: [["1"]] }), /row 0 has 1 cells, the header 2/);
    });

    it("the latency table gives medians and, per repetition, the added p50 and share of throughput", () => {
        const run = (variant: string, repetition: number, p50Ms: number, rps: number): PathRun => ({
            variant,
            concurrency: 1,
            repetition,
            summary: { requests: 100, seconds: 1, requestsPerSecond: rps, p50Ms, p99Ms: p50Ms * 2 },
            cpuUs: { nginx: 0, router: 0, ssh: 0, sshd: 0, worker: 0, journald: 0 },
            loadgenCpuUs: 0,
            logBytes: { router: 0, nginx: 0 },
            errors: {},
        });
        const runs = [
            run("direct", 0, 1, 1000),
            run("gateway", 0, 2, 400),
            run("direct", 1, 2, 500),
            run("gateway", 1, 3.5, 200),
            run("direct", 2, 1, 1000),
            run("gateway", 2, 1.5, 390),
        ];
        const table = latencyTable(
            runs,
            [
                { name: "direct", label: "direct" },
                { name: "gateway", label: "gateway" },
            ],
            "direct",
            [1],
        );
        // p50 added per repetition: 1, 1.5, 0.5 → 1; share: 40%, 40%, 39% → 40%.
        assert.deepStrictEqual(table.rows[1], ["1", "gateway", "2.00", "4.00", "390", "1.00", "40%"]);
        assert.deepStrictEqual(table.rows[0].slice(5), ["", ""]);
    });
});

describe("bench: what it reads", () => {
    it("a stream's token chunks, not its role, finish or [DONE] chunks", () => {
        const chunk = (delta: Record<string, unknown>) => `data: ${JSON.stringify({ choices: [{ index: 0, delta }] })}`;
        assert.strictEqual(tokenOf(chunk({ content: "tok" })), "tok");
        assert.strictEqual(tokenOf(chunk({ role: "assistant", content: "" })), undefined);
        assert.strictEqual(tokenOf(chunk({})), undefined);
        assert.strictEqual(tokenOf("data: [DONE]"), undefined);
        assert.strictEqual(tokenOf(""), undefined);
        assert.strictEqual(tokenOf(`data: ${JSON.stringify({ choices: [{ text: "t" }] })}`), "t");
    });

    it("stream figures: gaps under half the pace count as bunched", () => {
        const f = streamFigures([1000, 2000], [10000, 10000, 1000, 19000], 100);
        assert.strictEqual(f.bunched, 0.25);
        assert.strictEqual(f.gapMs.max, 19);
        assert.strictEqual(f.firstChunkMs.p50, 1);
    });

    it("CPU ticks of a /proc stat line whose command name holds spaces and parentheses", () => {
        const stat = "4242 (smg::router (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 12 0 100 0 0";
        assert.strictEqual(cpuTicks(stat), 1801);
    });

    it("processes by their unit on the sandbox hosts: nginx, router, tunnel, sshd of the tunnel, worker", () => {
        const unit = (host: string, u: string) => `/sgw-abc123-${host}/payload/system.slice/${u}`;
        assert.strictEqual(classify("gw", unit("gw", "nginx.service"), "nginx: worker process"), "nginx");
        assert.strictEqual(classify("gw", unit("gw", "sglang-gateway-router-chat.service"), "smg::router"), "router");
        assert.strictEqual(classify("gw", unit("gw", "sglang-gateway-router2-chat.service"), "smg::router"), "router");
        assert.strictEqual(classify("gw", unit("gw", "sglang-gateway-router-chat_reconcile.service"), "/bin/sh reconcile.sh"), undefined);
        assert.strictEqual(classify("gw", unit("gw", "sglang-gateway-tunnel-chat-0.service"), "/usr/bin/ssh -N"), "ssh");
        assert.strictEqual(classify("r1", unit("r1", "sglang-gateway-chat-replica-0.service"), "/usr/bin/node fake-worker.js"), "worker");
        const session = "/sgw-abc123-r1/payload/user.slice/user-0.slice/session-7.scope";
        assert.strictEqual(classify("r1", session, "sshd: root "), "sshd");
        // The tunnel's pty session (since 0.3) carries its channels in this one.
        assert.strictEqual(classify("r1", session, "sshd: root@pts/0 "), "sshd");
        // Our own command sessions, the session's monitor and the listener are not the tunnel.
        assert.strictEqual(classify("r1", session, "sshd: root@notty "), undefined);
        assert.strictEqual(classify("r1", session, "sshd: root [priv] "), undefined);
        assert.strictEqual(classify("r1", unit("r1", "ssh.service"), "sshd: /usr/sbin/sshd -D [listener]"), undefined);
        assert.strictEqual(classify("r1", unit("r1", "nginx.service"), "nginx: worker process"), undefined);
        assert.strictEqual(classify("gw", unit("gw", "systemd-journald.service"), "/lib/systemd/systemd-journald"), "journald");
    });

    it("the prior art's bridge: this project's without upstream keepalive, still valid for nginx", () => {
        const ours = bridgeFile({ service: "bench", index: 0, bridgePort: 31901, target: "unix:/run/x.sock" }).content;
        const prior = withoutKeepalive(ours);
        assert.match(ours, /keepalive 16;/);
        assert.doesNotMatch(prior.replace(/#.*$/gm, ""), /keepalive|Connection ""/);
        nginxTest({ bridges: { "prior.conf": prior } });
        assert.throws(() => withoutKeepalive(prior), /no `keepalive N;` line/);
    });

    it("the tuning's tunnels: the deployed tunnel's command with another forward and cipher, all else the same", () => {
        const unit = tunnelUnitFile({ service: "chat", index: 0, host: "10.0.0.3", port: 22, user: "root", remotePort: 8000 }).content;
        const execStart = unit.split("\n").find((l) => l.startsWith("ExecStart=")) ?? "";
        const variant = tunnelCommand(execStart, "127.0.0.1:31950", "aes128-gcm@openssh.com");
        assert.strictEqual(
            variant,
            execStart
                .replace("ExecStart=/usr/bin/ssh ", "/usr/bin/ssh -c aes128-gcm@openssh.com ")
                .replace(`-L ${replicaPaths("chat", 0).socket}:`, "-L 127.0.0.1:31950:"),
        );
        assert.match(variant, /-tt .*StrictHostKeyChecking=yes .* 'exec sleep infinity'$/);
        assert.throws(() => tunnelCommand("ExecStart=/usr/bin/ssh -N -L /elsewhere.sock:x", "y", "z"), /ExecStart changed/);
    });

    it("the tuning's bridges: the template's with another keepalive, still valid for nginx", () => {
        const [ours, more] = [bridgeVariant(0, 16, "/run/a.sock"), bridgeVariant(1, 64, "/run/b.sock")];
        assert.strictEqual(ours.content, bridgeFile({ service: "bench-tuning-0", index: 0, bridgePort: 31960, target: "unix:/run/a.sock" }).content);
        assert.match(more.content, /^\s*keepalive 64;$/m);
        assert.match(more.content, /^\s*keepalive_timeout 10s;$/m);
        assert.doesNotMatch(more.content, /keepalive 16;/);
        nginxTest({ bridges: { "a.conf": ours.content, "b.conf": more.content } });
    });

    it("what a preview plans: the steps that are not `same`, by operation and type", () => {
        const preview = JSON.stringify({
            steps: [
                { op: "same", newState: { type: "pulumi-nodejs:dynamic/sglang-gateway:HostScript" } },
                { op: "create", newState: { type: "sglang-gateway:index:Replica" } },
                { op: "create", newState: { type: "pulumi-nodejs:dynamic/sglang-gateway:HostScript" } },
                { op: "create", newState: { type: "pulumi-nodejs:dynamic/sglang-gateway:HostScript" } },
                { op: "delete", oldState: { type: "pulumi-nodejs:dynamic/sglang-gateway:SglangRouterWorker" } },
            ],
        });
        assert.deepStrictEqual(plannedChanges(preview), { "create Replica": 1, "create HostScript": 2, "delete SglangRouterWorker": 1 });
    });

    it("the serialized providers' share of a state file: __provider in each resource's inputs and outputs", () => {
        const code = "exports.handler = __f0;";
        const state = JSON.stringify({
            version: 3,
            checkpoint: {
                latest: {
                    resources: [
                        { urn: "a", inputs: { __provider: code, create: "x" }, outputs: { __provider: code } },
                        { urn: "b", inputs: { name: "gw" } },
                    ],
                },
            },
        });
        assert.strictEqual(providerBytes(state), 2 * JSON.stringify(code).length);
    });

    it("N→N+1 stays within a service's 64 replicas", () => {
        assert.deepStrictEqual(scalingStep(1), { from: 1, to: 2 });
        assert.deepStrictEqual(scalingStep(64), { from: 63, to: 64 });
    });

    it("a traced run's breakdown: program load, provider start, provider calls named by the event log", () => {
        const span = (service: string, name: string, start: number, end: number, kind?: string) => ({
            resourceSpans: [
                {
                    resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
                    scopeSpans: [
                        {
                            spans: [
                                {
                                    name,
                                    startTimeUnixNano: String(BigInt(start * 1e6) * 1000n),
                                    endTimeUnixNano: String(BigInt(end * 1e6) * 1000n),
                                    attributes: kind ? [{ key: "kind", value: { stringValue: kind } }] : [],
                                },
                            ],
                        },
                    ],
                },
            ],
        });
        const register = "/pulumirpc.ResourceMonitor/RegisterResource";
        const trace = [
            span("opentracing-plugin", "execNodejs", 1, 40),
            span("pulumi-language-host", register, 2, 2.1),
            span("pulumi-language-host", register, 30, 30.1),
            span("pulumi-cli", "newPlugin", 30.1, 32, "resource"),
            span("pulumi-cli", "newPlugin", 0.5, 0.6, "language"),
            span("pulumi-cli", "pulumirpc.ResourceProvider/Diff", 32, 32.25),
            span("pulumi-cli", "pulumirpc.ResourceProvider/Create", 33, 34.5),
            span("pulumi-cli", "pulumirpc.ResourceProvider/Create", 35, 35.5),
        ]
            .map((s) => JSON.stringify(s))
            .join("\n");
        const pre = (op: string, name: string, type: string) =>
            JSON.stringify({ sequence: 1, resourcePreEvent: { metadata: { op, urn: `urn:pulumi:s::p::${type}::${name}`, type } } });
        const events = [
            pre("create", "chat-replica-1", "sglang-gateway:index:Replica"),
            pre("create", "chat-replica-1-process", "pulumi-nodejs:dynamic/sglang-gateway:HostScript"),
            pre("same", "chat-replica-0-process", "pulumi-nodejs:dynamic/sglang-gateway:HostScript"),
            pre("create", "chat-replica-1-tunnel", "pulumi-nodejs:dynamic/sglang-gateway:HostScript"),
        ].join("\n");
        assert.deepStrictEqual(operationsOf(events), [
            { op: "create", name: "chat-replica-1-process", type: "HostScript" },
            { op: "create", name: "chat-replica-1-tunnel", type: "HostScript" },
        ]);
        const timing = timingOf(41, parseSpans(trace), events);
        assert.strictEqual(timing.programLoadSeconds, 29);
        assert.ok(Math.abs(timing.providerStartSeconds - 1.9) < 1e-9, "only the resource plugin's start");
        assert.ok(Math.abs(timing.checkDiffSeconds - 0.25) < 1e-9);
        assert.strictEqual(timing.changeSeconds, 2);
        assert.deepStrictEqual(timing.changes, [
            { step: "create chat-replica-1-process", seconds: 1.5 },
            { step: "create chat-replica-1-tunnel", seconds: 0.5 },
        ]);
        assert.strictEqual(timing.resourcesRegistered, 2);
        assert.ok(Math.abs(timing.registrationSeconds - 0.1) < 1e-9);
    });
});

describe("bench: the report", () => {
    it("renders every section from a run's measurements, each table row as wide as its header", () => {
        const timing = {
            wallSeconds: 30,
            programLoadSeconds: 20,
            providerStartSeconds: 1,
            checkDiffSeconds: 0.5,
            changeSeconds: 3,
            changes: [
                { step: "create bench-setup", seconds: 9 },
                { step: "create chat-replica-0-process", seconds: 1 },
            ],
            registrationSeconds: 2,
            resourcesRegistered: 11,
        };
        const pathRun = (variant: string, concurrency: number, repetition: number): PathRun => ({
            variant,
            concurrency,
            repetition,
            summary: { requests: 100, seconds: 1, requestsPerSecond: 100, p50Ms: 1, p99Ms: 2 },
            cpuUs: { nginx: 1, router: 2, ssh: 3, sshd: 4, worker: 5, journald: 6 },
            loadgenCpuUs: 7,
            logBytes: { router: 900, nginx: 120 },
            errors: {},
        });
        const c = quickMode.concurrencies;
        const text = renderReport({
            mode: quickMode,
            command: "npm run bench -- --quick",
            started: new Date(0),
            minutes: 6,
            machine: { cpu: "cpu", cores: 2, memory: "1 GiB", kernel: "6", node: "v20", pulumi: "v3" },
            routerPackage: "smg==1.13.0",
            nginx: "nginx/1.22.1",
            otherSandboxes: [],
            loadAverages: [1, 2],
            hops: hops(),
            dataPath: hops().flatMap((h) => c.map((cc) => pathRun(h.name, cc, 0))),
            streams: ["direct", "tunnel", "tunnelNoSession", "gateway"].map((variant) => ({
                variant,
                tokensPerSecond: 20,
                concurrency: 1,
                repetition: 0,
                streams: 3,
                firstChunkMs: { p50: 1, p90: 2, p99: 3 },
                gapMs: { p50: 50, p99: 55, max: 60 },
                bunched: 0,
                errors: 0,
            })),
            priorArt: ["ours", "priorArt"].flatMap((v) => c.map((cc) => pathRun(v, cc, 0))),
            tuning: [...routerVariants, ...bridgeVariants, ...tunnelVariants].flatMap((v) => c.map((cc) => pathRun(v.name, cc, 0))),
            scaling: {
                runs: [
                    { kind: "preview", from: 1, to: 2, repetition: 0, timing, planned: { "create HostScript": 3 }, sshLogins: { gw: 0, r1: 0, r2: 0 } },
                    { kind: "preview, transpile-only", from: 1, to: 2, repetition: 0, timing },
                    { kind: "up", from: 1, to: 2, repetition: 0, timing, sshLogins: { gw: 3, r1: 0, r2: 2 }, stateBytes: 600000, stateProviderBytes: 300000 },
                    { kind: "down", from: 2, to: 1, repetition: 0, timing },
                ],
            },
            timeToServe: [{ sandboxUpSeconds: 9, up: timing, firstAnswerSeconds: 0.02, firstAnswerAttempts: 1 }],
        });
        for (const section of ["## Data path", "## Streams", "## Prior art", "## Tuning", "## Scaling cost", "## Time to serve", "## Findings"]) {
            assert.ok(text.includes(section), section);
        }
        assert.match(text, /quick mode/);
        assert.match(text, /state file holds 0\.6 MB at N=1 \(50% of it/);
        assert.match(text, /Router logging at concurrency 64 .*one JSON line \(the default now\)/);
        assert.match(text, /\| router as deployed, straight to an SSH TCP forward \(no bridge\) \|/);
    });
});
