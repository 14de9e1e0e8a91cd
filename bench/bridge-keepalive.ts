// Benchmark: the nginx bridge with upstream keepalive (what the gateway renders) against the same
// bridge without it (the prior art's weak spot), side by side in one run. Real nginx, a unix-socket
// upstream like the tunnel's, loopback only, bounded request counts.
//   npm run bench            (or: npx ts-node --transpile-only bench/bridge-keepalive.ts [requests])
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { render } from "../components/templates";
import { startNginx } from "../test/helpers/nginx";
import { freePort } from "../test/helpers/ports";

const requests = Number(process.argv[2] ?? 3000);
const concurrency = 8;

async function upstream(socket: string): Promise<{ server: http.Server; connections: () => number }> {
    let connections = 0;
    const server = http.createServer((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"text":"ok"}');
    });
    server.on("connection", () => connections++);
    fs.rmSync(socket, { force: true });
    await new Promise<void>((r) => server.listen(socket, r));
    return { server, connections: () => connections };
}

async function drive(port: number): Promise<{ seconds: number; latencies: number[] }> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const latencies: number[] = [];
    let next = 0;
    const started = process.hrtime.bigint();
    const worker = async () => {
        while (next < requests) {
            next++;
            const t0 = process.hrtime.bigint();
            await new Promise<void>((resolve, reject) =>
                http
                    .get({ host: "127.0.0.1", port, path: "/generate", agent }, (res) => {
                        if (res.statusCode !== 200) {
                            reject(new Error(`bridge answered ${res.statusCode}`));
                        }
                        res.resume();
                        res.on("end", () => resolve());
                    })
                    .on("error", reject),
            );
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    agent.destroy();
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies: latencies.sort((a, b) => a - b) };
}

async function measure(keepalive: boolean) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-bench-"));
    fs.chmodSync(dir, 0o711); // nginx's workers run unprivileged and must reach the socket
    const socket = path.join(dir, "replica.sock");
    const up = await upstream(socket);
    fs.chmodSync(socket, 0o666);
    const bridgePort = await freePort();
    let text = render("nginx/bridge.conf.njk", {
        service: "bench",
        index: 0,
        bridgePort,
        target: `unix:${socket}`,
        upstreamName: "sgw_bench_replica_0",
        readTimeoutSeconds: 60,
    });
    if (!keepalive) {
        text = text.replace(/^\s*keepalive \d+;\n/m, "").replace(/^\s*proxy_set_header Connection "";\n/m, "");
    }
    const nginx = await startNginx({ bridges: { "bench.conf": text } });
    try {
        await drive(bridgePort); // warm-up, not counted
        const before = up.connections();
        const { seconds, latencies } = await drive(bridgePort);
        const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(2);
        return { rps: (requests / seconds).toFixed(0), p50: pct(50), p99: pct(99), upstreamConnections: up.connections() - before };
    } finally {
        await nginx.stop();
        up.server.close();
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

async function main() {
    const withKeepalive = await measure(true);
    const without = await measure(false);
    console.log(`bridge benchmark: ${requests} requests, concurrency ${concurrency}, nginx → unix socket upstream`);
    console.log("variant                 req/s    p50 ms   p99 ms   new upstream connections");
    for (const [name, r] of [
        ["keepalive 16 (ours)", withKeepalive],
        ["no keepalive", without],
    ] as const) {
        console.log(`${name.padEnd(22)}  ${r.rps.padStart(6)}   ${r.p50.padStart(6)}   ${r.p99.padStart(6)}   ${String(r.upstreamConnections).padStart(6)}`);
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
