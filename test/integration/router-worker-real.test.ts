// The RouterWorker provider against the REAL sglang-router 0.3.2 with fake workers on loopback:
// register, wait healthy, route plain and streamed chat to both, read (refresh), delete; and
// a registration that cannot become healthy is removed again with a clear error.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { sglangWorkerProvider, type SglangWorkerInputs, type SglangWorkerOutputs } from "../../components/routers/sglang/worker";
import { startFakeWorkers, type FakeWorkerFleet } from "../helpers/fake-workers";
import { startRealRouter, type RealRouter } from "../helpers/real-router";
import { freePort } from "../helpers/ports";

const provider = sglangWorkerProvider as Required<pulumi.dynamic.ResourceProvider>;

async function chat(router: RealRouter, stream: boolean): Promise<{ status: number; worker: string | null; text: string }> {
    const res = await fetch(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream }),
    });
    return { status: res.status, worker: res.headers.get("x-fake-worker"), text: await res.text() };
}

async function listed(router: RealRouter): Promise<{ id: string; url: string; is_healthy: boolean }[]> {
    const res = await fetch(`${router.url}/workers`);
    return ((await res.json()) as { workers: { id: string; url: string; is_healthy: boolean }[] }).workers;
}

describe("RouterWorker provider with the real sglang-router 0.3.2", function () {
    this.timeout(120000);
    let router: RealRouter;
    let fleet: FakeWorkerFleet;

    before(async () => {
        [router, fleet] = await Promise.all([
            startRealRouter({ policy: "round_robin", args: ["--worker-startup-timeout-secs", "3", "--health-check-interval-secs", "1"] }),
            startFakeWorkers(2, { namePrefix: "replica" }),
        ]);
    });
    after(async () => Promise.all([fleet?.stop(), router?.stop()]));

    const inputsFor = (workerUrl: string, readinessTimeoutSeconds = 30): SglangWorkerInputs => ({
        adminBaseUrl: router.url,
        routerPort: router.port,
        workerUrl,
        workerType: "regular",
        workersDir: "/unused",
        readinessTimeoutSeconds,
        pollIntervalMs: 100,
    });

    it("registers two workers, both serve plain and streamed chat, refresh sees them, delete removes them", async () => {
        const created = [];
        for (const worker of fleet.workers) {
            const result = await provider.create(inputsFor(worker.url));
            assert.strictEqual(result.id, worker.url);
            created.push(result);
        }
        const workers = await listed(router);
        assert.deepStrictEqual(workers.map((w) => w.url).sort(), fleet.workers.map((w) => w.url).sort());
        assert.ok(workers.every((w) => w.is_healthy));
        assert.deepStrictEqual(created.map((c) => c.outs.routerWorkerId).sort(), workers.map((w) => w.id).sort(), "ids are the router's own");

        const names = fleet.workers.map((w) => w.name).sort();
        const plain = [await chat(router, false), await chat(router, false)];
        assert.ok(plain.every((a) => a.status === 200), JSON.stringify(plain));
        assert.deepStrictEqual(plain.map((a) => a.worker).sort(), names);
        const streamed = [await chat(router, true), await chat(router, true)];
        assert.ok(streamed.every((a) => a.status === 200 && a.text.trimEnd().endsWith("data: [DONE]")), JSON.stringify(streamed));
        assert.deepStrictEqual(streamed.map((a) => a.worker).sort(), names);

        for (const c of created) {
            const read = await provider.read(c.id, c.outs);
            assert.strictEqual(read.id, c.id);
        }
        for (const c of created) {
            await provider.delete(c.id, c.outs as SglangWorkerOutputs);
        }
        assert.deepStrictEqual(await listed(router), []);
        assert.strictEqual((await chat(router, false)).status, 503, "no workers left: the router answers 503");
        const gone = await provider.read(created[0].id, created[0].outs);
        assert.ok(!gone.id, "a removed worker reads as gone");
    });

    it("a worker URL that never answers: create fails naming it, and the router keeps nothing", async () => {
        const deadUrl = `http://127.0.0.1:${await freePort()}`;
        await assert.rejects(provider.create(inputsFor(deadUrl, 5)), (err: Error) => {
            assert.match(err.message, new RegExp(deadUrl.replace(/\./g, "\\.")));
            assert.match(err.message, /removed again/);
            return true;
        });
        assert.deepStrictEqual((await listed(router)).filter((w) => w.url === deadUrl), []);
    });
});
