// The defaults' alternatives, side by side on the sandbox gateway beside the deployed path, in front of the same
// model server (replica 0): each variant is a process of its own, started as a transient systemd unit named like
// the deployed ones so the CPU sampling classes it (bench/cpu.ts), and gone after the phase.
//
//   router: its per-request log lines (as before 0.4: two ANSI-coloured lines; as deployed: one JSON line;
//           none: --log-level warn), and whether the bridge hop can go (the router straight to a TCP forward).
//   bridge: its upstream keepalive (idle connections to the tunnel's socket each nginx worker keeps: past them,
//           a connection closes after its request, and the next one opens a new SSH channel).
//   tunnel: the SSH cipher (OpenSSH's default chacha20-poly1305 against AES-GCM, which this CPU has instructions
//           for), and what idle channels cost every request (32 idle connections held open on its socket).
// Every variant below the router has a tunnel of its own: ssh's work per request grows with the channels open,
// so variants sharing one would charge each other for their idle connections.
import { bridgeFile } from "../components/host-files/replica";
import { bridgePort, portSlot, replicaPaths } from "../components/naming";
import { sglangRouterCommand } from "../components/routers/sglang/router";
import { smg1 } from "../components/routers/sglang/generations";
import { measureSideBySide, type PathRun, type SideBySideTarget } from "./datapath";
import type { HostSession } from "./hosts";
import type { BenchMode } from "./mode";
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

const ciphers = { chacha: "chacha20-poly1305@openssh.com", aes: "aes128-gcm@openssh.com" };

/** Idle connections one tuning variant holds open on its tunnel's socket. */
const idleChannels = 32;

export const tunnelVariants = [
    { name: "tunnelChacha", label: "tunnel socket, chacha20-poly1305 (OpenSSH's default, deployed)", cipher: ciphers.chacha, idle: 0 },
    { name: "tunnelAesGcm", label: "tunnel socket, aes128-gcm", cipher: ciphers.aes, idle: 0 },
    { name: "tunnelIdle", label: `tunnel socket, chacha20-poly1305, ${idleChannels} idle channels open`, cipher: ciphers.chacha, idle: idleChannels },
];

export const bridgeVariants = [
    { name: "bridgeKeepalive16", label: "bridge, upstream keepalive 16, idle ones closed after 10 s (deployed)", keepalive: 16 },
    { name: "bridgeKeepalive64", label: "bridge, upstream keepalive 64, idle ones closed after 10 s", keepalive: 64 },
];

/** A bridge as the template renders it, in front of a tuning tunnel's socket, with another keepalive. */
export function bridgeVariant(index: number, keepalive: number, socket: string) {
    const file = bridgeFile({ service: `bench-tuning-${index}`, index: 0, bridgePort: ports.bridgeBase + index, target: `unix:${socket}` });
    const content = file.content.replace(/^(\s*)keepalive \d+;$/m, `$1keepalive ${keepalive};`);
    if (!new RegExp(`^\\s*keepalive ${keepalive};$`, "m").test(content)) throw new Error("bench: the bridge template changed: no `keepalive N;` line");
    return { ...file, content };
}

const routerUnit = (v: { name: string }) => `sglang-gateway-router-bench${v.name.toLowerCase()}.service`;
const tunnelUnit = (name: string) => `sglang-gateway-tunnel-bench-${name.toLowerCase()}.service`;
const tunnelSocket = (name: string) => `${socketDir}/${name}.sock`;

/** A node script that opens `count` keep-alive connections to a socket (one GET /health each) and holds them idle. */
function idleHolder(socket: string, count: number): string {
    const script =
        `const http = require("http"); const agent = new http.Agent({ keepAlive: true, maxSockets: ${count}, maxFreeSockets: ${count}, keepAliveMsecs: 1e9 });` +
        `for (let i = 0; i < ${count}; i++) http.get({ socketPath: "${socket}", path: "/health", agent }, (r) => r.resume());` +
        "setInterval(() => {}, 1e9);";
    return `/usr/bin/node -e '${script}'`;
}

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
    // The tunnels: one per tunnel and bridge variant, and the TCP forward of the router without the bridge.
    const tunnels = [
        ...tunnelVariants.map((t) => ({ name: t.name, cipher: t.cipher, forward: tunnelSocket(t.name) })),
        ...bridgeVariants.map((b) => ({ name: b.name, cipher: ciphers.chacha, forward: tunnelSocket(b.name) })),
        { name: "tcp", cipher: ciphers.chacha, forward: `127.0.0.1:${ports.tcpForward}` },
    ];
    const holderUnit = "sgw-bench-idle-holder.service";
    const units = [...routerVariants.map(routerUnit), ...tunnels.map((t) => tunnelUnit(t.name)), holderUnit];
    const logDirs = routerVariants.map((v) => `/var/log/sglang-gateway/bench-${v.name}`);
    const bridges = bridgeVariants.map((b, i) => bridgeVariant(i, b.keepalive, tunnelSocket(b.name)));
    let runs: PathRun[] = [];
    try {
        await gateway.run(`mkdir -p -m 0711 ${socketDir}`);
        for (const t of tunnels) {
            await gateway.run(systemdRun(tunnelUnit(t.name), tunnelCommand(execStart, t.forward, t.cipher)));
        }
        for (const t of tunnels) {
            const url = t.forward.startsWith("/") ? `--unix-socket ${t.forward} http://replica/health` : `http://${t.forward}/health`;
            await waitFor(gateway, `the tunnel ${t.name}`, `curl -sf -o /dev/null ${url}`);
        }
        for (const t of tunnelVariants.filter((v) => v.idle > 0)) {
            await gateway.run(systemdRun(holderUnit, idleHolder(tunnelSocket(t.name), t.idle)));
            await waitFor(
                gateway,
                `${t.idle} idle connections on ${t.name}`,
                `[ "$(ss -Hx state connected | grep -c ' ${tunnelSocket(t.name)} ')" -ge ${t.idle} ]`,
            );
        }
        for (const f of bridges) await gateway.run(`cat > ${f.path}`, f.content);
        await gateway.run("nginx -t 2>&1 && systemctl reload nginx");
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
        const target = (name: string, t: SideBySideTarget["target"]) => ({ name, session: gateway, target: t });
        runs = await measureSideBySide(
            "tuning",
            [
                ...routerVariants.map((v, i) => target(v.name, { host: "127.0.0.1", port: ports.routerBase + i, headers: {} })),
                ...tunnelVariants.map((t) => target(t.name, { socketPath: tunnelSocket(t.name), headers: {} })),
                ...bridgeVariants.map((b, i) => target(b.name, { host: "127.0.0.1", port: ports.bridgeBase + i, headers: {} })),
            ],
            mode,
        );
    } finally {
        await gateway.exec(
            `systemctl stop ${units.join(" ")} 2>/dev/null; rm -rf ${socketDir} ${logDirs.join(" ")} ${bridges.map((f) => f.path).join(" ")}; nginx -t 2>&1 && systemctl reload nginx`,
        );
    }
    return runs;
}
