// The resource graph under Pulumi mocks: which children exist, under which parent, with which inputs.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "../../components";
import { scriptInput } from "../../components/host-script/ssh";
import { AwsMocks } from "../helpers/aws-mocks";
import { recordDependencies, settle, valueOf } from "../helpers/mocks";
import { awsStack, sshStack } from "../helpers/stack-configs";

async function build(raw: unknown) {
    // Answers like AWS for the aws stacks (region eu-west-1); ssh stacks create no AWS resources.
    const mocks = new AwsMocks({ region: "eu-west-1" });
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    const { gateway, services, endpoint } = buildStack(raw, {});
    // Resolving every URN waits until each registration reached the mocks.
    const all: pulumi.Resource[] = [
        gateway,
        gateway.setup,
        ...(endpoint ? [endpoint, endpoint.serverBlock] : []),
        ...services.flatMap((s) => [s, s.serverBlock, ...[s.routerProcess, s.routerReconcile].filter((r): r is NonNullable<typeof r> => r !== undefined)]),
    ];
    for (const s of services) {
        for (const r of s.replicas) {
            all.push(r, r.process, ...[r.tunnel, r.bridge, r.worker].filter((x): x is NonNullable<typeof x> => x !== undefined));
        }
    }
    const urns = await Promise.all(all.map((r) => valueOf(r.urn)));
    await settle();
    return { mocks, gateway, services, urns };
}

/** Two services (chat, code) behind the model endpoint `api`. */
function withEndpoint(raw: ReturnType<typeof sshStack>) {
    const code = { ...raw.services[0], name: "code", model: "code-model", portSlot: 7 };
    return {
        ...raw,
        gateway: { ...raw.gateway, endpoint: { name: "api" } },
        services: [...raw.services, code],
        tokens: { ...raw.tokens, code: raw.tokens.chat },
    };
}

const replicaChildren = (i: number) => [`chat-replica-${i}-process`, `chat-replica-${i}-tunnel`, `chat-replica-${i}-bridge`, `chat-replica-${i}-worker`];

describe("resource graph (mocks)", () => {
    for (const count of [0, 1, 3]) {
        it(`ssh backend with ${count} replica(s): one Replica with four children each, under the Service`, async () => {
            const { mocks, urns } = await build(sshStack(count));
            const names = mocks.resources.map((r) => r.name);
            for (let i = 0; i < count; i++) {
                for (const child of replicaChildren(i)) {
                    assert.ok(names.includes(child), `${child} missing; got ${names.join(", ")}`);
                }
                const processUrn = urns.find((u) => u.endsWith(`::chat-replica-${i}-process`));
                assert.match(processUrn ?? "", /sglang-gateway:index:Replica\$pulumi-nodejs:dynamic\/sglang-gateway:HostScript::/);
                const replicaUrn = urns.find((u) => u.endsWith(`::chat-replica-${i}`));
                assert.match(replicaUrn ?? "", /sglang-gateway:index:Service\$sglang-gateway:index:Replica::/);
                const workerUrn = urns.find((u) => u.endsWith(`::chat-replica-${i}-worker`));
                assert.match(workerUrn ?? "", /sglang-gateway:index:Replica\$pulumi-nodejs:dynamic\/sglang-gateway:SglangRouterWorker::/);
            }
            assert.ok(!names.includes(`chat-replica-${count}-process`), "one replica too many");
            assert.strictEqual(mocks.ofType("sglang-gateway:index:Replica").length, count);
            assert.strictEqual(mocks.ofType("pulumi-nodejs:dynamic/sglang-gateway:SglangRouterWorker").length, count);
            // The gateway and the service pieces exist whatever the count.
            for (const name of ["gw-setup", "chat-router", "chat-server"]) {
                assert.ok(names.includes(name), `${name} missing`);
            }
            assert.strictEqual(mocks.ofType("aws:ec2/instance:Instance").length, 0, "ssh backend creates no AWS resources");
        });

        it(`aws backend with ${count} replica(s): gateway instance, EIP, wildcard record, one instance per replica`, async () => {
            const { mocks } = await build(awsStack(count));
            assert.deepStrictEqual(mocks.violations(), [], "what AWS would refuse");
            const instances = mocks
                .ofType("aws:ec2/instance:Instance")
                .map((r) => r.name)
                .sort();
            assert.deepStrictEqual(instances, ["gw-gateway", ...Array.from({ length: count }, (_, i) => `chat-replica-${i}`)].sort());
            const record = mocks.named("gw-wildcard");
            assert.strictEqual(record.inputs.name, "*.example.com");
            assert.strictEqual(record.inputs.type, "A");
            assert.deepStrictEqual(record.inputs.records, ["203.0.113.10"]);
            const sg = mocks.ofType("aws:ec2/securityGroup:SecurityGroup").find((r) => r.name === "gw-gateway");
            const ports = (sg?.inputs.ingress as { fromPort: number }[]).map((r) => r.fromPort).sort((a, b) => a - b);
            assert.deepStrictEqual(ports, [22, 80, 443]);
            // direct mode on aws: no tunnel, the bridge points at the replica's private address.
            assert.strictEqual(mocks.resources.filter((r) => r.name.endsWith("-tunnel")).length, 0);
            assert.strictEqual(mocks.resources.filter((r) => r.name.endsWith("-bridge")).length, count);
        });
    }

    it("the gateway's ami is looked up from Canonical, the replicas' from the Deep Learning AMI account, unless given", async () => {
        const { mocks } = await build(awsStack(1));
        const ami = (name: string) => mocks.ofType("aws:ec2/instance:Instance").find((r) => r.name === name)?.inputs.ami;
        assert.deepStrictEqual([ami("gw-gateway"), ami("chat-replica-0")], ["ami-ubuntu-x86_64", "ami-dlami-x86_64"]);
        assert.deepStrictEqual(
            mocks.calls
                .filter((c) => c.token === "aws:ec2/getAmi:getAmi")
                .map((c) => (c.inputs.owners as string[])[0])
                .sort(),
            ["099720109477", "898082745236"],
        );
    });

    it("scaling 1→3 adds only replica 1 and 2 resources; replica 0's inputs are identical", async () => {
        const one = await build(sshStack(1));
        const three = await build(sshStack(3));
        const before = new Map(one.mocks.resources.map((r) => [r.name, JSON.stringify(r.inputs)]));
        const after = new Map(three.mocks.resources.map((r) => [r.name, JSON.stringify(r.inputs)]));
        const added = [...after.keys()].filter((n) => !before.has(n)).sort();
        assert.deepStrictEqual(added, ["chat-replica-1", ...replicaChildren(1), "chat-replica-2", ...replicaChildren(2)].sort());
        const changed = [...before.keys()].filter((n) => after.get(n) !== before.get(n));
        assert.deepStrictEqual(changed, [], `inputs changed for ${changed.join(", ")}`);
    });

    it("with a router: the reconcile beside it is its own step after the router, so adding it to a stack restarts no router", async () => {
        const mocks = new AwsMocks({ region: "eu-west-1" });
        pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
        const dependencies = recordDependencies();
        const { services } = buildStack(sshStack(1), {});
        const [router, reconcile] = await Promise.all([valueOf(services[0].routerProcess!.urn), valueOf(services[0].routerReconcile!.urn)]);
        await settle();
        assert.match(reconcile, /sglang-gateway:index:Service\$pulumi-nodejs:dynamic\/sglang-gateway:HostScript::chat-router-reconcile$/);
        assert.ok(dependencies.get("pulumi-nodejs:dynamic/sglang-gateway:HostScript::chat-router-reconcile")?.includes(router), "after the router");
        const create = String(mocks.named("chat-router-reconcile").inputs.create);
        assert.match(create, /systemctl restart sglang-gateway-router-chat_reconcile\.service/);
        assert.doesNotMatch(create, /systemctl restart sglang-gateway-router-chat\.service/, "the router itself is not restarted");
        assert.match(String(mocks.named("chat-router-reconcile").inputs.delete), /systemctl disable --now sglang-gateway-router-chat_reconcile\.service/);
    });

    it("without a router: no router process, no bridges or workers, the upstream lists the replica sockets", async () => {
        const { mocks } = await build(sshStack(2, { router: null }));
        const names = mocks.resources.map((r) => r.name);
        assert.ok(!names.includes("chat-router"));
        assert.ok(!names.includes("chat-router-reconcile"));
        assert.strictEqual(names.filter((n) => n.endsWith("-worker") || n.endsWith("-bridge")).length, 0);
        const server = String(mocks.named("chat-server").inputs.create);
        assert.match(server, /server unix:\/run\/sglang-gateway\/chat\/replica-0\.sock;/);
        assert.match(server, /server unix:\/run\/sglang-gateway\/chat\/replica-1\.sock;/);
    });

    it("with a model endpoint: its step comes after every service (its server block, which also writes the service's locations in it, and its replicas)", async () => {
        const mocks = new AwsMocks({ region: "eu-west-1" });
        pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
        const dependencies = recordDependencies();
        const { endpoint: component } = buildStack(withEndpoint(sshStack(1)), {});
        const urn = await valueOf(component!.serverBlock.urn);
        await settle();
        const endpoint = mocks.named("api-endpoint");
        assert.match(urn, /sglang-gateway:index:ModelEndpoint\$pulumi-nodejs:dynamic\/sglang-gateway:HostScript::api-endpoint$/);
        const after = dependencies.get("pulumi-nodejs:dynamic/sglang-gateway:HostScript::api-endpoint") ?? [];
        for (const service of ["chat", "code"]) {
            assert.ok(
                after.some((u) => u.endsWith(`::${service}-server`)),
                `after ${service}-server: ${after.join(", ")}`,
            );
            // After the whole service: an endpoint that fails (njs not to be had) leaves every service created.
            assert.ok(
                after.some((u) => u.endsWith(`::${service}-replica-0-worker`)),
                `after ${service}-replica-0-worker: ${after.join(", ")}`,
            );
            const server = String(mocks.named(`${service}-server`).inputs.create);
            assert.match(server, new RegExp(`/etc/nginx/sglang-gateway/endpoint/services/${service}\\.conf`));
            assert.match(server, new RegExp(`location @sgw_endpoint:${service}:_v1_chat_completions \\{`));
        }
        const create = String(endpoint.inputs.create);
        assert.match(create, /libnginx-mod-http-js/);
        assert.match(create, /\/etc\/nginx\/sglang-gateway\/services\/api_endpoint\.conf/);
        assert.match(create, /server_name api\.example\.com;/);
        assert.match(create, /"id":"fake-model","service":"chat","authVariable":"sgw_chat_authorized"/);
        assert.match(create, /"id":"code-model","service":"code"/);
        assert.match(String(endpoint.inputs.delete), /\/etc\/nginx\/sglang-gateway\/endpoint/);
    });

    it("without a model endpoint: no endpoint step, and a service's server block writes only its own file", async () => {
        const { mocks } = await build(sshStack(1));
        assert.ok(!mocks.resources.some((r) => r.name.endsWith("-endpoint")));
        assert.doesNotMatch(String(mocks.named("chat-server").inputs.create), /endpoint/);
    });

    it("workers register the bridge URL of their replica with the service's router port", async () => {
        const { mocks, services } = await build(sshStack(2));
        const [service] = services;
        for (const replica of service.replicas) {
            const worker = mocks.named(`chat-replica-${replica.index}-worker`);
            assert.strictEqual(worker.inputs.workerUrl, `http://127.0.0.1:${replica.bridgePort}`);
            assert.strictEqual(worker.inputs.routerPort, service.ports.routerPort);
        }
        assert.notStrictEqual(service.replicas[0].bridgePort, service.replicas[1].bridgePort);
    });

    for (const [label, raw] of [
        ["ssh, router", sshStack(3)],
        ["ssh, no router", sshStack(2, { router: null })],
        ["aws", awsStack(2)],
        ["ssh, router, model endpoint", withEndpoint(sshStack(2))],
    ] as const) {
        it(`every script the stack runs on its hosts parses (bash -n): ${label}`, async () => {
            const { mocks } = await build(raw);
            const scripts = mocks.ofType("pulumi-nodejs:dynamic/sglang-gateway:HostScript").flatMap((r) => {
                const around = r.inputs.aroundUpdate as { before: string; after: string } | undefined;
                const learn = r.inputs.learnHostKey as { script: string } | undefined;
                return [
                    [`${r.name} create`, String(r.inputs.create)],
                    [`${r.name} delete`, String(r.inputs.delete)],
                    ...(learn ? [[`${r.name} host key scan`, learn.script] as const] : []),
                    ...(around ? [[`${r.name} before update`, around.before] as const, [`${r.name} after update`, around.after] as const] : []),
                ];
            });
            // With a router, each replica's process rolls (and on ssh its tunnel): their scripts around an update are checked too.
            assert.strictEqual(
                scripts.filter(([what]) => what.endsWith("before update")).length,
                { "ssh, router": 6, "ssh, no router": 0, aws: 2, "ssh, router, model endpoint": 8 }[label],
            );
            assert.ok(scripts.length >= 6);
            for (const [what, script] of scripts) {
                const check = spawnSync("bash", ["-n"], { input: scriptInput(script), encoding: "utf8" });
                assert.strictEqual(check.status, 0, `${what}: ${check.stderr}`);
            }
        });
    }

    it("replicas spread over the hosts; the third shares host 0 on the next port", async () => {
        const { mocks, services } = await build(sshStack(3));
        const hostOf = (i: number) => (mocks.named(`chat-replica-${i}-process`).inputs.connection as { host: string }).host;
        assert.deepStrictEqual([0, 1, 2].map(hostOf), ["10.213.0.3", "10.213.0.4", "10.213.0.3"]);
        assert.deepStrictEqual(
            services[0].replicas.map((r) => r.port),
            [8000, 8000, 8001],
        );
    });

    it("component args: a replica host's key may be a file, as in the stack config; the process logs in with it", async () => {
        const fs = require("fs") as typeof import("fs");
        const os = require("os") as typeof import("os");
        const path = require("path") as typeof import("path");
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-hostkey-")), "id");
        fs.writeFileSync(file, "HOST KEY FROM A FILE\n");
        const mocks = new AwsMocks();
        pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
        const { Gateway, Service } = require("../../components") as typeof import("../../components");
        const gateway = new Gateway("gw", { backend: "ssh", host: "10.0.0.2", domain: "example.com", privateKey: "GATEWAY KEY", router: "sglang" });
        new Service("chat", {
            gateway,
            port: 8000,
            model: "m",
            commands: ["serve"],
            replicas: 1,
            tokens: ["tok-0123456789"],
            hosts: [{ host: "10.0.0.3", privateKeyPath: file }],
        });
        await settle();
        const process = mocks.named("chat-replica-0-process").inputs.connection as { privateKey: string };
        assert.strictEqual(process.privateKey, "HOST KEY FROM A FILE\n");
        assert.throws(
            () =>
                new Service("other", {
                    gateway,
                    port: 8000,
                    model: "m",
                    commands: ["serve"],
                    tokens: ["tok-0123456789"],
                    hosts: [{ host: "10.0.0.3", privateKeyPath: "/nonexistent/key" }],
                }),
            /Service other: hosts\[0\]\.privateKeyPath: cannot read \/nonexistent\/key/,
        );
        // The gateway's own key file is read the same way.
        const fromFile = new Gateway("gw-file", { backend: "ssh", host: "10.0.0.9", domain: "example.com", privateKeyPath: file });
        assert.strictEqual(await valueOf(fromFile.privateKey), "HOST KEY FROM A FILE\n");
        assert.throws(
            () => new Gateway("gw-missing", { backend: "ssh", host: "10.0.0.9", domain: "example.com", privateKeyPath: "/nonexistent/key" }),
            /Gateway gw-missing: privateKeyPath: cannot read \/nonexistent\/key/,
        );
    });
});
