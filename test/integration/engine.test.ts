// The real Pulumi engine (built from Go modules by scripts/setup/pulumi.sh) runs this repo's stack
// program: version, a preview of an ssh-backend stack (no AWS resources, no host contacted), and
// a bad config stopping the run before any resource is registered.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { PulumiProject } from "../helpers/pulumi-cli";
import { sshStack } from "../helpers/stack-configs";

describe("the real Pulumi engine runs the stack program", function () {
    this.timeout(300000);
    let project: PulumiProject;

    before(async () => {
        project = new PulumiProject("preview");
        await project.init();
    });
    after(() => project?.remove());

    it("pulumi version prints the version built from Go modules", () => {
        const version = execFileSync("pulumi", ["version"], { env: project.env(), encoding: "utf8" }).trim();
        assert.strictEqual(version, "v3.248.0");
    });

    it("preview of an ssh-backend stack with 2 replicas plans the whole tree and nothing from AWS", async () => {
        project.setConfig(sshStack(2));
        const steps = await project.previewSteps();
        const created = steps
            .filter((s) => s.op === "create")
            .map((s) => s.urn.split("::").pop())
            .sort();
        assert.deepStrictEqual(created, [
            "chat",
            "chat-replica-0",
            "chat-replica-0-bridge",
            "chat-replica-0-process",
            "chat-replica-0-tunnel",
            "chat-replica-0-worker",
            "chat-replica-1",
            "chat-replica-1-bridge",
            "chat-replica-1-process",
            "chat-replica-1-tunnel",
            "chat-replica-1-worker",
            "chat-router",
            "chat-router-reconcile",
            "chat-server",
            "gw",
            "gw-setup",
            "sglang-gateway-preview",
        ]);
        assert.ok(
            steps.every((s) => !s.type.startsWith("aws:")),
            "no AWS resource in an ssh stack",
        );
    });

    it("preview --diff is readable: each step's facts and a digest, no script text (that needs --show-secrets)", async () => {
        project.setConfig(sshStack(2));
        const { stdout } = await project.run(["preview", "--diff"]);
        assert.doesNotMatch(stdout, /#!\/bin\/bash|set -euo pipefail/, "script text in the preview");
        // A digest of a script that holds a secret (a token, a key) is secret too: no offline guessing.
        assert.match(stdout, /scriptDigest\s*:\s*\[secret\]/);
        assert.match(stdout, /modelServerPort\s*:\s*8000/);
        assert.match(stdout, /workerUrl\s*:\s*"http:\/\/127\.0\.0\.1:\d+"/);
        assert.match(stdout, /scriptDigest\s*:\s*"[0-9a-f]{12}"/);
        const shown = await project.run(["preview", "--diff", "--show-secrets"]);
        assert.match(shown.stdout, /create\s*:\s*"#!\/bin\/bash\\n# sglang-gateway: chat replica 0 process/, "--show-secrets shows the scripts");
    });

    it("a bad config stops the run with every problem named, and nothing is planned", async () => {
        const raw = sshStack(2) as ReturnType<typeof sshStack> & { services: Record<string, unknown>[] };
        raw.services[0].replicas = -1;
        (raw.gateway as Record<string, unknown>).domain = "nodot";
        project.setConfig(raw);
        await assert.rejects(project.run(["preview"]), (err: Error) => {
            assert.match(err.message, /gateway\.domain: expected a domain name/);
            assert.match(err.message, /services\[0\]\.replicas: expected a whole number from 0 to 64 \(got -1\)/);
            assert.doesNotMatch(err.message, /chat-router/);
            assert.doesNotMatch(err.message, /\n\s+at .*:\d+:\d+/, "the problems, not a stack trace");
            return true;
        });
    });
});
