// Upgrading a running stack from sglang-router 0.3.2 to smg (the default) on sandbox hosts: the
// preview names the install and the router, nothing per replica; up installs smg beside the old
// router, restarts the router once with every registered worker, removes the old install. Requests
// fail only in the router's restart gap: measured and reported.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { answeringWorkers, underLoad } from "../helpers/gateway-client";
import { leftOnGateway, pids, workers } from "../helpers/gateway-router";

describe("e2e: upgrading the router from sglang-router 0.3.2 to smg under load", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("upgrade");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("runs on 0.3.2 first", async () => {
        project.setConfig(sandboxStack({ gateway: "upgrade", replicas: 2, router: { version: "0.3.2" } }));
        await project.up();
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
        assert.strictEqual((await onHost("gw", "ps -eo comm | grep -c 'sglang::router' || true")).trim(), "1");
    });

    it("the preview changes the install and the service's router and server block, nothing per replica", async () => {
        project.setConfig(sandboxStack({ gateway: "upgrade", replicas: 2 }));
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        assert.deepStrictEqual(steps.sort(), ["update chat-router", "update chat-server", "update upgrade-setup"]);
    });

    it("up: the router restarts once on smg with both workers; the old install is gone; failures only in the restart gap", async () => {
        const before = { pids: await pids(), workers: await workers() };
        const started = Date.now();
        const { answers } = await underLoad(() => project.up());
        const after = { pids: await pids(), workers: await workers() };
        assert.notStrictEqual(after.pids.router, before.pids.router, "the router restarted");
        assert.strictEqual(after.pids.nginx, before.pids.nginx, "nginx was reloaded, not restarted");
        assert.strictEqual((await onHost("gw", "ps -eo comm | grep -c 'smg::router' || true")).trim(), "1");
        assert.deepStrictEqual(after.workers.map((w) => w.url).sort(), before.workers.map((w) => w.url).sort(), "the restarted router has every worker");
        assert.ok(after.workers.every((w) => w.is_healthy));
        assert.strictEqual((await onHost("gw", "ls /opt/sglang-gateway/routers")).trim(), "smg-1.13.0", "the 0.3.2 install is removed");

        const failed = answers.filter((a) => a.status !== 200);
        const report = `upgrade under load: ${answers.length} requests, ${failed.length} failed (${[...new Set(failed.map((a) => a.status))].join(", ") || "none"}), up took ${((Date.now() - started) / 1000).toFixed(1)} s`;
        console.log(`      ${report}`);
        // A failure may only be a refused connection of the restart gap: nginx's 502, or the gateway's 503.
        assert.ok(
            failed.every((a) => a.status === 502 || a.status === 503),
            report,
        );
        assert.ok(failed.length <= 40, `more failures than a restart gap explains: ${report}`);
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
    });

    it("destroy leaves the gateway clean", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
    });
});
