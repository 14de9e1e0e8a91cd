// End to end on real hosts: `kill -9` of a service's router under a request loop. With one router process
// (the default) systemd brings it back with its workers and the gap is measured; with `router.processes: 2`
// nginx fails over to the other and no request that had not started answering is lost.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { routerUnit, workers } from "../helpers/gateway-router";
import { chat, type Answer } from "../helpers/gateway-client";

const secondRouterUnit = "sglang-gateway-router2-chat.service";

/** Requests one after another for `ms` (every `streamEvery`-th streamed); at `atMs`, on a timer, `fault` runs. */
async function loop(ms: number, atMs: number, fault: () => Promise<unknown>, streamEvery = 0): Promise<{ answers: Answer[]; faultAt: number }> {
    const started = Date.now();
    const answers: Answer[] = [];
    let faultAt = 0;
    const timer = setTimeout(() => {
        faultAt = Date.now();
        void fault();
    }, atMs);
    try {
        while (Date.now() - started < ms && answers.length < 3000) {
            const stream = streamEvery > 0 && answers.length % streamEvery === 0;
            const answer = await chat({ stream }).catch((err: Error) => ({ status: 0, body: err.message }) as Answer);
            answers.push({ ...answer, seconds: (Date.now() - started) / 1000 });
            await new Promise((r) => setTimeout(r, 10));
        }
    } finally {
        clearTimeout(timer);
    }
    return { answers, faultAt: (faultAt - started) / 1000 };
}

const killRouter = (unit: string) => onHost("gw", `systemctl kill -s KILL ${unit}`);
const mainPid = async (unit: string) => (await onHost("gw", `systemctl show -p MainPID --value ${unit}`)).trim();

/** The workers a router process lists (by its port in its start script). */
async function workersOf(startScript: string): Promise<string[]> {
    const port = /--port (\d+)/.exec(await onHost("gw", `cat ${startScript}`))?.[1];
    const listed = JSON.parse(await onHost("gw", `curl -s 127.0.0.1:${port}/workers`)) as { workers: { url: string; is_healthy: boolean; status?: string }[] };
    return listed.workers
        .filter((w) => w.is_healthy && w.status !== "draining")
        .map((w) => w.url)
        .sort();
}

describe("e2e router crash on sandbox hosts (smg): kill -9 under a request loop", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-crash");
    let project: PulumiProject;
    const config = (processes?: 2) => {
        const raw = sandboxStack({ gateway: "e2e-crash", replicas: 2 });
        if (processes) Object.assign(raw.gateway.router as Record<string, unknown>, { processes });
        return raw;
    };
    beforeEach(() => (project = stack()));

    it("one router (the default): systemd restarts it with its workers; the gap is reported", async () => {
        project.setConfig(config());
        await project.up();
        const before = await mainPid(routerUnit);
        const { answers, faultAt } = await loop(15000, 3000, () => killRouter(routerUnit));
        const failed = answers.filter((a) => a.status !== 200);
        const firstFailure = failed[0]?.seconds ?? faultAt;
        const lastFailure = failed[failed.length - 1]?.seconds ?? faultAt;
        console.log(
            `      one router, kill -9 at ${faultAt.toFixed(1)} s: ${answers.length} requests, ${failed.length} failed ` +
                `(${[...new Set(failed.map((a) => a.status))].join(", ")}), from ${firstFailure.toFixed(1)} s to ${lastFailure.toFixed(1)} s`,
        );
        assert.notStrictEqual(await mainPid(routerUnit), before, "the router was killed and restarted");
        assert.strictEqual((await workers()).filter((w) => w.is_healthy).length, 2, "it came back with both workers");
        assert.strictEqual(answers[answers.length - 1].status, 200, "serving again");
    });

    it("router.processes 2: the second router joins with every worker, without restarting the first", async () => {
        const first = await mainPid(routerUnit);
        project.setConfig(config(2));
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        // The reconcile beside the routers gets the second's port (a restart of the reconcile alone).
        assert.deepStrictEqual(steps.sort(), [
            "create chat-router-2",
            "update chat-replica-0-worker",
            "update chat-replica-1-worker",
            "update chat-router-reconcile",
            "update chat-server",
        ]);
        await project.up();
        assert.strictEqual(await mainPid(routerUnit), first, "the first router kept running");
        const both = await Promise.all(["/etc/sglang-gateway/routers/chat/start.sh", "/etc/sglang-gateway/routers/chat/second/start.sh"].map(workersOf));
        assert.strictEqual(both[0].length, 2);
        assert.deepStrictEqual(both[1], both[0], "both routers hold every worker");
    });

    it("router.processes 2: kill -9 of either router under a plain request loop fails no request; the killed one comes back with all workers", async () => {
        for (const unit of [routerUnit, secondRouterUnit]) {
            const before = await mainPid(unit);
            const { answers, faultAt } = await loop(8000, 2000, () => killRouter(unit));
            const failed = answers.filter((a) => a.status !== 200);
            console.log(`      two routers, kill -9 ${unit} at ${faultAt.toFixed(1)} s: ${answers.length} plain requests, ${failed.length} failed`);
            assert.deepStrictEqual(failed, [], `failed requests: ${JSON.stringify(failed.slice(0, 3))}`);
            for (let i = 0; i < 40 && (await mainPid(unit)) === before; i++) await new Promise((r) => setTimeout(r, 250));
            assert.notStrictEqual(await mainPid(unit), before, `${unit} was restarted`);
            const script = unit === routerUnit ? "/etc/sglang-gateway/routers/chat/start.sh" : "/etc/sglang-gateway/routers/chat/second/start.sh";
            for (let i = 0; i < 60 && (await workersOf(script).catch(() => [])).length < 2; i++) await new Promise((r) => setTimeout(r, 500));
            assert.strictEqual((await workersOf(script)).length, 2, `${unit} came back with both workers`);
        }
    });

    it("router.processes 2 with streamed requests too: only a stream already answering through the killed router can be cut", async () => {
        const { answers } = await loop(8000, 2000, () => killRouter(routerUnit), 2);
        const failed = answers.filter((a) => a.status !== 200);
        console.log(`      two routers, half streamed: ${answers.length} requests, ${failed.length} failed (${failed.map((a) => a.status).join(", ")})`);
        assert.ok(failed.length <= 1, `${failed.length} failed`);
    });

    it("destroy removes both routers", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        const left = await onHost(
            "gw",
            "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ps -eo comm | grep -c smg::router || true",
        );
        assert.strictEqual(left.trim(), "0");
    });
});
