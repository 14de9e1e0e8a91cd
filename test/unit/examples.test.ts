// The examples run: the embedded stack under mocks, the AWS stack config through validation.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../components";
import { AwsMocks } from "../helpers/aws-mocks";
import { recordDependencies, settle, valueOf } from "../helpers/mocks";
import { testKey } from "../helpers/stack-configs";

const root = path.resolve(__dirname, "..", "..");

/** Lets the example import the library by its package name, as a user's project would. */
function withPackageName<T>(run: () => T): T {
    const Module = require("module") as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
    const original = Module._resolveFilename;
    Module._resolveFilename = (request: string, ...rest: unknown[]) =>
        request === "sglang-gateway" ? path.join(root, "components", "index.ts") : original(request, ...rest);
    try {
        return run();
    } finally {
        Module._resolveFilename = original;
    }
}

describe("examples", () => {
    it("embedded: the gateway uses the larger stack's subnet, VPC and zone", async () => {
        const mocks = new AwsMocks({ region: undefined });
        pulumi.runtime.setMocks(mocks, "llm-platform", "dev", false);
        const dependencies = recordDependencies();
        pulumi.runtime.setAllConfig({ "llm-platform:sshPrivateKey": testKey, "llm-platform:chatToken": "tok-0123456789abcdef" }, [
            "llm-platform:sshPrivateKey",
            "llm-platform:chatToken",
        ]);
        const program = withPackageName(() => require(path.join(root, "examples", "embedded", "index.ts")) as { outputs: { chatUrl: pulumi.Output<string> } });
        assert.strictEqual(await valueOf(program.outputs.chatUrl), "http://chat.llm.example.com");
        await settle();
        const gateway = mocks.ofType("aws:ec2/instance:Instance").find((r) => r.name === "llm-gateway");
        assert.strictEqual(gateway?.inputs.subnetId, "platform-gpu-id");
        const record = mocks.named("llm-wildcard");
        assert.strictEqual(record.inputs.name, "*.llm.example.com");
        const groups = mocks.ofType("aws:ec2/securityGroup:SecurityGroup");
        assert.ok(
            groups.every((g) => g.inputs.vpcId === "platform-id"),
            JSON.stringify(groups.map((g) => g.inputs.vpcId)),
        );
        assert.strictEqual(mocks.ofType("aws:ec2/instance:Instance").length, 3, "gateway + 2 replicas");
        assert.deepStrictEqual(mocks.violations(), [], "what AWS would refuse");
        // Every instance waits for the internet route (its subnet id carries the route association).
        for (const r of mocks.ofType("aws:ec2/instance:Instance")) {
            const on = dependencies.get(`${r.type}::${r.name}`) ?? [];
            assert.ok(
                on.some((urn) => urn.includes("aws:ec2/routeTableAssociation:RouteTableAssociation::platform-gpu")),
                `${r.name} depends on ${on.join(", ")}`,
            );
        }
    });

    it("aws: the example stack config passes validation", () => {
        const yaml = require("js-yaml") as typeof import("js-yaml");
        const { config } = yaml.load(fs.readFileSync(path.join(root, "examples", "aws", "Pulumi.aws.yaml"), "utf8")) as { config: Record<string, unknown> };
        const gateway = { ...(config["sglang-gateway:gateway"] as object), privateKey: testKey };
        const parsed = parseStackConfig({ gateway, services: config["sglang-gateway:services"], tokens: { "sglang-service": ["tok-0123456789abcdef"] } });
        assert.strictEqual(parsed.services[0].replicas, 2);
        assert.strictEqual(parsed.gateway.router?.policy, "cache_aware");
    });
});
