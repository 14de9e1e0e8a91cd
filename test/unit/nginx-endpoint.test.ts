// The model endpoint under the real nginx and its njs module on loopback, with a fake worker per service:
// routing by model, tokens per service, shared rate limits, OpenAI's error shapes, streaming, /v1/models.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as http from "http";
import { endpointFiles, endpointServiceText, routedPaths, type EndpointService } from "../../components/host-files/endpoint";
import { serverBlockText, type ServerBlockInput } from "../../components/host-files/server-block";
import { endpointServiceLocations, njsModule } from "../../components/naming";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startFakeWorker, type FakeWorkerProc } from "../helpers/fake-workers";
import { nginxTest, startNginx } from "../helpers/nginx";
import { alwaysLeaks, hostileAnswerProblems, hostileRequests, raw } from "../helpers/hostile-requests";
import { loopbackRequest, type LoopbackAnswer } from "../helpers/loopback-http";
import { freePort } from "../helpers/ports";
import { selfSignedCert } from "../helpers/tls";

const tokenA = "token-chat-0123456789";

const tokenB = "token-code-0123456789";

function request(port: number, path: string, options: { host?: string; token?: string; method?: string; body?: string } = {}): Promise<LoopbackAnswer> {
    return loopbackRequest(port, path, {
        host: options.host ?? "api.example.com",
        method: options.method,
        body: options.body,
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    });
}

const chat = (model: string, extra: object = {}) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 3, ...extra });

function serviceInput(service: string, worker: FakeWorkerProc, over: Partial<ServerBlockInput>): ServerBlockInput {
    return {
        service,
        serverName: `${service}.example.com`,
        auth: true,
        tokens: [],
        upstreamServers: [`127.0.0.1:${worker.port}`],
        allow: sglangRouter.inferencePaths,
        internalResponseHeaders: sglangRouter.internalResponseHeaders(sglangRouter.defaultVersion),
        rateLimits: [],
        ...over,
    };
}

/** The gateway's files for these services and the endpoint `api`, laid in nginx's prefix directory. */
function site(port: number, services: { input: ServerBlockInput; model: string }[]) {
    const entries: EndpointService[] = services.map((s) => ({ service: s.input.service, model: s.model, auth: s.input.auth }));
    return {
        modules: [njsModule.modulePath],
        services: Object.fromEntries(services.map((s) => [`${s.input.service}.conf`, serverBlockText({ ...s.input, httpPort: port })])),
        files: (dir: string) => ({
            ...Object.fromEntries(services.map((s) => [endpointServiceLocations(s.input.service, dir).file, endpointServiceText(s.input, dir)])),
            ...Object.fromEntries(
                endpointFiles({ name: "api", serverName: "api.example.com", services: entries, includeDir: dir, httpPort: port }).map((f) => [
                    f.path,
                    f.content,
                ]),
            ),
        }),
    };
}

describe("model endpoint under the real nginx (njs)", function () {
    this.timeout(60000);
    let workerA: FakeWorkerProc;
    let workerB: FakeWorkerProc;
    let workerC: FakeWorkerProc;

    before(async function () {
        if (!fs.existsSync(njsModule.modulePath)) {
            throw new Error(`nginx's njs module is missing (${njsModule.modulePath}): apt-get install ${njsModule.package} (scripts/setup/apt.sh does)`);
        }
        [workerA, workerB, workerC] = await Promise.all([
            startFakeWorker({ name: "chat-0", args: ["--model", "model-a", "--tokens-per-second", "10", "--completion-tokens", "5"] }),
            startFakeWorker({ name: "code-0", args: ["--model", "model-b"] }),
            startFakeWorker({ name: "open-0", args: ["--model", "model-c"] }),
        ]);
    });
    after(() => Promise.all([workerA, workerB, workerC].map((w) => w?.stop())));

    async function serve(options: { limitA?: boolean; withOpen?: boolean; only?: "chat"; emptyB?: boolean; chatLog?: string } = {}) {
        const port = await freePort();
        const services = [
            {
                model: "model-a",
                input: serviceInput("chat", workerA, {
                    tokens: [tokenA],
                    ...(options.chatLog ? { accessLog: options.chatLog } : {}),
                    rateLimits: options.limitA ? [{ prefix: "/v1/", rps: 1 / 60, burst: 1, key: "ip" as const }] : [],
                }),
            },
            ...(options.only
                ? []
                : [{ model: "model-b", input: serviceInput("code", workerB, { tokens: [tokenB], ...(options.emptyB ? { upstreamServers: [] } : {}) }) }]),
            ...(options.withOpen ? [{ model: "model-c", input: serviceInput("open", workerC, { auth: false }) }] : []),
        ];
        const nginx = await startNginx(site(port, services));
        return { nginx, port };
    }

    it("routes each model to its service's worker, with that service's token, for every routed path", async () => {
        const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-endpoint-log-"));
        const chatLog = path.join(logDir, "chat.access.log");
        const { nginx, port } = await serve({ chatLog });
        try {
            // nginx's request id in the answer, in the service's JSON access log (as the service's), and to the worker.
            const answer = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("model-a") });
            const id = String(answer.headers["x-request-id"]);
            assert.match(id, /^[0-9a-f]{32}$/);
            // nginx writes the line after the answer went out: wait for it (bounded).
            let line: string | undefined;
            for (let i = 0; i < 50 && !line; i++) {
                line = fs.existsSync(chatLog)
                    ? fs
                          .readFileSync(chatLog, "utf8")
                          .split("\n")
                          .find((l) => l.includes(id))
                    : undefined;
                if (!line) await new Promise((r) => setTimeout(r, 100));
            }
            assert.ok(line, `no line with ${id} in the chat service's log`);
            assert.deepStrictEqual((({ service, status, host }) => ({ service, status, host }))(JSON.parse(line) as Record<string, string>), {
                service: "chat",
                status: "200",
                host: "api.example.com",
            });
            for (const [model, token, worker] of [
                ["model-a", tokenA, "chat-0"],
                ["model-b", tokenB, "code-0"],
            ]) {
                const answer = await request(port, "/v1/chat/completions", { token, body: chat(model) });
                assert.strictEqual(answer.status, 200, answer.body);
                assert.strictEqual(JSON.parse(answer.body).worker, worker);
                assert.strictEqual(JSON.parse(answer.body).model, model);
                const completion = await request(port, "/v1/completions", { token, body: JSON.stringify({ model, prompt: "hi", max_tokens: 2 }) });
                assert.strictEqual(completion.status, 200, completion.body);
                assert.strictEqual(JSON.parse(completion.body).worker, worker);
                const generate = await request(port, "/generate", {
                    token,
                    body: JSON.stringify({ model, text: "hi", sampling_params: { max_new_tokens: 2 } }),
                });
                assert.strictEqual(generate.status, 200, generate.body);
                assert.strictEqual(JSON.parse(generate.body).worker, worker);
            }
        } finally {
            await nginx.stop();
            fs.rmSync(logDir, { recursive: true, force: true });
        }
    });

    it("a token is accepted for its own service's model only: another service's token gets the service's 401", async () => {
        const { nginx, port } = await serve();
        try {
            const before = workerA.requestCount("POST", "/v1/chat/completions");
            const crossed = await request(port, "/v1/chat/completions", { token: tokenB, body: chat("model-a") });
            assert.strictEqual(crossed.status, 401, crossed.body);
            assert.deepStrictEqual(JSON.parse(crossed.body), { error: { message: "missing or invalid bearer token", type: "unauthorized", code: 401 } });
            const none = await request(port, "/v1/chat/completions", { body: chat("model-a") });
            assert.strictEqual(none.status, 401);
            const wrong = await request(port, "/v1/chat/completions", { token: "not-a-token-of-anyone", body: chat("model-b") });
            assert.strictEqual(wrong.status, 401);
            assert.strictEqual(workerA.requestCount("POST", "/v1/chat/completions"), before, "a refused request reached the worker");
        } finally {
            await nginx.stop();
        }
    });

    it("unknown model: 404 in OpenAI's shape; no model, bad JSON, a non-string model: 400; GET: 405", async () => {
        const { nginx, port } = await serve();
        try {
            const unknown = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("gpt-x") });
            assert.strictEqual(unknown.status, 404, unknown.body);
            assert.match(String(unknown.headers["content-type"]), /application\/json/);
            assert.deepStrictEqual(JSON.parse(unknown.body), {
                error: { message: "The model `gpt-x` does not exist", type: "invalid_request_error", param: "model", code: "model_not_found" },
            });
            const missing = await request(port, "/v1/chat/completions", { token: tokenA, body: JSON.stringify({ messages: [] }) });
            assert.strictEqual(missing.status, 400, missing.body);
            assert.strictEqual(JSON.parse(missing.body).error.param, "model");
            const badJson = await request(port, "/v1/completions", { token: tokenA, body: '{"model": "model-a",' });
            assert.strictEqual(badJson.status, 400, badJson.body);
            assert.strictEqual(JSON.parse(badJson.body).error.type, "invalid_request_error");
            const notString = await request(port, "/v1/completions", { token: tokenA, body: JSON.stringify({ model: ["model-a"] }) });
            assert.strictEqual(notString.status, 400, notString.body);
            const get = await request(port, "/v1/chat/completions", { token: tokenA });
            assert.strictEqual(get.status, 405, get.body);
            const other = await request(port, "/workers", { token: tokenA });
            assert.strictEqual(other.status, 404, other.body);
            assert.strictEqual(JSON.parse(other.body).error.code, "unknown_url");
        } finally {
            await nginx.stop();
        }
    });

    it("a service without a replica (plain gateway scaled to 0) answers its own 503 JSON through the endpoint", async () => {
        const { nginx, port } = await serve({ emptyB: true });
        try {
            const answer = await request(port, "/v1/chat/completions", { token: tokenB, body: chat("model-b") });
            assert.strictEqual(answer.status, 503, answer.body);
            assert.deepStrictEqual(JSON.parse(answer.body), {
                error: {
                    message: "service code has no replica ready to serve (scaled to zero, starting, or unhealthy)",
                    type: "service_unavailable",
                    code: 503,
                },
            });
            const other = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("model-a") });
            assert.strictEqual(other.status, 200, other.body);
        } finally {
            await nginx.stop();
        }
    });

    it("/generate without a model: 400 with two services, routed with one", async () => {
        const two = await serve();
        try {
            const answer = await request(two.port, "/generate", { token: tokenA, body: JSON.stringify({ text: "hi" }) });
            assert.strictEqual(answer.status, 400, answer.body);
            assert.match(JSON.parse(answer.body).error.message, /serves 2 models/);
        } finally {
            await two.nginx.stop();
        }
        const one = await serve({ only: "chat" });
        try {
            const answer = await request(one.port, "/generate", {
                token: tokenA,
                body: JSON.stringify({ text: "hi", sampling_params: { max_new_tokens: 2 } }),
            });
            assert.strictEqual(answer.status, 200, answer.body);
            assert.strictEqual(JSON.parse(answer.body).worker, "chat-0");
        } finally {
            await one.nginx.stop();
        }
    });

    it("/v1/models lists the models the token may use (and open services' to anyone) in OpenAI's shape", async () => {
        const { nginx, port } = await serve({ withOpen: true });
        try {
            const ids = async (token?: string) => {
                const answer = await request(port, "/v1/models", { token });
                assert.strictEqual(answer.status, 200, answer.body);
                const list = JSON.parse(answer.body);
                assert.strictEqual(list.object, "list");
                return list.data.map((m: { id: string; object: string; owned_by: string }) => `${m.id} ${m.object} ${m.owned_by}`);
            };
            assert.deepStrictEqual(await ids(tokenA), ["model-a model chat", "model-c model open"]);
            assert.deepStrictEqual(await ids(tokenB), ["model-b model code", "model-c model open"]);
            assert.deepStrictEqual(await ids(), ["model-c model open"]);
            const one = await request(port, "/v1/models/model-b", { token: tokenB });
            assert.deepStrictEqual(JSON.parse(one.body), { id: "model-b", object: "model", owned_by: "code" });
            const hidden = await request(port, "/v1/models/model-b", { token: tokenA });
            assert.strictEqual(hidden.status, 404, hidden.body);
            // The open service serves without a token through the endpoint too.
            const open = await request(port, "/v1/chat/completions", { body: chat("model-c") });
            assert.strictEqual(open.status, 200, open.body);
            assert.strictEqual(JSON.parse(open.body).worker, "open-0");
        } finally {
            await nginx.stop();
        }
        const closed = await serve();
        try {
            const answer = await request(closed.port, "/v1/models");
            assert.strictEqual(answer.status, 401, answer.body);
        } finally {
            await closed.nginx.stop();
        }
    });

    it("the service's rate limit is one budget across its own endpoint and the model endpoint", async () => {
        const { nginx, port } = await serve({ limitA: true });
        try {
            // rate 1/min, burst 1: two requests pass, the third is over, whichever host name each one used.
            const first = await request(port, "/v1/chat/completions", { host: "chat.example.com", token: tokenA, body: chat("model-a") });
            assert.strictEqual(first.status, 200, first.body);
            const second = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("model-a") });
            assert.strictEqual(second.status, 200, second.body);
            const third = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("model-a") });
            assert.strictEqual(third.status, 429, third.body);
            assert.deepStrictEqual(JSON.parse(third.body), { error: { message: "rate limit exceeded", type: "rate_limited", code: 429 } });
            const fourth = await request(port, "/v1/chat/completions", { host: "chat.example.com", token: tokenA, body: chat("model-a") });
            assert.strictEqual(fourth.status, 429, fourth.body);
            // Another service's budget is its own.
            const other = await request(port, "/v1/chat/completions", { token: tokenB, body: chat("model-b") });
            assert.strictEqual(other.status, 200, other.body);
        } finally {
            await nginx.stop();
        }
    });

    it("streams chunk by chunk through the endpoint, and the answer's headers are the service endpoint's", async () => {
        const { nginx, port } = await serve();
        try {
            const arrivals: { at: number; text: string }[] = [];
            const started = Date.now();
            const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
                const req = http.request(
                    {
                        host: "127.0.0.1",
                        port,
                        path: "/v1/chat/completions",
                        method: "POST",
                        headers: { host: "api.example.com", authorization: `Bearer ${tokenA}`, "content-type": "application/json" },
                    },
                    (res) => {
                        res.setEncoding("utf8");
                        res.on("data", (text: string) => arrivals.push({ at: Date.now() - started, text }));
                        res.on("end", () => resolve(res.headers));
                    },
                );
                req.on("error", reject);
                req.end(chat("model-a", { stream: true, max_tokens: 5 }));
            });
            const events = arrivals
                .map((a) => a.text)
                .join("")
                .split("\n\n")
                .filter((e) => e.startsWith("data: {"));
            assert.ok(events.length >= 5, arrivals.map((a) => a.text).join(""));
            // 5 tokens at 10 per second: had nginx buffered, they would arrive in one or two pieces at the end.
            assert.ok(arrivals.length >= 4, `chunks arrived together: ${JSON.stringify(arrivals.map((a) => a.at))}`);
            assert.ok(arrivals[arrivals.length - 1].at - arrivals[0].at >= 250, `no spread between chunks: ${JSON.stringify(arrivals.map((a) => a.at))}`);
            assert.match(String(headers["content-type"]), /text\/event-stream/);
            const direct = await request(port, "/v1/chat/completions", { host: "chat.example.com", token: tokenA, body: chat("model-a") });
            const routed = await request(port, "/v1/chat/completions", { token: tokenA, body: chat("model-a") });
            const names = (h: http.IncomingHttpHeaders) => Object.keys(h).sort();
            assert.deepStrictEqual(names(routed.headers), names(direct.headers));
            assert.ok(!("server" in routed.headers) || !/\d/.test(String(routed.headers.server)), String(routed.headers.server));
        } finally {
            await nginx.stop();
        }
    });

    it("the hostile requests of the service endpoint's suite, sent to the model endpoint: every one 4xx, nothing leaked, no worker reached", async () => {
        const { nginx, port } = await serve();
        try {
            const reached = () =>
                [workerA, workerB].map(
                    (w) =>
                        w
                            .logs()
                            .split("\n")
                            .filter((l) => / (GET|POST|PUT|DELETE|TRACE) /.test(l)).length,
                );
            const before = reached();
            const cases = hostileRequests({ host: "api.example.com", token: tokenA, routerPort: 10001, workerUrl: `http://127.0.0.1:${workerA.port}` });
            const wrong: string[] = [];
            for (const [title, text] of cases) {
                wrong.push(...hostileAnswerProblems(title, await raw("127.0.0.1", port, text), [...alwaysLeaks, /x-fake-worker[^\r\n]*/i]));
            }
            assert.ok(cases.length >= 40, `${cases.length} cases`);
            assert.deepStrictEqual(wrong, []);
            assert.deepStrictEqual(reached(), before, "a hostile request reached a worker");
        } finally {
            await nginx.stop();
        }
    });

    it("a service's locations in the endpoint proxy as its own server block does (a directive added to one and not the other fails here)", () => {
        const input = serviceInput("chat", { port: 1 } as FakeWorkerProc, {
            tokens: [tokenA],
            upstreamServers: ["127.0.0.1:10001", "127.0.0.1:10601"],
            failover: true,
            noWorkerAnswer: sglangRouter.noWorkerAnswer(sglangRouter.defaultVersion),
            servedModel: "model-a",
            rateLimits: [
                { prefix: "/v1/", rps: 5, burst: 2, key: "ip" },
                { prefix: "/v1/chat/", rps: 1, burst: 0, key: { header: "X-Api-Key" } },
            ],
        });
        const own = serverBlockText(input);
        const ownServer = own.slice(own.indexOf("server {"), own.indexOf("    location "));
        const fragment = endpointServiceText(input);
        const lines = (text: string) => text.split("\n").map((l) => l.trim());
        const proxying = (text: string) => new Set(lines(text).filter((l) => /^(proxy_(?!pass)\S+|limit_req_status)\b/.test(l)));
        const errorCodes = (text: string) => new Set(lines(text).flatMap((l) => /^error_page ([\d ]+)=/.exec(l)?.[1].trim().split(/\s+/) ?? []));
        const endpointServer = endpointFiles({ name: "api", serverName: "api.example.com", services: [] }).find((f) => f.path.endsWith(".conf"))?.content ?? "";
        const names = endpointServiceLocations("chat");
        // The answers for "no worker" and "no replica": the same bodies in both.
        const body = (text: string, start: string) => {
            const at = text.indexOf(start);
            assert.ok(at >= 0, start);
            return lines(text.slice(at + start.length, text.indexOf("\n}", text.indexOf("{", at)) + 2)).filter((l) => l && l !== "}" && !l.startsWith("#"));
        };
        assert.deepStrictEqual(body(fragment, `location ${names.routerAnswer(404)} {`), body(own.replace(/\n {4}/g, "\n"), "location @router_404 {"));
        assert.deepStrictEqual(body(fragment, `location ${names.unavailable} {`), body(own.replace(/\n {4}/g, "\n"), "location @unavailable {"));
        for (const path of routedPaths) {
            const start = fragment.indexOf(`location ${names.location(path)} {`);
            const location = fragment.slice(start, fragment.indexOf("\n}\n", start));
            assert.deepStrictEqual(
                [...proxying(location), ...[...proxying(endpointServer)].filter((l) => l.startsWith("limit_req_status"))].sort(),
                [...proxying(ownServer)].sort(),
                path,
            );
            assert.deepStrictEqual([...new Set([...errorCodes(location), ...errorCodes(endpointServer)])].sort(), [...errorCodes(ownServer)].sort(), path);
            assert.match(location, /proxy_pass http:\/\/sgw_service_chat;/);
            assert.match(location, /if \(\$sgw_chat_authorized = 0\)/);
            // The zones of the service's own location for this path.
            const zones = lines(location).filter((l) => l.startsWith("limit_req "));
            const expected = path === "/v1/chat/completions" ? 2 : path === "/v1/completions" ? 1 : 0;
            assert.strictEqual(zones.length, expected, `${path}: ${zones.join("; ")}`);
        }
    });

    it("nginx -t passes with no service yet, and with TLS, a PD service, a failover router pair and an empty plain service; every routed path has its location", () => {
        const files = (services: { input: ServerBlockInput; model: string }[], tls?: { certificatePath: string; privateKeyPath: string }) => ({
            modules: [njsModule.modulePath],
            services: Object.fromEntries(services.map((s) => [`${s.input.service}.conf`, serverBlockText({ ...s.input, tls })])),
            files: (dir: string) => ({
                ...Object.fromEntries(
                    services.map((s) => [endpointServiceLocations(s.input.service, dir).file, endpointServiceText({ ...s.input, tls }, dir)]),
                ),
                ...Object.fromEntries(
                    endpointFiles({
                        name: "api",
                        serverName: "api.example.com",
                        services: services.map((s) => ({ service: s.input.service, model: s.model, auth: s.input.auth })),
                        includeDir: dir,
                        tls,
                    }).map((f) => [f.path, f.content]),
                ),
            }),
        });
        nginxTest(files([]));
        const version = sglangRouter.defaultVersion;
        const worker = { port: 1 } as FakeWorkerProc;
        const services = [
            {
                model: "model-a",
                input: serviceInput("chat", worker, {
                    tokens: [tokenA],
                    failover: true,
                    upstreamServers: ["127.0.0.1:10001", "127.0.0.1:10601"],
                    noWorkerAnswer: sglangRouter.noWorkerAnswer(version),
                    rateLimits: [{ prefix: "/", rps: 2, burst: 4, key: { header: "Authorization" } }],
                }),
            },
            {
                model: "model-pd",
                input: serviceInput("pd-chat", worker, {
                    tokens: [tokenB],
                    noWorkerAnswer: sglangRouter.pdNoWorkerAnswer(version),
                    pdReplicas: { prefill: 0, decode: 1 },
                }),
            },
            { model: "model-plain", input: serviceInput("plain", worker, { auth: false, upstreamServers: [], allow: undefined }) },
        ];
        const tls = selfSignedCert();
        nginxTest(files(services, tls));
        const server = endpointFiles({ name: "api", serverName: "api.example.com", services: [], tls }).find((f) => f.path.endsWith(".conf"))?.content ?? "";
        assert.match(server, /listen 443 ssl;/);
        assert.match(server, /return 308 https:\/\/\$host\$request_uri;/);
        for (const { input } of services) {
            const text = endpointServiceText(input);
            for (const path of routedPaths) {
                assert.ok(text.includes(`location ${endpointServiceLocations(input.service).location(path)} {`), `${input.service} ${path}`);
            }
        }
    });
});
