// End to end on real hosts: the model endpoint (gateway.endpoint) of a sandbox gateway with two services after
// a real `pulumi up`: chat (fake-model, 2 replicas on r1 and r2) and code (code-model, 1 replica on r2, a rate
// limit), each with its own router (smg) and token. Through api.sandbox.test: /v1/models per token, each model
// to its own service's replicas, a stream chunk by chunk, OpenAI's 404 for an unknown model, the other
// service's token refused, one rate-limit budget with the service's own endpoint; then the endpoint switched off.
import * as assert from "assert";
import * as http from "http";
import { endpointPaths, njsModule } from "../../components/naming";
import { answeringWorkers, token } from "../helpers/gateway-client";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, preinstallPackage, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";

const codeToken = "e2e-code-token-0123456789";
const endpointHost = "api.sandbox.test";

interface Answer {
    status: number;
    body: string;
    headers: http.IncomingHttpHeaders;
    /** When each piece of the body arrived, in ms from the request. */
    arrivals: number[];
}

function send(host: string, path: string, options: { token?: string; body?: object | string } = {}): Promise<Answer> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: sandboxState().hosts.gw.address,
                port: 80,
                path,
                method: options.body === undefined ? "GET" : "POST",
                timeout: 30000,
                headers: { host, "content-type": "application/json", ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
            },
            (res) => {
                let body = "";
                const arrivals: number[] = [];
                res.setEncoding("utf8");
                res.on("data", (chunk: string) => {
                    body += chunk;
                    arrivals.push(Date.now() - started);
                });
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, arrivals }));
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${host}${path}: timed out`)));
        req.on("error", reject);
        req.end(typeof options.body === "string" ? options.body : options.body === undefined ? undefined : JSON.stringify(options.body));
    });
}

const chatBody = (model: string, extra: object = {}) => ({ model, messages: [{ role: "user", content: "hello" }], max_tokens: 4, ...extra });

function stackConfig(endpoint: boolean) {
    const base = sandboxStack({ gateway: "e2e-endpoint", replicas: 2 });
    const state = sandboxState();
    const code = {
        ...base.services[0],
        name: "code",
        model: "code-model",
        port: 8100,
        replicas: 1,
        hosts: [{ host: state.hosts.r2.address }],
        // Named after its service, so an answer tells which service's replica wrote it.
        commands: [
            'exec /usr/bin/node /opt/sglang-gateway-fixtures/fake-worker.js --host 127.0.0.1 --port "$PORT" --name "$SERVICE_NAME-$(hostname)-$REPLICA_INDEX" --model "$MODEL" --tokens-per-second 20',
        ],
        // One request a minute, a burst of 2: a budget the test spends in a few requests.
        rateLimits: [{ prefix: "/v1/", rps: 1 / 60, burst: 2 }],
    };
    return {
        ...base,
        gateway: { ...base.gateway, ...(endpoint ? { endpoint: { name: "api" } } : {}) },
        services: [...base.services, code],
        tokens: { ...base.tokens, code: [codeToken] },
    };
}

describe("e2e model endpoint: one host name for two services' models, routed by model through the real gateway", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-endpoint");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("njs missing on a gateway that reaches no package: up fails naming the package; the services serve", async () => {
        // No apt source, so the install fails at once and nothing leaves the sandbox.
        await onHost("gw", ": > /etc/apt/sources.list && rm -f /etc/apt/sources.list.d/*");
        project.setConfig(stackConfig(true));
        const failed = await project.up().then(
            () => "",
            (err: Error) => err.message,
        );
        assert.match(
            failed,
            /the model endpoint needs nginx's njs module \(\/usr\/lib\/nginx\/modules\/ngx_http_js_module\.so\): install libnginx-mod-http-js/,
        );
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"], "the service's own endpoint serves");
        const code = await send("code.sandbox.test", "/v1/chat/completions", { token: codeToken, body: chatBody("code-model") });
        assert.strictEqual(code.status, 200, code.body);
        assert.strictEqual(code.headers["x-fake-worker"], "code-sgw-r2-0");
    });

    it("with njs preinstalled (as an operator without internet would), up serves the endpoint", async () => {
        const version = await preinstallPackage("gw", njsModule.package);
        const nginx = (await onHost("gw", "nginx -v 2>&1")).trim();
        console.log(`      gateway: ${nginx}, ${njsModule.package} ${version}`);
        await project.up();
        const files = await onHost("gw", `ls ${endpointPaths("api").serviceLocationsDir} && ls ${endpointPaths("api").serverBlock}`);
        assert.deepStrictEqual(files.trim().split("\n"), ["chat.conf", "code.conf", endpointPaths("api").serverBlock]);
        const models = await send(endpointHost, "/v1/models", { token });
        assert.strictEqual(models.status, 200, models.body);
    });

    it("/v1/models lists the models each token may use, in OpenAI's shape; without a token: 401", async () => {
        const list = async (bearer?: string) => {
            const answer = await send(endpointHost, "/v1/models", { token: bearer });
            return { status: answer.status, body: answer.status === 200 ? JSON.parse(answer.body) : answer.body };
        };
        assert.deepStrictEqual(await list(token), { status: 200, body: { object: "list", data: [{ id: "fake-model", object: "model", owned_by: "chat" }] } });
        assert.deepStrictEqual(await list(codeToken), {
            status: 200,
            body: { object: "list", data: [{ id: "code-model", object: "model", owned_by: "code" }] },
        });
        assert.strictEqual((await list()).status, 401);
    });

    it("each model goes to its own service's replicas: chat completions, completions and /generate", async () => {
        const chatWorkers = new Set<string>();
        for (let i = 0; i < 4; i++) {
            const answer = await send(endpointHost, "/v1/chat/completions", { token, body: chatBody("fake-model") });
            assert.strictEqual(answer.status, 200, answer.body);
            assert.strictEqual(JSON.parse(answer.body).model, "fake-model");
            chatWorkers.add(String(answer.headers["x-fake-worker"]));
        }
        assert.deepStrictEqual([...chatWorkers].sort(), ["sgw-r1-replica-0", "sgw-r2-replica-1"], "the chat router balances over its two replicas");
        const code = await send(endpointHost, "/v1/chat/completions", { token: codeToken, body: chatBody("code-model") });
        assert.strictEqual(code.status, 200, code.body);
        assert.strictEqual(code.headers["x-fake-worker"], "code-sgw-r2-0");
        const completion = await send(endpointHost, "/v1/completions", { token, body: { model: "fake-model", prompt: "hi", max_tokens: 2 } });
        assert.strictEqual(completion.status, 200, completion.body);
        assert.match(String(completion.headers["x-fake-worker"]), /^sgw-r[12]-replica-[01]$/);
        const generate = await send(endpointHost, "/generate", { token, body: { model: "fake-model", text: "hi", sampling_params: { max_new_tokens: 2 } } });
        assert.strictEqual(generate.status, 200, generate.body);
        assert.match(String(generate.headers["x-fake-worker"]), /^sgw-r[12]-replica-[01]$/);
        const ambiguous = await send(endpointHost, "/generate", { token, body: { text: "hi" } });
        assert.strictEqual(ambiguous.status, 400, ambiguous.body);
        assert.match(JSON.parse(ambiguous.body).error.message, /you must provide a model parameter \(this endpoint serves 2 models/);
    });

    it("unknown model: OpenAI's 404; the other service's token: 401; nothing internal in any answer", async () => {
        const unknown = await send(endpointHost, "/v1/chat/completions", { token, body: chatBody("gpt-4o") });
        assert.strictEqual(unknown.status, 404, unknown.body);
        assert.deepStrictEqual(JSON.parse(unknown.body), {
            error: { message: "The model `gpt-4o` does not exist", type: "invalid_request_error", param: "model", code: "model_not_found" },
        });
        const crossed = await send(endpointHost, "/v1/chat/completions", { token: codeToken, body: chatBody("fake-model") });
        assert.strictEqual(crossed.status, 401, crossed.body);
        const crossedBack = await send(endpointHost, "/v1/chat/completions", { token, body: chatBody("code-model") });
        assert.strictEqual(crossedBack.status, 401, crossedBack.body);
        const routed = await send(endpointHost, "/v1/chat/completions", { token, body: chatBody("fake-model") });
        const direct = await send("chat.sandbox.test", "/v1/chat/completions", { token, body: chatBody("fake-model") });
        assert.deepStrictEqual(Object.keys(routed.headers).sort(), Object.keys(direct.headers).sort(), "the same headers as the service's own endpoint");
        const state = sandboxState();
        for (const answer of [unknown, crossed, routed]) {
            const text = JSON.stringify(answer.headers) + answer.body;
            assert.doesNotMatch(text, /x-smg|127\.0\.0\.1|nginx\/\d/i);
            for (const address of [state.hosts.r1.address, state.hosts.r2.address]) {
                assert.ok(!text.includes(address), `${address} leaked: ${text}`);
            }
        }
    });

    it("streams through the endpoint chunk by chunk, as through the service's own", async () => {
        const answer = await send(endpointHost, "/v1/chat/completions", {
            token,
            body: chatBody("fake-model", { stream: true, max_tokens: 20, ignore_eos: true }),
        });
        assert.strictEqual(answer.status, 200, answer.body);
        assert.match(String(answer.headers["content-type"]), /text\/event-stream/);
        assert.ok(answer.body.trimEnd().endsWith("data: [DONE]"), answer.body.slice(-200));
        // 20 tokens at 20 per second: buffered, they would arrive in one piece after a second.
        const spread = answer.arrivals[answer.arrivals.length - 1] - answer.arrivals[0];
        console.log(`      a 20-token stream through ${endpointHost}: ${answer.arrivals.length} pieces over ${spread} ms`);
        assert.ok(answer.arrivals.length >= 10, `${answer.arrivals.length} pieces`);
        assert.ok(spread >= 500, `pieces within ${spread} ms`);
    });

    it("the code service's rate limit is one budget across code.sandbox.test and the endpoint", async () => {
        const statuses: string[] = [];
        let last = "";
        // Alternate host names until the limit answers; then both host names are over it.
        for (let i = 0; i < 8 && !statuses.includes("429"); i++) {
            last = i % 2 === 0 ? "code.sandbox.test" : endpointHost;
            const answer = await send(last, "/v1/chat/completions", { token: codeToken, body: chatBody("code-model") });
            statuses.push(String(answer.status));
        }
        console.log(`      code, alternating code.sandbox.test and ${endpointHost}: ${statuses.join(" ")}`);
        assert.ok(statuses.includes("429"), statuses.join(" "));
        assert.ok(statuses.indexOf("429") <= 4, `the budget (1/min, burst 2) was spent twice: ${statuses.join(" ")}`);
        const other = last === endpointHost ? "code.sandbox.test" : endpointHost;
        const over = await send(other, "/v1/chat/completions", { token: codeToken, body: chatBody("code-model") });
        assert.strictEqual(over.status, 429, over.body);
        assert.deepStrictEqual(JSON.parse(over.body), { error: { message: "rate limit exceeded", type: "rate_limited", code: 429 } });
        // chat's budget is its own.
        const chat = await send(endpointHost, "/v1/chat/completions", { token, body: chatBody("fake-model") });
        assert.strictEqual(chat.status, 200, chat.body);
    });

    it("switched off: the endpoint's files go, its host name routes nothing, the services serve as before", async () => {
        project.setConfig(stackConfig(false));
        await project.up();
        const left = await onHost("gw", `ls ${endpointPaths("api").dir} ${endpointPaths("api").serverBlock} 2>&1 || true`);
        assert.match(left, /No such file or directory.*\n.*No such file or directory/);
        const answer = await send(endpointHost, "/v1/chat/completions", { token: codeToken, body: chatBody("code-model") });
        assert.doesNotMatch(answer.body, /code-sgw-r2-0/, `${answer.status} ${answer.body}`);
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
    });
});
