// Hostile requests against the real gateway data path on loopback: real nginx with the rendered
// server block in front of the real router (each generation) with two fake workers registered.
// Every request carries a valid token (the worst case: a client of the service). Each must answer
// 4xx, never reach the router's admin API, never leak an internal address; the router's worker
// list must be the same afterwards.
import * as assert from "assert";
import * as net from "net";
import { serverBlockText } from "../../components/host-files/server-block";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startFakeWorkers, type FakeWorkerFleet } from "../helpers/fake-workers";
import { startNginx } from "../helpers/nginx";
import { freePort } from "../helpers/ports";
import { ROUTER_VERSIONS, startRealRouter, type RealRouter } from "../helpers/real-router";

const token = "tok-0123456789abcdef";
const host = "chat.example.com";

/** Sends raw bytes, collects every status line nginx answers with (pipelining gives several). */
function raw(port: number, request: string, ms = 3000): Promise<{ statuses: number[]; text: string }> {
    return new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        let text = "";
        const done = () => {
            socket.destroy();
            // A pipelined answer follows the previous body without a line break: no anchor.
            resolve({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])), text });
        };
        socket.setTimeout(ms, done);
        socket.on("data", (chunk) => (text += chunk.toString("latin1")));
        socket.on("close", done);
        socket.on("error", done);
        socket.write(request, "latin1");
    });
}

const get = (path: string, headers = `Host: ${host}\r\nAuthorization: Bearer ${token}\r\n`) => `GET ${path} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`;
const post = (path: string, body: string, extra = "") =>
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;

function hostileRequests(routerPort: number, workerUrl: string): [string, string][] {
    const admin = [
        "/workers",
        "/workers/00000000-0000-0000-0000-000000000000",
        "/list_workers",
        "/get_loads",
        "/get_server_info",
        "/server_info",
        "/get_model_info",
        "/model_info",
        "/metrics",
        "/engine_metrics",
        "/health",
        "/health_generate",
        "/readiness",
        "/liveness",
        "/v1/tokenizers",
        "/v1/conversations",
        "/v1/responses/resp_0123",
        "/v1/loads",
        "/flush_cache",
        "/wasm",
    ];
    return [
        ...admin.map((p): [string, string] => [`GET ${p}`, get(p)]),
        ["POST /workers (add a worker)", post("/workers", JSON.stringify({ url: "http://127.0.0.1:9/" }))],
        ["POST /add_worker", post(`/add_worker?url=${encodeURIComponent("http://127.0.0.1:9")}`, "")],
        ["POST /remove_worker", post(`/remove_worker?url=${encodeURIComponent(workerUrl)}`, "")],
        [
            "DELETE /workers/{id}",
            `DELETE /workers/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
        ],
        ["POST /flush_cache", post("/flush_cache", "")],
        ["percent-encoded /workers", get("/%77orkers")],
        ["double-encoded /workers", get("/%2577orkers")],
        ["encoded slash and dots", get("/v1/..%2fworkers")],
        ["dot segments", get("/v1/chat/completions/../../workers")],
        ["encoded dot segments", get("/v1/%2e%2e/workers")],
        ["leading double slash", get("//workers")],
        ["dot slash", get("/./workers")],
        ["absolute form to the router's port", get(`http://127.0.0.1:${routerPort}/workers`)],
        ["absolute form to the service host", get(`http://${host}/workers`)],
        ["Host in upper case", get("/workers", `Host: CHAT.EXAMPLE.COM\r\nAuthorization: Bearer ${token}\r\n`)],
        ["Host with a port", get("/workers", `Host: ${host}:80\r\nAuthorization: Bearer ${token}\r\n`)],
        ["HTTP/1.0 without Host, no token", "GET /workers HTTP/1.0\r\n\r\n"],
        ["HTTP/1.0 without Host, admin path", `GET /flush_cache HTTP/1.0\r\nAuthorization: Bearer ${token}\r\n\r\n`],
        ["pipelined admin request after a good one", `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n${get("/workers")}`],
        [
            "CL and TE together (smuggling)",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${get("/workers")}`,
        ],
        [
            "TE with a space before the colon",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`,
        ],
        ["TE chunked, identity", post("/v1/chat/completions", "0\r\n\r\n", "Transfer-Encoding: chunked, identity\r\n")],
        ["TE xchunked", post("/v1/chat/completions", "0\r\n\r\n", "Transfer-Encoding: xchunked\r\n")],
        [
            "body over the limit (Content-Length 100 MB)",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n{}`,
        ],
        ["path of 20 kB", get(`/v1/${"a".repeat(20000)}`)],
        ["header of 20 kB", get("/v1/models", `Host: ${host}\r\nAuthorization: Bearer ${token}\r\nX-Big: ${"b".repeat(20000)}\r\n`)],
        ["TRACE", `TRACE /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`],
        ["NUL byte in the path", get("/v1/models%00/../../workers")],
        ["a bare line feed request", `GET /workers HTTP/1.1\nHost: ${host}\nAuthorization: Bearer ${token}\n\n`],
    ];
}

for (const version of ROUTER_VERSIONS) {
    describe(`hostile requests through real nginx to the real router ${version}`, function () {
        this.timeout(120000);
        let router: RealRouter;
        let fleet: FakeWorkerFleet;
        let nginx: Awaited<ReturnType<typeof startNginx>>;
        let port: number;

        before(async () => {
            [router, fleet] = await Promise.all([startRealRouter({ version, policy: "round_robin" }), startFakeWorkers(2, { namePrefix: "replica" })]);
            for (const w of fleet.workers) {
                await fetch(`${router.url}/workers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: w.url }) });
            }
            for (let i = 0; i < 100 && (await workerList()).filter((w) => w.is_healthy).length < 2; i++) {
                await new Promise((r) => setTimeout(r, 100));
            }
            port = await freePort();
            const text = serverBlockText({
                service: "chat",
                serverName: host,
                auth: true,
                tokens: [token],
                upstreamServers: [`127.0.0.1:${router.port}`],
                allow: sglangRouter.inferencePaths,
                internalResponseHeaders: sglangRouter.internalResponseHeaders(version),
                noWorkerAnswer: sglangRouter.noWorkerAnswer(version),
                servedModel: "fake-model",
                rateLimits: [],
                httpPort: port,
            });
            nginx = await startNginx({ services: { "chat.conf": text } });
        });
        after(async () => Promise.all([nginx?.stop(), fleet?.stop(), router?.stop()]));

        async function workerList(): Promise<{ id: string; url: string; is_healthy: boolean }[]> {
            return ((await (await fetch(`${router.url}/workers`)).json()) as { workers: { id: string; url: string; is_healthy: boolean }[] }).workers;
        }

        it("at least 40 hostile requests all answer 4xx; the router's workers are untouched; nothing internal leaks", async () => {
            const before = (await workerList()).map((w) => `${w.id} ${w.url}`).sort();
            assert.strictEqual(before.length, 2);
            const cases = hostileRequests(router.port, fleet.workers[0].url);
            assert.ok(cases.length >= 40, `${cases.length} cases`);
            const wrong: string[] = [];
            for (const [title, request] of cases) {
                const { statuses, text } = await raw(port, request);
                // A pipelined or smuggled admin request answers with its own status after the first.
                const hostile = title.startsWith("pipelined") ? statuses.slice(1) : statuses;
                if (hostile.length === 0 || hostile.some((s) => s < 400 || s >= 500)) {
                    wrong.push(`${title}: ${statuses.join(",") || "no answer"}`);
                }
                if (/x-smg-|127\.0\.0\.1:\d|nginx\/\d/i.test(text)) {
                    wrong.push(`${title}: leaks ${/x-smg-[^\r\n]*|127\.0\.0\.1:\d+|nginx\/[\d.]+/i.exec(text)?.[0]}`);
                }
            }
            assert.deepStrictEqual(wrong, []);
            assert.deepStrictEqual((await workerList()).map((w) => `${w.id} ${w.url}`).sort(), before, "the router's workers are unchanged");
            const ok = await raw(port, post("/v1/chat/completions", JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] })));
            assert.deepStrictEqual(ok.statuses, [200], "and the service still serves");
        });
    });
}
