// The prior art's bridge (no upstream keepalive: one new connection, so one new SSH channel, per request)
// against this project's, both rendered from the same template beside the real bridge on the sandbox
// gateway, in front of the same tunnel socket, measured side by side.
import { bridgeFile } from "../components/host-files/replica";
import { replicaPaths } from "../components/naming";
import { measureSideBySide, type PathRun } from "./datapath";
import type { HostSession } from "./hosts";
import type { BenchMode } from "./mode";
import { service } from "./topology";

/** Above every bridge port (12000-31199), below the ephemeral range (32768). */
const ports = { ours: 31900, priorArt: 31901 };

export const priorArtVariants = [
    { name: "ours", label: "this project's bridge (keepalive 16)" },
    { name: "priorArt", label: "prior art's bridge (no upstream keepalive)" },
];

/** The prior art's variant of a rendered bridge: the same file without upstream keepalive. */
export function withoutKeepalive(text: string): string {
    const stripped = text
        .replace(/^\s*keepalive \d+;\n/m, "")
        .replace(/^\s*keepalive_timeout \S+;\n/m, "")
        .replace(/^\s*proxy_set_header Connection "";\n/m, "");
    if (stripped === text || /keepalive/.test(stripped.replace(/#.*$/gm, ""))) {
        throw new Error("bench: the bridge template changed: no `keepalive N;` line to remove for the prior art's variant");
    }
    return stripped;
}

function files() {
    const target = `unix:${replicaPaths(service, 0).socket}`;
    const ours = bridgeFile({ service: "bench-ours", index: 0, bridgePort: ports.ours, target });
    const prior = bridgeFile({ service: "bench-prior-art", index: 0, bridgePort: ports.priorArt, target });
    return [ours, { ...prior, content: withoutKeepalive(prior.content) }];
}

export async function measurePriorArt(gateway: HostSession, mode: BenchMode): Promise<PathRun[]> {
    const written = files();
    const busy = await gateway.run(`ss -Hltn 'sport = :${ports.ours} or sport = :${ports.priorArt}'`);
    if (busy.trim() !== "") {
        throw new Error(`bench: ports ${ports.ours}/${ports.priorArt} are taken on the gateway:\n${busy}`);
    }
    for (const f of written) {
        await gateway.run(`cat > ${f.path}`, f.content);
    }
    let runs: PathRun[] = [];
    try {
        await gateway.run("nginx -t 2>&1 && systemctl reload nginx");
        for (const port of Object.values(ports)) {
            await gateway.run(`for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:${port}/health && exit 0; sleep 0.2; done; exit 1`);
        }
        runs = await measureSideBySide(
            "prior art",
            [
                { name: "ours", session: gateway, target: { host: "127.0.0.1", port: ports.ours, headers: {} } },
                { name: "priorArt", session: gateway, target: { host: "127.0.0.1", port: ports.priorArt, headers: {} } },
            ],
            mode,
        );
    } finally {
        await gateway.run(`rm -f ${written.map((f) => f.path).join(" ")} && nginx -t 2>&1 && systemctl reload nginx`);
    }
    return runs;
}
