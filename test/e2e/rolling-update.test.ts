// End to end on real hosts: a config change of a service with 3 replicas (real engine, smg, nginx, sshd,
// systemd) restarts one replica at a time, each out of the router and drained first; a change whose
// replica never turns healthy stops the roll there and the others keep serving the old config.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { workers } from "../helpers/gateway-router";
import { assertNothingLost, chat, whileStreaming } from "../helpers/gateway-client";

/** The chat service with 3 replicas and the fake worker's answer length from the environment. */
function config(env: Record<string, string>) {
    const stack = sandboxStack({ gateway: "e2e-roll", replicas: 3 });
    // A replica that never turns healthy is given up on after 30 s.
    Object.assign(stack.services[0], { env, readinessTimeoutSeconds: 30 });
    return stack;
}

/** The gateway's rollout log since `cursor`: `<replica label> leaves|is out|is back` lines, in order. */
async function rolloutLog(since: string): Promise<string[]> {
    const text = await onHost("gw", `journalctl -t sglang-gateway-rollout --since '${since}' -o cat --no-pager`);
    return text.split("\n").filter((l) => l.trim() !== "");
}

describe("e2e rolling config update on sandbox hosts (smg): 3 replicas, one at a time", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-roll");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("an env change under a request loop (half streamed, long streams open): one update per replica, one replica at a time, nothing lost", async () => {
        project.setConfig(config({ FAKE_WORKER_COMPLETION_TOKENS: "3" }));
        await project.up();
        assert.strictEqual((await workers()).length, 3);

        project.setConfig(config({ FAKE_WORKER_COMPLETION_TOKENS: "2" }));
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
        assert.deepStrictEqual(steps.map((s) => `${s.op} ${s.urn.split("::").pop()}`).sort(), [
            "update chat-replica-0-process",
            "update chat-replica-1-process",
            "update chat-replica-2-process",
        ]);
        const since = (await onHost("gw", "date '+%Y-%m-%d %H:%M:%S'")).trim();
        const result = await whileStreaming(3, () => project.up());
        assertNothingLost(result);
        console.log(`      rolling update: ${result.answers.length} requests and ${result.streams.length} long streams, 0 failed`);

        // One at a time: each replica leaves, is out, and is back before the next one leaves.
        const log = await rolloutLog(since);
        const events = log.map((line) => /chat: (chat replica \d) (leaves|is out|is back)/.exec(line)).filter((m) => m !== null);
        assert.strictEqual(events.length, 9, log.join("\n"));
        for (let i = 0; i < 9; i += 3) {
            const [leave, out, back] = events.slice(i, i + 3);
            assert.deepStrictEqual([leave[2], out[2], back[2]], ["leaves", "is out", "is back"], log.join("\n"));
            assert.ok(leave[1] === out[1] && out[1] === back[1], log.join("\n"));
        }
        assert.strictEqual(new Set(events.map((e) => e[1])).size, 3, "every replica restarted");
        // Every replica runs the new config: answers of 2 tokens.
        for (let i = 0; i < 6; i++) {
            const answer = await chat({ tokens: undefined });
            assert.strictEqual(JSON.parse(answer.body).usage.completion_tokens, 2, answer.body);
        }
    });

    it("a change whose replica never turns healthy stops the roll at that replica with a clear error; the others keep the old config", async () => {
        project.setConfig(config({ FAKE_WORKER_COMPLETION_TOKENS: "2", FAKE_WORKER_FAIL_HEALTH: "1" }));
        const failed = await project.up().then(
            () => undefined,
            (err: Error) => err.message,
        );
        assert.ok(failed, "the up failed");
        assert.match(failed, /did not turn healthy within 30 s after its restart and is out of service/);
        assert.match(failed, /the rolling update of service chat stopped at chat replica \d/);
        // One replica is out; the other two serve the old config.
        const listed = await workers();
        assert.strictEqual(listed.filter((w) => w.is_healthy).length, 2, JSON.stringify(listed));
        for (let i = 0; i < 4; i++) {
            const answer = await chat();
            assert.strictEqual(answer.status, 200, answer.body);
        }
        // Fixed config: the next up rolls again and all three serve.
        project.setConfig(config({ FAKE_WORKER_COMPLETION_TOKENS: "3" }));
        await project.up();
        assert.strictEqual((await workers()).filter((w) => w.is_healthy).length, 3);
        await project.run(["preview", "--expect-no-changes"]);
    });

    it("destroy", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
    });
});
