// A prefill/decode (PD) service under Pulumi mocks: resources per role, what each worker registers,
// how the router starts, and that scaling one role touches only that role's resources.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "../../components";
import { AwsMocks } from "../helpers/aws-mocks";
import { settle } from "../helpers/mocks";
import { awsStack, pdSshStack } from "../helpers/stack-configs";

async function build(raw: unknown) {
    const mocks = new AwsMocks({ region: "eu-west-1" });
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    const { services } = buildStack(raw, {});
    await settle();
    return { mocks, service: services[0] };
}

const inputsByName = (mocks: AwsMocks) => new Map(mocks.resources.map((r) => [r.name, JSON.stringify(r.inputs)]));

describe("PD service (mocks)", () => {
    it("prefills are reached directly at their host (their URL is the bootstrap host); decodes through tunnel and bridge", async () => {
        const { mocks, service } = await build(pdSshStack(2, 1));
        const names = mocks.resources.map((r) => r.name);
        for (const i of [0, 1]) {
            assert.ok(names.includes(`chat-prefill-${i}-process`) && names.includes(`chat-prefill-${i}-worker`), names.join(", "));
            assert.ok(!names.includes(`chat-prefill-${i}-tunnel`) && !names.includes(`chat-prefill-${i}-bridge`), "a prefill has no tunnel or bridge");
        }
        for (const child of ["process", "tunnel", "bridge", "worker"]) {
            assert.ok(names.includes(`chat-decode-0-${child}`), `chat-decode-0-${child} missing`);
        }
        assert.ok(!names.some((n) => n.startsWith("chat-replica-")), "a PD service has no regular replicas");
        assert.deepStrictEqual(
            service.replicas.map((r) => [r.role, r.index, r.port, r.bootstrapPort]),
            [
                ["prefill", 0, 8000, 9000],
                ["prefill", 1, 8001, 9001],
                ["decode", 0, 8000, undefined],
            ],
        );
        const worker = (name: string) => mocks.named(name).inputs as Record<string, unknown>;
        assert.deepStrictEqual(
            ["chat-prefill-0-worker", "chat-prefill-1-worker", "chat-decode-0-worker"].map((n) => [
                worker(n).workerUrl,
                worker(n).workerType,
                worker(n).bootstrapPort,
            ]),
            [
                ["http://10.213.0.3:8000", "prefill", 9000],
                ["http://10.213.0.3:8001", "prefill", 9001],
                [`http://127.0.0.1:${service.replicas[2].bridgePort}`, "decode", undefined],
            ],
        );
    });

    it("the router starts in PD mode with a policy per role and comes back with each worker's role after a restart", async () => {
        const { mocks } = await build(pdSshStack(1, 1, { prefill: { policy: "bucket" }, decode: { policy: "round_robin" } }));
        const router = String(mocks.named("chat-router").inputs.create);
        assert.match(router, /--policy cache_aware --pd-disaggregation --prefill-policy bucket --decode-policy round_robin/);
        // The start script passes each worker file's flags: `--prefill URL PORT` or `--decode URL`.
        assert.match(router, /args="\$args \$\(cat "\$f"\)"/);
        assert.doesNotMatch(router, /--worker-urls/);
    });

    it("each replica's environment holds its role, and a prefill's its bootstrap port", async () => {
        const { mocks } = await build(pdSshStack(2, 1));
        const env = (name: string) => String(mocks.named(name).inputs.create);
        assert.match(env("chat-prefill-1-process"), /^ROLE="prefill"$/m);
        assert.match(env("chat-prefill-1-process"), /^BOOTSTRAP_PORT="9001"$/m);
        assert.match(env("chat-decode-0-process"), /^ROLE="decode"$/m);
        assert.doesNotMatch(env("chat-decode-0-process"), /^BOOTSTRAP_PORT=/m);
        assert.match(env("chat-decode-0-process"), /sglang-gateway-chat-decode-0\.service/);
    });

    for (const [what, from, to, role] of [
        ["decode 1→2", [1, 1], [1, 2], "decode"],
        ["prefill 1→2", [1, 1], [2, 1], "prefill"],
    ] as const) {
        it(`scaling ${what} adds only that role's replica; nothing else changes`, async () => {
            const before = inputsByName((await build(pdSshStack(from[0], from[1]))).mocks);
            const after = inputsByName((await build(pdSshStack(to[0], to[1]))).mocks);
            const added = [...after.keys()].filter((n) => !before.has(n)).sort();
            const children = role === "prefill" ? ["process", "worker"] : ["process", "tunnel", "bridge", "worker"];
            assert.deepStrictEqual(added, [`chat-${role}-1`, ...children.map((c) => `chat-${role}-1-${c}`)].sort());
            const changed = [...before.keys()].filter((n) => after.get(n) !== before.get(n));
            assert.deepStrictEqual(changed, [], `inputs changed for ${changed.join(", ")}`);
        });
    }

    it("a role at zero: the server block answers the router's 503 naming that role", async () => {
        const { mocks } = await build(pdSshStack(1, 0));
        const block = String(mocks.named("chat-server").inputs.create);
        assert.match(block, /service chat has no decode replica \(pd\.decode\.replicas is 0\)/);
        assert.match(block, /\$upstream_http_x_smg_error_code = 'no_available_workers'/);
    });

    it("aws: one instance per replica named by role, and the service's replicas reach each other (their own security group)", async () => {
        const raw = awsStack(0);
        const { replicas: _r, ...service } = raw.services[0];
        raw.services[0] = { ...service, pd: { prefill: { replicas: 1 }, decode: { replicas: 2 } } } as never;
        const { mocks } = await build(raw);
        assert.deepStrictEqual(mocks.violations(), [], "what AWS would refuse");
        const instances = mocks.ofType("aws:ec2/instance:Instance");
        assert.deepStrictEqual(instances.map((r) => r.name).sort(), ["chat-decode-0", "chat-decode-1", "chat-prefill-0", "gw-gateway"]);
        const peers = mocks.ofType("aws:ec2/securityGroup:SecurityGroup").filter((r) => r.name === "gw-chat-pd");
        assert.strictEqual(peers.length, 1);
        assert.deepStrictEqual(peers[0].inputs.ingress, [{ protocol: "tcp", fromPort: 0, toPort: 65535, self: true }]);
        for (const instance of instances.filter((r) => r.name !== "gw-gateway")) {
            assert.strictEqual((instance.inputs.vpcSecurityGroupIds as string[]).length, 2, instance.name);
        }
        const prefill = mocks.named("chat-prefill-0-worker").inputs as { workerUrl: string; bootstrapPort: number };
        assert.match(prefill.workerUrl, /^http:\/\/10\.\d+\.\d+\.\d+:8000$/);
        assert.strictEqual(prefill.bootstrapPort, 8998);
    });

    it("router.processes 2: a second router on its own ports, both in the server block's upstream with failover, each worker registered with both", async () => {
        const raw = pdSshStack(1, 1);
        (raw.gateway as Record<string, unknown>).router = { type: "sglang", processes: 2 };
        const { mocks, service } = await build(raw);
        const second = String(mocks.named("chat-router-2").inputs.create);
        assert.match(second, new RegExp(`--port ${service.ports.secondRouterPort} `));
        assert.match(second, /sglang-gateway-router2-chat\.service/);
        const block = String(mocks.named("chat-server").inputs.create);
        assert.match(
            block,
            new RegExp(
                `server 127\\.0\\.0\\.1:${service.ports.routerPort} max_fails=0;[^}]*server 127\\.0\\.0\\.1:${service.ports.secondRouterPort} max_fails=0;`,
            ),
        );
        // A PD router answers 503 when it has no worker of a role: that answer goes to the other router too.
        assert.match(block, /proxy_next_upstream error timeout non_idempotent http_503;/);
        for (const worker of ["chat-prefill-0-worker", "chat-decode-0-worker"]) {
            assert.deepStrictEqual(mocks.named(worker).inputs.extraRouterPorts, [service.ports.secondRouterPort]);
        }
        const around = mocks.named("chat-decode-0-process").inputs.aroundUpdate as { before: string; after: string };
        for (const port of [service.ports.routerPort, service.ports.secondRouterPort]) {
            assert.ok(around.before.includes(`http://127.0.0.1:${port}/workers/`), `leave reaches router ${port}`);
            assert.ok(around.after.includes(`router=http://127.0.0.1:${port}`), `join reaches router ${port}`);
        }
    });

    it("one router process (the default): no second router, no failover, workers without extra ports", async () => {
        const { mocks } = await build(pdSshStack(1, 1));
        assert.ok(!mocks.resources.some((r) => r.name === "chat-router-2"));
        assert.doesNotMatch(String(mocks.named("chat-server").inputs.create), /proxy_next_upstream/);
        assert.strictEqual(mocks.named("chat-decode-0-worker").inputs.extraRouterPorts, undefined);
    });
});
