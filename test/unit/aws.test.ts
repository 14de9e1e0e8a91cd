// The aws backend under mocks that answer like AWS and record what AWS would refuse (test/helpers/aws-mocks.ts).
// Every graph here asserts an empty violation list; the other assertions pin the choices AWS leaves open.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { utils } from "ssh2";
import { buildStack, Gateway, parseStackConfig, Service } from "../../components";
import { hostScriptProvider, type HostScriptInputs } from "../../components/host-script";
import { AwsMocks, type AwsMockOptions } from "../helpers/aws-mocks";
import { settle, valueOf } from "../helpers/mocks";
import { awsStack, sshStack, testKey } from "../helpers/stack-configs";
import { sshKeyPair } from "../helpers/ssh-keys";

async function build(raw: unknown, options: AwsMockOptions = { region: "eu-west-1" }) {
    const mocks = new AwsMocks(options);
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    const { gateway, services } = buildStack(raw, {});
    const all: pulumi.Resource[] = [gateway, gateway.setup, ...services.flatMap((s) => [s, s.serverBlock, ...s.replicas.flatMap((r) => [r, r.process])])];
    await Promise.all(all.map((r) => valueOf(r.urn)));
    await settle();
    return mocks;
}

const instance = (mocks: AwsMocks, name: string) => mocks.ofType("aws:ec2/instance:Instance").find((r) => r.name === name)?.inputs ?? {};
const script = (mocks: AwsMocks, name: string) => String(mocks.named(name).inputs.create);
const configError = (raw: unknown) => {
    try {
        parseStackConfig(raw);
    } catch (err) {
        return String((err as Error).message);
    }
    return "no error";
};

describe("aws backend (AWS-like mocks)", () => {
    for (const count of [0, 1, 3]) {
        it(`${count} replica(s): nothing AWS would refuse`, async () => {
            const mocks = await build(awsStack(count));
            assert.deepStrictEqual(mocks.violations(), []);
            assert.strictEqual(mocks.ofType("aws:ec2/instance:Instance").length, 1 + count);
        });
    }

    it("replicas boot the NVIDIA Deep Learning AMI, the gateway Canonical's Ubuntu; containers get --gpus all on GPU types", async () => {
        const mocks = await build(awsStack(1));
        assert.deepStrictEqual(mocks.violations(), []);
        assert.strictEqual(instance(mocks, "chat-replica-0").ami, "ami-dlami-x86_64");
        assert.strictEqual(instance(mocks, "gw-gateway").ami, "ami-ubuntu-x86_64");
        assert.match(script(mocks, "chat-replica-0-process"), /--gpus all/);
    });

    it("a CPU replica type runs its container without --gpus all", async () => {
        const mocks = await build(awsStack(1, { service: { instanceType: "c7i.2xlarge" } }));
        assert.deepStrictEqual(mocks.violations(), []);
        assert.doesNotMatch(script(mocks, "chat-replica-0-process"), /--gpus/);
    });

    it("Graviton types get arm64 images (gateway t4g, replica g5g)", async () => {
        const mocks = await build(awsStack(1, { gateway: { instanceType: "t4g.small" }, service: { instanceType: "g5g.xlarge" } }));
        assert.deepStrictEqual(mocks.violations(), []);
        assert.strictEqual(instance(mocks, "gw-gateway").ami, "ami-ubuntu-arm64");
        assert.strictEqual(instance(mocks, "chat-replica-0").ami, "ami-dlami-arm64");
    });

    it("a replica's ami setting is its own; the gateway's is the gateway's", async () => {
        const mocks = await build(awsStack(1, { gateway: { ami: "ami-gw" }, service: { ami: "ami-mine" } }));
        assert.deepStrictEqual(mocks.violations(), []);
        assert.strictEqual(instance(mocks, "gw-gateway").ami, "ami-gw");
        assert.strictEqual(instance(mocks, "chat-replica-0").ami, "ami-mine");
    });

    it("root volumes: gp3, encrypted, 20 GiB on the gateway and 200 GiB per replica by default; sizes configurable", async () => {
        const defaults = await build(awsStack(1));
        assert.deepStrictEqual(instance(defaults, "gw-gateway").rootBlockDevice, {
            volumeSize: 20,
            volumeType: "gp3",
            encrypted: true,
            tags: { "sglang-gateway": "gw", Name: "gw-gateway" },
        });
        assert.strictEqual((instance(defaults, "chat-replica-0").rootBlockDevice as { volumeSize: number }).volumeSize, 200);
        const sized = await build(awsStack(1, { gateway: { rootVolumeGiB: 30 }, service: { rootVolumeGiB: 500 } }));
        assert.deepStrictEqual(sized.violations(), []);
        assert.strictEqual((instance(sized, "gw-gateway").rootBlockDevice as { volumeSize: number }).volumeSize, 30);
        assert.strictEqual((instance(sized, "chat-replica-0").rootBlockDevice as { volumeSize: number }).volumeSize, 500);
    });

    it("IMDSv2 required: hop limit 1 on the gateway, 2 on replicas (containers)", async () => {
        const mocks = await build(awsStack(1));
        assert.deepStrictEqual((instance(mocks, "gw-gateway").metadataOptions as { httpPutResponseHopLimit: number }).httpPutResponseHopLimit, 1);
        assert.deepStrictEqual((instance(mocks, "chat-replica-0").metadataOptions as { httpPutResponseHopLimit: number }).httpPutResponseHopLimit, 2);
    });

    it("tags: the user's merged with Name and sglang-gateway on every resource", async () => {
        const mocks = await build(awsStack(1, { gateway: { tags: { team: "ml" } } }));
        assert.deepStrictEqual(mocks.violations(), []);
        for (const r of mocks.resources.filter((r) => r.type.startsWith("aws:ec2/"))) {
            assert.strictEqual((r.inputs.tags as Record<string, string>).team, "ml", `${r.type} ${r.name}`);
        }
    });

    it("no region set: no resource or invoke names one, and no provider is built", async () => {
        const mocks = await build(awsStack(1, { gateway: { region: undefined } }), { region: undefined });
        assert.deepStrictEqual(mocks.violations(), []);
        assert.strictEqual(mocks.ofType("pulumi:providers:aws").length, 0);
    });

    it("a region set goes on every resource and invoke, not through a provider of the library's own", async () => {
        const mocks = await build(awsStack(1));
        assert.deepStrictEqual(mocks.violations(), []);
        assert.strictEqual(mocks.ofType("pulumi:providers:aws").length, 0);
        assert.ok(mocks.calls.length >= 2 && mocks.calls.every((c) => c.inputs.region === "eu-west-1"));
    });

    for (const how of ["providers", "provider"] as const) {
        it(`a provider given to the Gateway (${how}) reaches every AWS resource and invoke, replicas included`, async () => {
            const mocks = new AwsMocks({ region: "eu-west-1", userProviders: ["mine"] });
            pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
            const aws = require("@pulumi/aws") as typeof import("@pulumi/aws");
            const mine = new aws.Provider("mine", { region: "eu-west-1" });
            const gateway = new Gateway(
                "gw",
                { backend: "aws", domain: "example.com", region: "eu-west-1", zoneId: "Z1", privateKey: testKey, router: { type: "sglang" } },
                how === "providers" ? { providers: { aws: mine } } : { provider: mine },
            );
            const chat = new Service("chat", {
                gateway,
                port: 8000,
                model: "m",
                image: "lmsysorg/sglang:latest",
                replicas: 2,
                tokens: ["tok-0123456789abcdef"],
                instanceType: "g5.xlarge",
            });
            await Promise.all([gateway.urn, chat.urn, ...chat.replicas.map((r) => r.process.urn)].map((o) => valueOf(o)));
            await settle();
            assert.deepStrictEqual(mocks.violations(), []);
            const urn = await valueOf(mine.urn);
            const awsResources = mocks.resources.filter((r) => r.type.startsWith("aws:"));
            assert.strictEqual(mocks.ofType("aws:ec2/instance:Instance").length, 3);
            for (const r of awsResources) {
                assert.ok(r.provider.startsWith(urn), `${r.type} ${r.name} on provider ${JSON.stringify(r.provider)}`);
            }
            for (const c of mocks.calls) {
                assert.ok(c.provider.startsWith(urn), `${c.token} on provider ${JSON.stringify(c.provider)}`);
            }
        });
    }

    it("a subnet without vpcId: the security groups go in the subnet's VPC; replicas may have a subnet of their own", async () => {
        const mocks = await build(awsStack(1, { gateway: { subnetId: "subnet-public", replicaSubnetId: "subnet-private" } }), {
            region: "eu-west-1",
            subnets: { "subnet-public": "vpc-a", "subnet-private": "vpc-a" },
        });
        assert.deepStrictEqual(mocks.violations(), []);
        assert.ok(mocks.ofType("aws:ec2/securityGroup:SecurityGroup").every((g) => g.inputs.vpcId === "vpc-a"));
        assert.strictEqual(instance(mocks, "gw-gateway").subnetId, "subnet-public");
        assert.strictEqual(instance(mocks, "chat-replica-0").subnetId, "subnet-private");
    });

    it("vpcId or replicaSubnetId without subnetId is a config error: EC2 would put the instances in the default VPC", () => {
        const { parseStackConfig } = require("../../components") as typeof import("../../components");
        assert.throws(() => parseStackConfig(awsStack(1, { gateway: { vpcId: "vpc-mine" } })), /gateway\.vpcId: vpcId needs subnetId too/);
        assert.throws(
            () => parseStackConfig(awsStack(1, { gateway: { replicaSubnetId: "subnet-p" } })),
            /gateway\.replicaSubnetId: replicaSubnetId needs subnetId too/,
        );
        parseStackConfig(awsStack(1, { gateway: { vpcId: "vpc-mine", subnetId: "subnet-a" } }));
    });

    it("SSH to the gateway from sshSourceCidrs only; HTTP(S) from anywhere", async () => {
        const mocks = await build(awsStack(0, { gateway: { sshSourceCidrs: ["198.51.100.0/24"] } }));
        const group = mocks.ofType("aws:ec2/securityGroup:SecurityGroup").find((g) => g.name === "gw-gateway");
        const rules = group?.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[];
        assert.deepStrictEqual(
            rules.map((r) => [r.fromPort, r.cidrBlocks]),
            [
                [22, ["198.51.100.0/24"]],
                [80, ["0.0.0.0/0"]],
                [443, ["0.0.0.0/0"]],
            ],
        );
    });

    it("host identity: aws connections carry the instance id, ssh connections none (no diff for ssh stacks)", async () => {
        const mocks = await build(awsStack(1));
        assert.strictEqual((mocks.named("gw-setup").inputs.connection as { hostId?: string }).hostId, "gw-gateway-id");
        assert.strictEqual((mocks.named("chat-replica-0-process").inputs.connection as { hostId?: string }).hostId, "chat-replica-0-id");
        const ssh = await build(sshStack(1), { region: undefined });
        assert.ok(!("hostId" in (ssh.named("gw-setup").inputs.connection as object)));
    });

    it("an aws replica's process step waits for its health URL and shows 50 lines of its journal if it never answers; ssh's does not", async () => {
        const mocks = await build(awsStack(1));
        const create = script(mocks, "chat-replica-0-process");
        assert.match(create, /curl -fsS -o \/dev\/null --max-time 2 '?http:\/\/127\.0\.0\.1:8000\/health/);
        assert.match(create, /journalctl -u '?sglang-gateway-chat-replica-0\.service'? -n 50/);
        const ssh = await build(sshStack(1), { region: undefined });
        assert.doesNotMatch(script(ssh, "chat-replica-0-process"), /journalctl/);
    });
});

describe("aws config errors", () => {
    it("non-NVIDIA accelerators are refused for containers, naming the service's instanceType", () => {
        for (const type of ["inf2.xlarge", "trn1.2xlarge", "g4ad.xlarge"]) {
            assert.match(
                configError(awsStack(1, { service: { instanceType: type } })),
                new RegExp(`services\\[0\\]\\.instanceType.*${type.replace(".", "\\.")}.*--gpus all`),
            );
        }
    });

    it("a name that is no instance type", () => {
        assert.match(configError(awsStack(1, { service: { instanceType: "large" } })), /services\[0\]\.instanceType/);
        assert.match(configError(awsStack(1, { gateway: { instanceType: "small" } })), /gateway\.instanceType/);
    });

    it("root volumes too small or too large", () => {
        assert.match(configError(awsStack(1, { gateway: { rootVolumeGiB: 4 } })), /gateway\.rootVolumeGiB.*from 8 to 16384/);
        assert.match(configError(awsStack(1, { service: { rootVolumeGiB: 50 } })), /services\[0\]\.rootVolumeGiB.*at least 100 GiB/);
        assert.match(configError(awsStack(1, { service: { rootVolumeGiB: 20000 } })), /services\[0\]\.rootVolumeGiB/);
    });

    it("keys EC2 won't import (ECDSA, RSA under 2048 bits) are refused, naming privateKey", () => {
        const ecdsa = sshKeyPair(() => utils.generateKeyPairSync("ecdsa", { bits: 256 })).private;
        const rsa1024 = sshKeyPair(() => utils.generateKeyPairSync("rsa", { bits: 1024 })).private;
        const rsa2048 = sshKeyPair(() => utils.generateKeyPairSync("rsa", { bits: 2048 })).private;
        assert.match(configError(awsStack(0, { gateway: { privateKey: ecdsa } })), /gateway\.privateKey.*ecdsa.*ED25519 or RSA/);
        assert.match(configError(awsStack(0, { gateway: { privateKey: rsa1024 } })), /gateway\.privateKey.*1024 bits/);
        assert.strictEqual(configError(awsStack(0, { gateway: { privateKey: rsa2048 } })), "no error");
    });

    it("sshSourceCidrs must be IPv4 CIDRs", () => {
        assert.match(configError(awsStack(0, { gateway: { sshSourceCidrs: ["10.0.0.1"] } })), /gateway\.sshSourceCidrs\[0\].*IPv4 CIDR/);
    });
});

describe("ssh backend: gpus", () => {
    it("containers get --gpus all unless the service says gpus: false", async () => {
        const withImage = { image: "lmsysorg/sglang:latest" };
        const gpus = await build(sshStack(1, { service: withImage }), { region: undefined });
        assert.match(script(gpus, "chat-replica-0-process"), /--gpus all/);
        const cpu = await build(sshStack(1, { service: { ...withImage, gpus: false } }), { region: undefined });
        assert.doesNotMatch(script(cpu, "chat-replica-0-process"), /--gpus/);
        assert.match(configError(awsStack(1, { service: { gpus: false } })), /services\[0\]\.gpus.*ssh backend/);
    });
});

describe("HostScript diff: host identity", () => {
    const base: HostScriptInputs = {
        connection: { host: "203.0.113.10", port: 22, user: "ubuntu", privateKey: "k", hostId: "i-1" },
        description: "d",
        create: "c",
        delete: "x",
    };
    const provider = hostScriptProvider as Required<pulumi.dynamic.ResourceProvider>;

    it("a new instance behind the same address replaces (set up again); the same instance is no change", async () => {
        assert.strictEqual((await provider.diff("id", base, { ...base })).changes, false);
        const replaced = await provider.diff("id", base, { ...base, connection: { ...base.connection, hostId: "i-2" } });
        assert.deepStrictEqual([replaced.changes, replaced.replaces], [true, ["connection"]]);
        const { hostId: _, ...noId } = base.connection;
        const plain = { ...base, connection: noId };
        assert.strictEqual((await provider.diff("id", plain, { ...plain })).changes, false, "ssh connections without hostId see no change");
        const upgraded = await provider.diff("id", plain, { ...base });
        assert.deepStrictEqual(
            [upgraded.changes, upgraded.replaces],
            [true, ["connection"]],
            "state from before hostIds: the instance may be new, set it up again",
        );
    });
});
