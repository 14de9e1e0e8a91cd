// Where logs and metrics are: each router's metrics port on the gateway's loopback, never shared; the
// components' observability outputs; and what `npm run gateway -- logs|metrics` runs on the gateway.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "../../components";
import { bridgePort, maxReplicas, portSlots, servicePorts } from "../../components/naming";
import { sglangRouter } from "../../components/routers/sglang/router";
import { parseArgs, readOutputs, remoteScript, UsageError, type StackOutputs } from "../../scripts/gateway/remote";
import { RecordingMocks, settle, valueOf } from "../helpers/mocks";
import { sshStack, testToken } from "../helpers/stack-configs";

function twoServices() {
    const stack = sshStack(1);
    const chat = { ...stack.services[0], router: { processes: 2 } };
    const embed = { ...stack.services[0], name: "embed", port: 8100 };
    return { ...stack, services: [chat, embed], tokens: { chat: [testToken], embed: [testToken] } };
}

describe("observability", () => {
    it("every router process of every port slot has its own metrics port, apart from all router and bridge ports", () => {
        const owner = new Map<number, string>();
        const claim = (port: number, what: string) => {
            assert.ok(!owner.has(port), `port ${port}: ${what} and ${owner.get(port)}`);
            owner.set(port, what);
        };
        for (let slot = 0; slot < portSlots; slot++) {
            const ports = servicePorts(slot);
            for (const [what, port] of Object.entries(ports)) {
                claim(port, `slot ${slot} ${what}`);
            }
            for (let index = 0; index < maxReplicas; index++) {
                claim(bridgePort(slot, index), `slot ${slot} bridge ${index}`);
            }
        }
        assert.strictEqual(owner.size, portSlots * (4 + maxReplicas));
    });

    it("the router serves its metrics on the loopback port its observability names, for the second process too", () => {
        const ports = servicePorts(7);
        for (const [instance, port, metricsPort] of [
            [1, ports.routerPort, ports.routerMetricsPort],
            [2, ports.secondRouterPort, ports.secondRouterMetricsPort],
        ] as const) {
            for (const version of ["1.13.0", "0.3.2"]) {
                const launch = sglangRouter.launch({
                    service: "chat",
                    user: "sglang-gateway-router",
                    instance,
                    version,
                    port,
                    metricsPort,
                    policy: "round_robin",
                    workerStartupTimeoutSeconds: 60,
                    workerUrls: [],
                });
                const start = launch.files.find((f) => f.path.endsWith("start.sh"))?.content ?? "";
                assert.match(start, new RegExp(`--prometheus-host 127\\.0\\.0\\.1 --prometheus-port ${metricsPort} `));
                assert.strictEqual(launch.metricsUrl, `http://127.0.0.1:${metricsPort}/metrics`);
                assert.ok(launch.logDir && start.includes(`--log-dir ${launch.logDir} `), start);
            }
        }
    });

    it("Service and Gateway outputs: each service's access log and router processes (unit, log dir, metrics URL), and how to reach the gateway", async () => {
        const mocks = new RecordingMocks();
        pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
        const { gateway, services } = buildStack(twoServices(), {});
        await settle();
        // A removed service leaves no empty directory: each router's removal takes its own once empty.
        const removal = (name: string) => String(mocks.named(name).inputs.delete);
        assert.match(removal("chat-router"), /rmdir --ignore-fail-on-non-empty \/etc\/sglang-gateway\/routers\/chat\n/);
        assert.match(removal("chat-router"), /rmdir --ignore-fail-on-non-empty \/var\/lib\/sglang-gateway\/routers\/chat\n/);
        assert.match(removal("chat-router-2"), /rmdir --ignore-fail-on-non-empty \/etc\/sglang-gateway\/routers\/chat\/second\n/);
        assert.doesNotMatch(removal("chat-router-2"), /rmdir --ignore-fail-on-non-empty \/etc\/sglang-gateway\/routers\/chat\n/);
        const [chat, embed] = services;
        const chatPorts = chat.ports;
        assert.deepStrictEqual(chat.observability, {
            accessLog: "/var/log/nginx/sglang-gateway-chat.access.log",
            routers: [
                {
                    unit: "sglang-gateway-router-chat.service",
                    logDir: "/var/log/sglang-gateway/chat",
                    metricsUrl: `http://127.0.0.1:${chatPorts.routerMetricsPort}/metrics`,
                },
                {
                    unit: "sglang-gateway-router2-chat.service",
                    logDir: "/var/log/sglang-gateway/chat/second",
                    metricsUrl: `http://127.0.0.1:${chatPorts.secondRouterMetricsPort}/metrics`,
                },
            ],
        });
        assert.strictEqual(embed.observability.routers.length, 1);
        const urls = [...chat.observability.routers, ...embed.observability.routers].map((r) => r.metricsUrl);
        assert.strictEqual(new Set(urls).size, 3, `metrics URLs shared: ${urls.join(", ")}`);
        const access = await valueOf(gateway.sshAccess);
        assert.deepStrictEqual(access, { host: "10.213.0.2", port: 22, user: "root" });
        assert.ok(!pulumi.Output.isInstance(access) && !JSON.stringify(access).includes("PRIVATE KEY"));
    });

    it("a plain gateway's service: the access log, no router", async () => {
        pulumi.runtime.setMocks(new RecordingMocks(), "sglang-gateway", "test", false);
        const { services } = buildStack(sshStack(1, { router: null }), {});
        await settle();
        assert.deepStrictEqual(services[0].observability, { accessLog: "/var/log/nginx/sglang-gateway-chat.access.log", routers: [] });
    });
});

describe("npm run gateway -- logs|metrics", () => {
    const outputs: StackOutputs = readOutputs(
        JSON.stringify({
            address: "10.213.0.2",
            gatewaySshKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n...",
            observability: {
                gateway: { host: "10.213.0.2", port: 22, user: "root" },
                services: {
                    chat: {
                        accessLog: "/var/log/nginx/sglang-gateway-chat.access.log",
                        routers: [
                            {
                                unit: "sglang-gateway-router-chat.service",
                                logDir: "/var/log/sglang-gateway/chat",
                                metricsUrl: "http://127.0.0.1:10507/metrics",
                            },
                            {
                                unit: "sglang-gateway-router2-chat.service",
                                logDir: "/var/log/sglang-gateway/chat/second",
                                metricsUrl: "http://127.0.0.1:11107/metrics",
                            },
                        ],
                    },
                    plain: { accessLog: "/var/log/nginx/sglang-gateway-plain.access.log", routers: [] },
                },
            },
        }),
    );
    const script = (args: string) => remoteScript(outputs, parseArgs(args.split(" ")).command);
    const bashSyntax = (text: string) => spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });

    it("logs: the access log and every router process's journal; --router or --nginx alone; -f follows both", () => {
        const both = script("logs chat");
        assert.match(both, /tail -n 100 \/var\/log\/nginx\/sglang-gateway-chat\.access\.log/);
        assert.match(both, /journalctl --no-pager --all -o short-iso -n 100 -u sglang-gateway-router-chat\.service -u sglang-gateway-router2-chat\.service$/m);
        assert.doesNotMatch(script("logs chat --router"), /tail/);
        assert.doesNotMatch(script("logs chat --nginx -n 5"), /journalctl/);
        assert.match(script("logs chat --nginx -n 5"), /tail -n 5 /);
        const follow = script("logs chat -f");
        assert.match(follow, /tail -n 10 -F \/var\/log\/nginx\/sglang-gateway-chat\.access\.log 2>\/dev\/null &/);
        assert.match(follow, /journalctl .* -f -u sglang-gateway-router-chat\.service -u sglang-gateway-router2-chat\.service &\nwait/);
        for (const text of [both, follow, script("logs plain")]) {
            assert.strictEqual(bashSyntax(text).status, 0, text);
        }
        assert.doesNotMatch(script("logs plain"), /journalctl/);
    });

    it("metrics: the router's URL on the gateway's loopback, the second process's with --process 2", () => {
        assert.match(script("metrics chat"), /curl -sS --fail --max-time 10 http:\/\/127\.0\.0\.1:10507\/metrics \|\|/);
        assert.match(script("metrics chat --process 2"), /http:\/\/127\.0\.0\.1:11107\/metrics/);
        assert.strictEqual(bashSyntax(script("metrics chat")).status, 0);
    });

    it("says what is wrong: an unknown service names the stack's, a plain gateway has no router metrics, bad options", () => {
        assert.throws(
            () => script("logs nope"),
            (err: Error) => err instanceof UsageError && /no service nope in this stack: it has chat, plain/.test(err.message),
        );
        assert.throws(() => script("metrics plain"), /service plain has no router \(a plain gateway\), so no router metrics/);
        assert.throws(() => script("logs plain --router"), /has no router/);
        assert.throws(() => parseArgs(["logs"]), /logs: which service\?/);
        assert.throws(() => parseArgs(["tail", "chat"]), /unknown command tail/);
        assert.throws(() => parseArgs(["metrics", "chat", "-f"]), /metrics takes no/);
        assert.throws(() => parseArgs(["logs", "chat", "-n", "x"]), /-n: expected a whole number/);
        assert.throws(() => parseArgs(["metrics", "chat", "--process", "3"]), /--process: expected 1 or 2/);
        assert.deepStrictEqual(parseArgs(["metrics", "chat", "--stack", "prod", "--cwd", "/srv/stack"]), {
            command: { kind: "metrics", service: "chat", process: 1 },
            stack: "prod",
            cwd: "/srv/stack",
        });
        assert.throws(() => readOutputs(JSON.stringify({ address: "x" })), /no observability outputs/);
    });
});
