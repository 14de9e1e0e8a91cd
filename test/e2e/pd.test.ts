// End to end on real hosts: a prefill/decode (PD) service through the real engine, the real smg router in
// PD mode, nginx, sshd and systemd. Prefills run on r1, decodes on r2; the fake decode answers only after
// it reached its prefill's bootstrap server at the host and port the router handed it, so a pairing in an
// answer shows the bootstrap path works between the hosts, not only through the gateway.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { pdSandboxStack, sandboxStack } from "../helpers/sandbox-stacks";
import { adminCalls, leftOnGateway, pids, workers } from "../helpers/gateway-router";
import { answeringWorkers, assertNothingLost, chat, underLoad, whileStreaming, type Answer } from "../helpers/gateway-client";

const roleUrn = (role: string, i: number) => new RegExp(`::chat-${role}-${i}(-(process|tunnel|bridge|worker))?$`);

/** Who served `count` requests (plain and streamed in turn): decode and prefill names; every answer a 200. */
async function pairings(count: number): Promise<{ decodes: string[]; prefills: string[] }> {
    const answers: Answer[] = [];
    for (let i = 0; i < count; i++) {
        const answer = await chat({ stream: i % 2 === 1 });
        assert.strictEqual(answer.status, 200, `request ${i}: ${answer.body.slice(0, 300)}`);
        answers.push(answer);
    }
    const names = (pick: (a: Answer) => string | undefined) => [...new Set(answers.map((a) => pick(a) ?? "(none)"))].sort();
    return { decodes: names((a) => a.worker), prefills: names((a) => a.prefill) };
}

describe("e2e PD service on sandbox hosts (smg): prefills on r1, decodes on r2", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-pd");
    let project: PulumiProject;
    const config = (prefill: number, decode: number) => pdSandboxStack({ gateway: "e2e-pd", prefill, decode });
    beforeEach(() => (project = stack()));

    it("a running service without roles switches to PD in two ups (replicas: 0, then pd), as the README says", async () => {
        project.setConfig(sandboxStack({ gateway: "e2e-pd", replicas: 2 }));
        await project.up();
        assert.strictEqual((await answeringWorkers(4)).length, 2);
        project.setConfig(sandboxStack({ gateway: "e2e-pd", replicas: 0 }));
        await project.up();
        assert.deepStrictEqual(await workers(), []);
    });

    it("1 prefill + 1 decode: chat plain and streamed through the gateway with the token; the decode names its prefill", async () => {
        project.setConfig(config(1, 1));
        await project.up();
        assert.deepStrictEqual(await pairings(4), { decodes: ["sgw-r2-decode-0"], prefills: ["sgw-r1-prefill-0"] });
        assert.strictEqual((await chat({ withToken: false })).status, 401);
        const listed = (await workers()).map((w) => [w.worker_type, w.bootstrap_port ?? null, w.url.replace(/:\d+$/, ":PORT")]).sort();
        assert.deepStrictEqual(listed, [
            ["decode", null, "http://127.0.0.1:PORT"],
            ["prefill", 9000, `http://${(await onHost("r1", "hostname -I")).trim().split(" ")[0]}:PORT`],
        ]);
    });

    for (const role of ["decode", "prefill"] as const) {
        it(`${role} 1→2: the preview creates only ${role} 1; up makes exactly one POST /workers (a ${role}), no restart; it serves`, async () => {
            const now = (await workers()).filter((w) => w.worker_type === "prefill").length;
            project.setConfig(role === "decode" ? config(now, 2) : config(2, 2));
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
            assert.ok(steps.length > 0, "the preview planned nothing");
            for (const step of steps) {
                assert.strictEqual(step.op, "create", `${step.op} ${step.urn}`);
                assert.match(step.urn, roleUrn(role, 1));
            }
            const before = { pids: await pids(), calls: await adminCalls(), workers: await workers() };
            const { answers } = await underLoad(() => project.up());
            const after = { pids: await pids(), calls: await adminCalls(), workers: await workers() };
            assert.strictEqual(after.calls.posts - before.calls.posts, 1, "exactly one POST /workers");
            assert.strictEqual(after.calls.deletes - before.calls.deletes, 0);
            assert.deepStrictEqual(after.pids, before.pids, "router and nginx master kept their PIDs");
            const added = after.workers.filter((w) => !before.workers.some((b) => b.url === w.url));
            assert.deepStrictEqual(
                added.map((w) => w.worker_type),
                [role],
            );
            for (const w of before.workers) {
                assert.strictEqual(after.workers.find((a) => a.url === w.url)?.id, w.id, `worker ${w.url} kept its router id`);
            }
            const failed = answers.filter((a) => a.status !== 200);
            assert.ok(answers.length > 0 && failed.length === 0, `failed requests: ${JSON.stringify(failed.slice(0, 3))}`);
            const served = await pairings(8);
            const names = role === "decode" ? served.decodes : served.prefills;
            assert.ok(names.includes(`sgw-${role === "decode" ? "r2" : "r1"}-${role}-1`), `${role} 1 serves: ${JSON.stringify(served)}`);
        });
    }

    it("2→1 per role under a request loop (long streams open): exactly one DELETE each, nothing lost", async () => {
        for (const [prefill, decode, role] of [
            [2, 1, "decode"],
            [1, 1, "prefill"],
        ] as const) {
            project.setConfig(config(prefill, decode));
            const before = { calls: await adminCalls(), workers: await workers(), router: (await pids()).router };
            const result = await whileStreaming(4, () => project.up());
            const after = { calls: await adminCalls(), workers: await workers() };
            assert.strictEqual(after.calls.deletes - before.calls.deletes, 1, `exactly one DELETE /workers/{id} for the ${role}`);
            assert.strictEqual(after.calls.posts - before.calls.posts, 0);
            assert.strictEqual((await pids()).router, before.router, "the router kept running");
            const removed = before.workers.filter((w) => !after.workers.some((a) => a.url === w.url));
            assert.deepStrictEqual(
                removed.map((w) => w.worker_type),
                [role],
            );
            assertNothingLost(result);
        }
        assert.deepStrictEqual(await pairings(4), { decodes: ["sgw-r2-decode-0"], prefills: ["sgw-r1-prefill-0"] });
        const r1 = await onHost("r1", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1");
        const r2 = await onHost("r2", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1");
        assert.deepStrictEqual([r1.trim(), r2.trim()], ["sglang-gateway-chat-prefill-0.service", "sglang-gateway-chat-decode-0.service"]);
    });

    for (const role of ["decode", "prefill"] as const) {
        it(`${role} at 0: the endpoint stays up and answers a clear 503 naming the ${role} role; back at 1 it serves`, async () => {
            project.setConfig(role === "decode" ? config(1, 0) : config(0, 1));
            const routerPid = (await pids()).router;
            await project.up();
            assert.strictEqual((await pids()).router, routerPid, "router not restarted");
            const answer = await chat();
            assert.strictEqual(answer.status, 503, answer.body);
            assert.match(JSON.parse(answer.body).error.message, new RegExp(`service chat has no ${role} replica \\(pd\\.${role}\\.replicas is 0\\)`));
            assert.deepStrictEqual(
                (answer.headerNames ?? []).filter((h) => h.startsWith("x-smg-")),
                [],
            );
            project.setConfig(config(1, 1));
            await project.up();
            assert.deepStrictEqual(await pairings(2), { decodes: ["sgw-r2-decode-0"], prefills: ["sgw-r1-prefill-0"] });
        });
    }

    it("destroy leaves the hosts clean: no units, no nginx files, no router", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
        for (const host of ["r1", "r2"] as const) {
            const left = await onHost(
                host,
                "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ls -d /opt/sglang-gateway 2>/dev/null || true",
            );
            assert.strictEqual(left.trim(), "", `left on ${host}: ${left}`);
        }
    });
});
