// The rolling-restart scripts (run on the gateway around a replica's restart) against the REAL smg router
// and fake workers on loopback: `before` takes the replica out and waits for its requests in flight,
// `after` puts it back; a replica that never turns healthy stops the roll for the replicas still waiting.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { rolloutScripts } from "../../components/host-script/steps";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startFakeWorker, type FakeWorkerProc } from "../helpers/fake-workers";
import { startRealRouter, type RealRouter } from "../helpers/real-router";

describe("rolling restart scripts with the real router (smg 1.13.0) on loopback", function () {
    this.timeout(120000);
    let router: RealRouter;
    let workers: FakeWorkerProc[];
    const lockDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-rollout-")), "rollout-chat");

    before(async () => {
        [router, ...workers] = await Promise.all([
            startRealRouter({ version: "1.13.0", policy: "round_robin", args: ["--worker-startup-check-interval", "1", "--health-check-interval-secs", "1"] }),
            startFakeWorker({ name: "a", args: ["--tokens-per-second", "20"] }),
            startFakeWorker({ name: "b", args: ["--tokens-per-second", "20"] }),
        ]);
        for (const w of workers) {
            await fetch(`${router.url}/workers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: w.url }) });
        }
        await until(async () => (await listed()).filter((w) => w.is_healthy).length === 2);
    });
    after(async () => Promise.all([...(workers ?? []).map((w) => w.stop()), router?.stop()]));

    const listed = async () =>
        ((await (await fetch(`${router.url}/workers`)).json()) as { workers: { url: string; is_healthy: boolean; status?: string }[] }).workers.filter(
            (w) => w.status !== "draining",
        );
    async function until(check: () => Promise<boolean>, ms = 20000) {
        const end = Date.now() + ms;
        while (!(await check())) {
            if (Date.now() > end) throw new Error("timed out");
            await new Promise((r) => setTimeout(r, 200));
        }
    }
    const scripts = (worker: FakeWorkerProc, rolloutId: string, readinessTimeoutSeconds = 20) => {
        const label = `chat replica ${worker.name}`;
        const { leave, join } = sglangRouter.rolloutScripts({
            service: "chat",
            version: "1.13.0",
            routerPorts: [router.port],
            workerUrl: worker.url,
            label,
            readinessTimeoutSeconds,
        });
        return rolloutScripts({ service: "chat", label, lockDir, rolloutId, leave, join, readinessTimeoutSeconds });
    };
    const run = (script: string, args: string[] = []) => {
        const result = spawnSync("bash", ["-s", ...args], { input: script, encoding: "utf8", timeout: 90000 });
        return { code: result.status, stderr: result.stderr };
    };
    /** A 10 s stream through the router that landed on `name`; resolves when it ends. */
    async function streamOn(name: string): Promise<{ ended: Promise<number> }> {
        for (let i = 0; i < 10; i++) {
            const res = await fetch(`${router.url}/v1/chat/completions`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "x" }], max_tokens: 200, ignore_eos: true, stream: true }),
            });
            if (res.headers.get("x-fake-worker") === name) {
                return { ended: res.text().then((t) => (t.trimEnd().endsWith("data: [DONE]") ? Date.now() : -1)) };
            }
            void res.text();
        }
        throw new Error(`no stream landed on ${name}`);
    }

    it("before: the replica leaves the router only after its stream finished; after: it is back; the lock is free", async () => {
        const [a] = workers;
        const { before, after } = scripts(a, "change-1");
        const stream = await streamOn("a");
        const left = run(before);
        const leftAt = Date.now();
        assert.strictEqual(left.code, 0, left.stderr);
        const streamEnded = await stream.ended;
        assert.ok(streamEnded > 0, "the stream completed");
        assert.ok(leftAt >= streamEnded - 500, `before returned ${(streamEnded - leftAt) / 1000} s before the stream on the replica ended`);
        assert.deepStrictEqual(
            (await listed()).map((w) => w.url),
            [workers[1].url],
        );
        assert.ok(fs.existsSync(lockDir), "the lock is held during the restart");
        const back = run(after, ["applied"]);
        assert.strictEqual(back.code, 0, back.stderr);
        assert.deepStrictEqual((await listed()).map((w) => w.url).sort(), workers.map((w) => w.url).sort());
        assert.ok(!fs.existsSync(lockDir), "the lock is released");
    });

    it("a replica that never turns healthy stops the roll: the next replica of that change refuses, one of a new change goes", async () => {
        const [a, b] = workers;
        const failing = scripts(a, "change-2", 3);
        assert.strictEqual(run(failing.before).code, 0);
        await fetch(`${a.url}/_fake/state`, { method: "POST", body: JSON.stringify({ failHealth: true }) });
        const stuck = run(failing.after, ["applied"]);
        assert.strictEqual(stuck.code, 1);
        assert.match(stuck.stderr, /chat replica a did not turn healthy within 3 s after its restart and is out of service/);
        const next = run(scripts(b, "change-2").before);
        assert.strictEqual(next.code, 1);
        assert.match(next.stderr, /the rolling update of service chat stopped at chat replica a: .* chat replica b keeps its current config/);
        assert.deepStrictEqual(
            (await listed()).map((w) => w.url),
            [b.url],
            "b still serves",
        );
        // A new change (the config fixed) starts afresh, and the replica that failed comes back.
        await fetch(`${a.url}/_fake/state`, { method: "POST", body: JSON.stringify({ failHealth: false }) });
        const fixed = scripts(a, "change-3");
        assert.strictEqual(run(fixed.before).code, 0);
        assert.strictEqual(run(fixed.after, ["applied"]).code, 0);
        await until(async () => (await listed()).filter((w) => w.is_healthy).length === 2);
    });
});
