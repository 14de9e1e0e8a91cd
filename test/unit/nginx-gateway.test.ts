// The service block served by the real nginx on loopback: auth, allow-list, rate limits, 503, streaming.
import * as assert from "assert";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import type { AddressInfo } from "net";
import { serverBlockText, type ServerBlockInput } from "../../components/host-files/server-block";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startNginx } from "../helpers/nginx";
import { loopbackRequest, type LoopbackAnswer } from "../helpers/loopback-http";
import { freePort } from "../helpers/ports";

const token = "tok-0123456789abcdef";

function request(
    port: number,
    path: string,
    options: { token?: string; authorization?: string; method?: string; body?: string; host?: string; answer?: string; headers?: Record<string, string> } = {},
): Promise<LoopbackAnswer> {
    return loopbackRequest(port, path, {
        host: options.host ?? "chat.example.com",
        method: options.method ?? "GET",
        body: options.body,
        headers: {
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...(options.authorization ? { authorization: options.authorization } : {}),
            ...(options.answer ? { "x-test-answer": options.answer } : {}),
            ...options.headers,
        },
    });
}

describe("service block under the real nginx", function () {
    this.timeout(30000);
    let upstream: http.Server;
    let upstreamPort: number;
    let upstreamStatus = 200;

    before(async () => {
        upstream = http.createServer((req, res) => {
            if (req.url === "/v1/stream") {
                res.writeHead(200, { "content-type": "text/event-stream" });
                let n = 0;
                const timer = setInterval(() => {
                    res.write(`data: {"n":${n}}\n\n`);
                    if (++n === 3) {
                        clearInterval(timer);
                        res.end("data: [DONE]\n\n");
                    }
                }, 100);
                return;
            }
            // Like smg: internal headers on every answer; "no worker" is a 404 told apart by its error-code header.
            const internal = { "x-smg-routed-worker-id": "http://127.0.0.1:12001", "access-control-allow-origin": "*", "access-control-expose-headers": "*" };
            const answer = req.headers["x-test-answer"];
            if (answer === "no-worker" || answer === "not-here") {
                const code = answer === "no-worker" ? { "x-smg-error-code": "model_not_found" } : {};
                res.writeHead(404, { "content-type": "application/json", ...internal, ...code });
                res.end(JSON.stringify({ error: { code: "model_not_found", message: "No worker available for model 'm'" } }));
                return;
            }
            // Like both router generations: the request id it was given comes back as x-request-id.
            res.writeHead(upstreamStatus, { "content-type": "application/json", "x-request-id": req.headers["x-request-id"] ?? "router-own-id", ...internal });
            res.end(JSON.stringify({ path: req.url, upstream: true, authorization: req.headers.authorization, requestId: req.headers["x-request-id"] }));
        });
        await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
        upstreamPort = (upstream.address() as AddressInfo).port;
    });
    after(() => new Promise((r) => upstream.close(r)));
    beforeEach(() => (upstreamStatus = 200));

    async function serve(input: Partial<ServerBlockInput>) {
        const httpPort = await freePort();
        const text = serverBlockText({
            service: "chat",
            serverName: "chat.example.com",
            auth: true,
            tokens: [token],
            upstreamServers: [`127.0.0.1:${upstreamPort}`],
            allow: sglangRouter.inferencePaths,
            rateLimits: [],
            httpPort,
            ...input,
        });
        const nginx = await startNginx({ services: { "chat.conf": text } });
        return { nginx, port: httpPort };
    }

    it("passes inference paths with a valid token; 401 without one or with a wrong one", async () => {
        const { nginx, port } = await serve({});
        try {
            const ok = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}" });
            assert.strictEqual(ok.status, 200);
            assert.strictEqual(JSON.parse(ok.body).path, "/v1/chat/completions");
            assert.strictEqual((await request(port, "/generate", { token, method: "POST", body: "{}" })).status, 200);
            const none = await request(port, "/v1/models");
            assert.strictEqual(none.status, 401);
            assert.match(none.body, /bearer token/);
            assert.strictEqual((await request(port, "/v1/models", { token: "tok-wrong-0000000000" })).status, 401);
        } finally {
            await nginx.stop();
        }
    });

    it("long tokens (48 and 512 characters) work, matching is exact and case-sensitive, and replicas never see the token", async () => {
        const long48 = "a1B2.c3D4+e5F6/g7H8=i9J0~k1L2-m3N4o5P6q7R8s9T0uvwx".slice(0, 48);
        const long512 = "Zz9.".repeat(128);
        const { nginx, port } = await serve({ tokens: [long48, long512] });
        try {
            assert.strictEqual((await request(port, "/v1/models", { token: long48 })).status, 200);
            const seen = JSON.parse((await request(port, "/v1/models", { token: long512 })).body) as { authorization?: string };
            assert.strictEqual(seen.authorization, undefined, "the Authorization header reached the upstream");
            const flipped = long48.replace(/[a-z]/g, (c) => c.toUpperCase());
            assert.strictEqual((await request(port, "/v1/models", { token: flipped })).status, 401, "case-flipped token accepted");
            assert.strictEqual((await request(port, "/v1/models", { token: long48.slice(0, -1) })).status, 401, "prefix of a token accepted");
            assert.strictEqual((await request(port, "/v1/models", { token: `${long48}x` })).status, 401, "token with a suffix accepted");
            assert.strictEqual((await request(port, "/v1/models", { token: long48.replace(".", "X") })).status, 401, "'.' matched any character");
        } finally {
            await nginx.stop();
        }
    });

    it("never exposes the router's admin API: /workers, /flush_cache, /metrics answer 403", async () => {
        const { nginx, port } = await serve({});
        try {
            for (const path of ["/workers", "/workers/abc", "/add_worker?url=x", "/flush_cache", "/metrics", "/get_loads", "/list_workers", "/server_info"]) {
                const answer = await request(port, path, { token, method: path === "/flush_cache" ? "POST" : "GET" });
                assert.strictEqual(answer.status, 403, `${path} answered ${answer.status}`);
            }
        } finally {
            await nginx.stop();
        }
    });

    it("rate limits answer 429 past the burst, also for a prefix narrower than the allowed /v1/", async () => {
        const { nginx, port } = await serve({ rateLimits: [{ prefix: "/v1/chat/", rps: 1, burst: 2, key: "ip" }] });
        try {
            const statuses: number[] = [];
            for (let i = 0; i < 8; i++) {
                statuses.push((await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}" })).status);
            }
            // 1 r/s with burst 2: three pass at once; past that 429s, even if a slow machine lets one more refill.
            assert.deepStrictEqual(statuses.slice(0, 3), [200, 200, 200], statuses.join(","));
            assert.ok(statuses.filter((s) => s === 429).length >= 4, statuses.join(","));
            const limited = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}" });
            assert.match(limited.body, /rate limit exceeded/);
            // Outside the narrower prefix, no limit applies.
            for (let i = 0; i < 5; i++) {
                assert.strictEqual((await request(port, "/v1/models", { token })).status, 200);
            }
        } finally {
            await nginx.stop();
        }
    });

    it("a header-keyed limit counts per header value", async () => {
        const { nginx, port } = await serve({ auth: false, tokens: [], rateLimits: [{ prefix: "/", rps: 1, burst: 0, key: { header: "X-Api-Key" } }] });
        try {
            const send = (key: string) =>
                new Promise<number>((resolve, reject) => {
                    http.get({ host: "127.0.0.1", port, path: "/v1/models", headers: { host: "chat.example.com", "x-api-key": key } }, (res) => {
                        res.resume();
                        resolve(res.statusCode ?? 0);
                    }).on("error", reject);
                });
            assert.deepStrictEqual([await send("a"), await send("a"), await send("b")], [200, 429, 200]);
        } finally {
            await nginx.stop();
        }
    });

    it("no replica ready: the upstream's 503 becomes a clear JSON body; no upstream at all answers the same", async () => {
        const { nginx, port } = await serve({});
        try {
            upstreamStatus = 503;
            const answer = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}" });
            assert.strictEqual(answer.status, 503);
            assert.match(JSON.parse(answer.body).error.message, /service chat has no replica ready/);
        } finally {
            await nginx.stop();
        }
        const empty = await serve({ allow: undefined, upstreamServers: [] });
        try {
            const answer = await request(empty.port, "/v1/models", { token });
            assert.strictEqual(answer.status, 503);
            assert.match(answer.body, /no replica ready/);
        } finally {
            await empty.nginx.stop();
        }
    });

    it("the Bearer scheme in any case (RFC 7235); nginx never tells its version", async () => {
        const { nginx, port } = await serve({});
        try {
            for (const authorization of [`bearer ${token}`, `BEARER ${token}`, `Bearer  ${token}`]) {
                assert.strictEqual((await request(port, "/v1/models", { authorization })).status, 200, authorization);
            }
            assert.strictEqual((await request(port, "/v1/models", { authorization: `Basic ${token}` })).status, 401);
            assert.strictEqual((await request(port, "/v1/models", { token })).headers.server, "nginx");
            assert.strictEqual((await request(port, "/workers", { token })).headers.server, "nginx");
        } finally {
            await nginx.stop();
        }
    });

    it("router internals never reach the client: worker addresses, error codes, CORS defaults", async () => {
        const { nginx, port } = await serve({ internalResponseHeaders: sglangRouter.internalResponseHeaders("1.13.0") });
        try {
            const ok = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}" });
            assert.strictEqual(ok.status, 200);
            const leaked = Object.keys(ok.headers).filter((h) => h.startsWith("x-smg-") || h.startsWith("access-control-"));
            assert.deepStrictEqual(leaked, []);
        } finally {
            await nginx.stop();
        }
    });

    it("smg's no-worker 404 becomes the gateway's 503; another 404 stays a 404 without the router's body", async () => {
        const { nginx, port } = await serve({
            noWorkerAnswer: sglangRouter.noWorkerAnswer("1.13.0"),
            internalResponseHeaders: sglangRouter.internalResponseHeaders("1.13.0"),
            servedModel: "fake-model",
        });
        try {
            const none = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}", answer: "no-worker" });
            assert.strictEqual(none.status, 503);
            // smg answers the same for a request naming another model: the message says both, and what is served.
            assert.strictEqual(
                JSON.parse(none.body).error.message,
                "service chat has no replica ready to serve model 'fake-model' (scaled to zero, starting, or unhealthy), or the request names another model",
            );
            assert.strictEqual(none.headers["x-smg-error-code"], undefined);
            const other = await request(port, "/v1/chat/completions", { token, method: "POST", body: "{}", answer: "not-here" });
            assert.strictEqual(other.status, 404);
            assert.doesNotMatch(other.body, /No worker available/);
        } finally {
            await nginx.stop();
        }
    });

    it("one request id per request: nginx's, passed to the router as X-Request-Id, in the answer and in a JSON access-log line", async () => {
        const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-access-"));
        const accessLog = path.join(logDir, "chat.access.log");
        const { nginx, port } = await serve({ accessLog });
        try {
            const body = JSON.stringify({ model: "m", messages: [] });
            // A client's own id is not taken: ids must stay unique to find a request by one.
            const ok = await request(port, "/v1/chat/completions", { token, method: "POST", body, headers: { "x-request-id": "client-chosen" } });
            assert.strictEqual(ok.status, 200);
            const id = ok.headers["x-request-id"];
            assert.match(String(id), /^[0-9a-f]{32}$/, `one x-request-id of nginx's in the answer: ${JSON.stringify(id)}`);
            assert.strictEqual(JSON.parse(ok.body).requestId, id, "the router got the same id as X-Request-Id");
            // nginx's own answers carry one too (support can ask for it), each another.
            const refused = [await request(port, "/v1/models"), await request(port, "/workers", { token }), await request(port, "/v1/models", { token })];
            const ids = refused.map((a) => a.headers["x-request-id"]);
            assert.deepStrictEqual(
                refused.map((a) => a.status),
                [401, 403, 200],
            );
            assert.ok(ids.every((i) => /^[0-9a-f]{32}$/.test(String(i))) && new Set([id, ...ids]).size === 4, `ids: ${ids.join(", ")}`);

            // nginx writes a request's line after its answer went out: wait for the fourth (bounded).
            let text = "";
            for (let i = 0; i < 50; i++) {
                text = fs.readFileSync(accessLog, "utf8");
                if (text.trim().split("\n").length >= 4) break;
                await new Promise((r) => setTimeout(r, 100));
            }
            assert.ok(!text.includes(token), "the token is in the access log");
            const lines = text
                .trim()
                .split("\n")
                .map((line) => JSON.parse(line) as Record<string, string | number>);
            assert.strictEqual(lines.length, 4);
            const line = lines.find((l) => l.request_id === id);
            assert.ok(line, `no access-log line with request_id ${id}: ${text}`);
            assert.strictEqual(line.service, "chat");
            assert.strictEqual(line.method, "POST");
            assert.strictEqual(line.uri, "/v1/chat/completions");
            assert.strictEqual(line.status, "200");
            assert.strictEqual(line.upstream_status, "200");
            assert.strictEqual(line.upstream_addr, `127.0.0.1:${upstreamPort}`);
            assert.match(String(line.upstream_response_time), /^\d+\.\d{3}$/);
            assert.strictEqual(typeof line.request_time, "number");
            assert.ok(Number(line.bytes_sent) > Number(line.body_bytes_sent) && Number(line.body_bytes_sent) > 0, JSON.stringify(line));
            assert.ok(Number(line.request_length) > body.length, JSON.stringify(line));
            // A refused request names no upstream.
            assert.deepStrictEqual(
                lines.filter((l) => l.status === "401").map((l) => [l.request_id, l.upstream_status]),
                [[ids[0], ""]],
            );
        } finally {
            await nginx.stop();
            fs.rmSync(logDir, { recursive: true, force: true });
        }
    });

    it("streams server-sent events through without buffering them", async () => {
        const { nginx, port } = await serve({ allow: undefined });
        try {
            const arrivals: number[] = [];
            const started = Date.now();
            await new Promise<void>((resolve, reject) => {
                http.get({ host: "127.0.0.1", port, path: "/v1/stream", headers: { host: "chat.example.com", authorization: `Bearer ${token}` } }, (res) => {
                    res.on("data", () => arrivals.push(Date.now() - started));
                    res.on("end", resolve);
                }).on("error", reject);
            });
            assert.ok(arrivals.length >= 3, `chunks arrived together: ${arrivals.join(",")}`);
            assert.ok(arrivals[arrivals.length - 1] - arrivals[0] >= 150, `no spread between chunks: ${arrivals.join(",")}`);
        } finally {
            await nginx.stop();
        }
    });
});
