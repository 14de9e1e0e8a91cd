// The RouterWorker provider against the REAL router, each generation (smg 1.x, sglang-router 0.3.x),
// with fake workers on loopback: register, wait healthy, route plain and streamed chat to both, read
// (refresh), delete; a registration that cannot become healthy is removed again with a clear error;
// a re-add right after a delete, a duplicate add and a second delete all work.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { sglangWorkerProvider, type SglangWorkerInputs, type SglangWorkerOutputs } from "../../components/routers/sglang/worker";
import { startFakeWorkers, type FakeWorkerFleet } from "../helpers/fake-workers";
import { ROUTER_VERSIONS, startRealRouter, type RealRouter } from "../helpers/real-router";
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

for (const version of ROUTER_VERSIONS)
    describe(`RouterWorker provider with the real router ${version}`, function () {
        this.timeout(120000);
        let router: RealRouter;
        let fleet: FakeWorkerFleet;
        const smg = version.startsWith("1.");

        before(async () => {
            [router, fleet] = await Promise.all([
                startRealRouter({
                    version,
                    policy: "round_robin",
                    args: ["--worker-startup-timeout-secs", "3", "--health-check-interval-secs", "1", ...(smg ? ["--worker-startup-check-interval", "1"] : [])],
                }),
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
            assert.ok(
                plain.every((a) => a.status === 200),
                JSON.stringify(plain),
            );
            assert.deepStrictEqual(plain.map((a) => a.worker).sort(), names);
            const streamed = [await chat(router, true), await chat(router, true)];
            assert.ok(
                streamed.every((a) => a.status === 200 && a.text.trimEnd().endsWith("data: [DONE]")),
                JSON.stringify(streamed),
            );
            assert.deepStrictEqual(streamed.map((a) => a.worker).sort(), names);

            for (const c of created) {
                const read = await provider.read(c.id, c.outs);
                assert.strictEqual(read.id, c.id);
            }
            for (const c of created) {
                await provider.delete(c.id, c.outs as SglangWorkerOutputs);
            }
            // smg lists removed workers as draining for ~5 s; they take no requests.
            assert.deepStrictEqual(
                (await listed(router)).filter((w) => (w as { status?: string }).status !== "draining"),
                [],
            );
            const empty = await chat(router, false);
            // No worker: 0.3.x answers 503; smg 503 while the removed ones drain, then 404 model_not_found
            // (the gateway turns each into its own 503).
            assert.ok(smg ? [404, 503].includes(empty.status) : empty.status === 503, `${empty.status} ${empty.text}`);
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
            assert.deepStrictEqual(
                (await listed(router)).filter((w) => w.url === deadUrl),
                [],
            );
        });

        it("a re-add right after a delete registers again and serves, well within the readiness timeout", async () => {
            const worker = fleet.workers[0];
            const first = await provider.create(inputsFor(worker.url));
            await provider.delete(first.id, first.outs as SglangWorkerOutputs);
            const started = Date.now();
            const again = await provider.create(inputsFor(worker.url, 30));
            assert.ok(Date.now() - started < 15000, `re-add took ${Date.now() - started} ms`);
            const mine = (await listed(router)).filter((w) => w.url === worker.url && (w as { status?: string }).status !== "draining");
            assert.deepStrictEqual(
                mine.map((w) => w.id),
                [again.outs.routerWorkerId],
            );
            assert.strictEqual((await chat(router, false)).status, 200);
            await provider.delete(again.id, again.outs as SglangWorkerOutputs);
        });

        it("a duplicate add adopts the registration; deleting twice is fine", async () => {
            const worker = fleet.workers[1];
            const first = await provider.create(inputsFor(worker.url));
            const second = await provider.create(inputsFor(worker.url));
            assert.strictEqual(second.outs.routerWorkerId, first.outs.routerWorkerId);
            assert.strictEqual((await listed(router)).filter((w) => w.url === worker.url).length, 1);
            await provider.delete(first.id, first.outs as SglangWorkerOutputs);
            await provider.delete(first.id, first.outs as SglangWorkerOutputs);
        });
    });
