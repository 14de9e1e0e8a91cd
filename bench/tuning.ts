// The defaults' alternatives, side by side on the sandbox gateway beside the deployed path, in front of the same
// model server (replica 0): each variant is a process of its own, started as a transient systemd unit named like
// the deployed ones so the CPU sampling classes it (bench/cpu.ts), and gone after the phase.
//
//   router: its per-request log lines (as before 0.4: two ANSI-coloured lines; as deployed: one JSON line;
//           none: --log-level warn), and whether the bridge hop can go (the router straight to a TCP forward).
//   bridge: its upstream keepalive (idle connections to the tunnel's socket each nginx worker keeps: past them,
//           a connection closes after its request, and the next one opens a new SSH channel).
//   tunnel: the SSH cipher (OpenSSH's default chacha20-poly1305 against AES-GCM, which this CPU has instructions for).
import { bridgeFile } from "../components/host-files/replica";
import { bridgePort, portSlot, replicaPaths } from "../components/naming";
import { sglangRouterCommand } from "../components/routers/sglang/router";
import { smg1 } from "../components/routers/sglang/generations";
import { measure, type PathRun } from "./datapath";
import type { HostSession } from "./hosts";
import type { BenchMode } from "./mode";
import { fmt } from "./stats";
import { service } from "./topology";

/** Above every bridge port (12000-31199) and the prior art's (31900-31901), below the ephemeral range (32768). */
const ports = { routerBase: 31910, metricsBase: 31930, tcpForward: 31950, bridgeBase: 31960 };
const socketDir = "/run/sgw-bench-tuning";

interface RouterVariant {
    name: string;
    label: string;
    extraArgs: string[];
    dropArgs: string[];
    environment: Record<string, string>;
    /** The worker URL it routes to: replica 0's bridge, or the TCP forward. */
    worker: "bridge" | "tcpForward";
}

export const routerVariants: RouterVariant[] = [
    {
        name: "routerTwoLines",
        label: "router, two ANSI-coloured INFO lines a request (before 0.4)",
        extraArgs: [],
        dropArgs: ["--log-json"],
        environment: {},
        worker: "bridge",
    },
    {
        name: "routerOneLine",
        label: "router as deployed: one JSON line a request",
        extraArgs: [],
        dropArgs: [],
        environment: { ...smg1.environment },
        worker: "bridge",
    },
    {
        name: "routerQuiet",
        label: "router with --log-level warn: no request line",
        extraArgs: ["--log-level", "warn"],
        dropArgs: [],
        environment: {},
        worker: "bridge",
    },
    {
        name: "routerNoBridge",
        label: "router as deployed, straight to an SSH TCP forward (no bridge)",
        extraArgs: [],
        dropArgs: [],
        environment: { ...smg1.environment },
        worker: "tcpForward",
    },
];

export const tunnelVariants = [
    { name: "tunnelChacha", label: "tunnel socket, chacha20-poly1305 (OpenSSH's default, deployed)", cipher: "chacha20-poly1305@openssh.com" },
    { name: "tunnelAesGcm", label: "tunnel socket, aes128-gcm", cipher: "aes128-gcm@openssh.com" },
];

export const bridgeVariants = [
    { name: "bridgeKeepalive16", label: "bridge, upstream keepalive 16 (deployed)", keepalive: 16 },
    { name: "bridgeKeepalive64", label: "bridge, upstream keepalive 64", keepalive: 64 },
];

/** A bridge as the template renders it for replica 0's socket, with another keepalive. */
export function bridgeVariant(index: number, keepalive: number) {
    const file = bridgeFile({
        service: `bench-tuning-${index}`,
        index: 0,
        bridgePort: ports.bridgeBase + index,
        target: `unix:${replicaPaths(service, 0).socket}`,
    });
    const content = file.content.replace(/^(\s*)keepalive \d+;$/m, `$1keepalive ${keepalive};`);
    if (!new RegExp(`^\\s*keepalive ${keepalive};$`, "m").test(content)) throw new Error("bench: the bridge template changed: no `keepalive N;` line");
    return { ...file, content };
}

const routerUnit = (v: { name: string }) => `sglang-gateway-router-bench${v.name.toLowerCase()}.service`;
const tunnelUnit = (name: string) => `sglang-gateway-tunnel-bench-${name.toLowerCase()}.service`;
const tunnelSocket = (name: string) => `${socketDir}/${name}.sock`;

/** The deployed tunnel's ssh command line, with another forward and cipher: the same key, known host and options. */
export function tunnelCommand(deployedExecStart: string, forward: string, cipher: string): string {
    const socket = replicaPaths(service, 0).socket;
    const start = deployedExecStart.replace(/^ExecStart=/, "").trim();
    const forwardAt = start.indexOf(`-L ${socket}:`);
    if (!start.startsWith("/usr/bin/ssh ") || forwardAt < 0) {
        throw new Error(`bench: the tunnel unit's ExecStart changed (no "/usr/bin/ssh … -L ${socket}:"): ${start}`);
    }
    const rest = start.slice(forwardAt + `-L ${socket}:`.length);
    return `/usr/bin/ssh -c ${cipher} ${start.slice("/usr/bin/ssh ".length, forwardAt)}-L ${forward}:${rest}`;
}

function systemdRun(unit: string, command: string, environment: Record<string, string> = {}): string {
    const env = Object.entries(environment)
        .map(([k, v]) => `-E '${k}=${v}'`)
        .join(" ");
    return `systemd-run --quiet --collect --unit=${unit} ${env} -- ${command}`;
}

async function waitFor(gateway: HostSession, what: string, check: string): Promise<void> {
    await gateway.run(`for i in $(seq 150); do ${check} && exit 0; sleep 0.2; done; echo "bench: ${what} did not come up" >&2; exit 1`);
}

export async function measureTuning(gateway: HostSession, mode: BenchMode): Promise<PathRun[]> {
    const paths = replicaPaths(service, 0);
    const execStart = (await gateway.run(`grep '^ExecStart=' /etc/systemd/system/${paths.tunnelUnit}`)).trim();
    const busy = await gateway.run(`ss -Hltn 'sport >= :${ports.routerBase} and sport <= :${ports.bridgeBase + bridgeVariants.length}'`);
    if (busy.trim() !== "") throw new Error(`bench: ports ${ports.routerBase}-${ports.bridgeBase + bridgeVariants.length} are taken on the gateway:\n${busy}`);
    const units = [...routerVariants.map(routerUnit), ...tunnelVariants.map((t) => tunnelUnit(t.name)), tunnelUnit("tcp")];
    const logDirs = routerVariants.map((v) => `/var/log/sglang-gateway/bench-${v.name}`);
    const bridges = bridgeVariants.map((b, i) => bridgeVariant(i, b.keepalive));
    const runs: PathRun[] = [];
    try {
        for (const f of bridges) await gateway.run(`cat > ${f.path}`, f.content);
        await gateway.run("nginx -t 2>&1 && systemctl reload nginx");
        await gateway.run(`mkdir -p -m 0711 ${socketDir}`);
        for (const t of tunnelVariants) {
            await gateway.run(systemdRun(tunnelUnit(t.name), tunnelCommand(execStart, tunnelSocket(t.name), t.cipher)));
        }
        await gateway.run(systemdRun(tunnelUnit("tcp"), tunnelCommand(execStart, `127.0.0.1:${ports.tcpForward}`, tunnelVariants[0].cipher)));
        for (const t of tunnelVariants) {
            await waitFor(gateway, t.name, `curl -sf -o /dev/null --unix-socket ${tunnelSocket(t.name)} http://replica/health`);
        }
        await waitFor(gateway, "the TCP forward", `curl -sf -o /dev/null http://127.0.0.1:${ports.tcpForward}/health`);
        const workers = {
            bridge: `http://127.0.0.1:${bridgePort(portSlot(service), 0)}`,
            tcpForward: `http://127.0.0.1:${ports.tcpForward}`,
        };
        for (const [i, v] of routerVariants.entries()) {
            const command = sglangRouterCommand({
                service,
                user: "root",
                version: smg1.versions[0],
                port: ports.routerBase + i,
                metricsPort: ports.metricsBase + i,
                policy: "round_robin",
                workerStartupTimeoutSeconds: 60,
                workerUrls: [],
            })
                .filter((arg) => !v.dropArgs.includes(arg))
                .map((arg) => (arg.startsWith("/var/log/sglang-gateway/") ? logDirs[i] : arg));
            await gateway.run(systemdRun(routerUnit(v), [...command, ...v.extraArgs, "--worker-urls", workers[v.worker]].join(" "), v.environment));
        }
        const body = `{"model":"fake-model","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`;
        for (const [i, v] of routerVariants.entries()) {
            await waitFor(
                gateway,
                v.name,
                `curl -sf -o /dev/null -H 'content-type: application/json' -d '${body}' http://127.0.0.1:${ports.routerBase + i}/v1/chat/completions`,
            );
        }
        const targets = [
            ...routerVariants.map((v, i) => ({ name: v.name, target: { host: "127.0.0.1", port: ports.routerBase + i, headers: {} } })),
            ...tunnelVariants.map((t) => ({ name: t.name, target: { socketPath: tunnelSocket(t.name), headers: {} } })),
            ...bridgeVariants.map((b, i) => ({ name: b.name, target: { host: "127.0.0.1", port: ports.bridgeBase + i, headers: {} } })),
        ];
        for (let repetition = 0; repetition < mode.repetitions; repetition++) {
            for (const concurrency of mode.concurrencies) {
                for (let k = 0; k < targets.length; k++) {
                    const v = targets[(k + repetition) % targets.length];
                    const run = await measure(gateway, v.name, v.target, concurrency, repetition, mode);
                    console.error(
                        `bench: tuning ${repetition + 1}/${mode.repetitions} c=${concurrency} ${v.name.padEnd(14)} ` +
                            `p50 ${fmt(run.summary.p50Ms)} ms ${fmt(run.summary.requestsPerSecond, 0)} req/s`,
                    );
                    runs.push(run);
                }
            }
        }
    } finally {
        await gateway.exec(
            `systemctl stop ${units.join(" ")} 2>/dev/null; rm -rf ${socketDir} ${logDirs.join(" ")} ${bridges.map((f) => f.path).join(" ")}; nginx -t 2>&1 && systemctl reload nginx`,
        );
    }
    return runs;
}
