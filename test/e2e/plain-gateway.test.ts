// A plain gateway (no router) on sandbox hosts: nginx straight to the replicas' tunnels. Requests
// spread over the replicas, a scale-down lets open streams finish, and destroy cleans the hosts.
import * as assert from "assert";
import { answeringWorkers, assertNothingLost, chat, whileStreaming } from "../helpers/gateway-client";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";

describe("e2e: a plain gateway without a router", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("plain");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("serves with 2 replicas through nginx alone: no router, no bridges", async () => {
        project.setConfig(sandboxStack({ gateway: "plain", router: "none", replicas: 2 }));
        await project.up();
        assert.deepStrictEqual(await answeringWorkers(6), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
        assert.strictEqual((await chat({ withToken: false })).status, 401);
        const gw = await onHost(
            "gw",
            "systemctl list-unit-files --plain --no-legend 'sglang-gateway-router-*' | wc -l; ls /etc/nginx/sglang-gateway/bridges | wc -l",
        );
        assert.deepStrictEqual(gw.trim().split(/\s+/), ["0", "0"]);
    });

    it("2→1: streams open on the removed replica finish; no request fails", async () => {
        project.setConfig(sandboxStack({ gateway: "plain", router: "none", replicas: 1 }));
        const result = await whileStreaming(4, () => project.up());
        assertNothingLost(result);
        assert.ok(
            result.streams.some((s) => s.worker === "sgw-r2-replica-1"),
            "no stream ran on the removed replica",
        );
        assert.strictEqual((await chat()).worker, "sgw-r1-replica-0");
        assert.strictEqual((await onHost("r2", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | wc -l")).trim(), "0");
    });

    it("destroy leaves the hosts clean", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        for (const host of ["gw", "r1", "r2"] as const) {
            const left = await onHost(
                host,
                "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ls -d /etc/nginx/sglang-gateway /opt/sglang-gateway /etc/sglang-gateway 2>/dev/null || true",
            );
            assert.strictEqual(left.trim(), "", `left on ${host}: ${left}`);
        }
    });
});
