// A plain gateway (no router) on sandbox hosts: nginx straight to the replicas' tunnels. Requests
// spread over the replicas, a scale-down lets open streams finish, and destroy cleans the hosts.
import * as assert from "assert";
import { chat, fakeWorkerCommand, token, underLoad, type Answer } from "../helpers/gateway-client";
import { PulumiProject } from "../helpers/pulumi-cli";
import { onHost, sandbox, sandboxState } from "../helpers/sandbox";

function plainStack(replicas: number) {
    const state = sandboxState();
    return {
        gateway: { type: "gateway", name: "plain", backend: "ssh", host: state.hosts.gw.address, privateKeyPath: state.privateKeyPath, domain: "sandbox.test" },
        services: [
            {
                type: "service",
                name: "chat",
                port: 8000,
                model: "fake-model",
                commands: [fakeWorkerCommand],
                replicas,
                hosts: [{ host: state.hosts.r1.address }, { host: state.hosts.r2.address }],
            },
        ],
        tokens: { chat: [token] },
    };
}

describe("e2e: a plain gateway without a router", function () {
    this.timeout(900000);
    let project: PulumiProject;

    before(async () => {
        sandbox("down");
        sandbox("up");
        project = new PulumiProject("plain");
        await project.init();
    });

    after(async () => {
        try {
            sandbox("down");
        } finally {
            project?.remove();
        }
    });

    it("serves with 2 replicas through nginx alone: no router, no bridges", async () => {
        project.setConfig(plainStack(2));
        await project.up();
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) {
            const answer = await chat({ stream: i % 2 === 1 });
            assert.strictEqual(answer.status, 200, answer.body);
            seen.add(answer.worker ?? "");
        }
        assert.deepStrictEqual([...seen].sort(), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
        assert.strictEqual((await chat({ withToken: false })).status, 401);
        const gw = await onHost("gw", "systemctl list-unit-files --plain --no-legend 'sglang-gateway-router-*' | wc -l; ls /etc/nginx/sglang-gateway/bridges | wc -l");
        assert.deepStrictEqual(gw.trim().split(/\s+/), ["0", "0"]);
    });

    it("2→1: streams open on the removed replica finish; no request fails", async () => {
        project.setConfig(plainStack(1));
        const longStreams = Promise.all(Array.from({ length: 4 }, () => chat({ stream: true, tokens: 300 }).catch((err: Error) => ({ status: 0, body: err.message }) as Answer)));
        await new Promise((r) => setTimeout(r, 500));
        const { answers } = await underLoad(() => project.up());
        const streams = await longStreams;
        assert.ok(answers.length > 0 && answers.every((a) => a.status === 200), `failed requests: ${JSON.stringify(answers.filter((a) => a.status !== 200).slice(0, 5))}`);
        assert.ok(streams.some((s) => s.worker === "sgw-r2-replica-1"), "no stream ran on the removed replica");
        for (const stream of streams) {
            assert.strictEqual(stream.status, 200, stream.body.slice(-300));
            assert.ok(stream.body.trimEnd().endsWith("data: [DONE]"), `a stream was cut: ...${stream.body.slice(-200)}`);
        }
        assert.strictEqual((await chat()).worker, "sgw-r1-replica-0");
        assert.strictEqual((await onHost("r2", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | wc -l")).trim(), "0");
    });

    it("destroy leaves the hosts clean", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        for (const host of ["gw", "r1", "r2"] as const) {
            const left = await onHost(host, "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ls -d /etc/nginx/sglang-gateway /opt/sglang-gateway /etc/sglang-gateway 2>/dev/null || true");
            assert.strictEqual(left.trim(), "", `left on ${host}: ${left}`);
        }
    });
});
