/*
 * Smoke test: the REAL router, each generation (smg 1.x, sglang-router 0.3.x), in front of two fake workers.
 *
 *   bash scripts/setup/router.sh     # once; builds $SGLANG_GATEWAY_CACHE/router-venv
 *   npx mocha -r ts-node/register/transpile-only --timeout 120000 test/integration/real-router.test.ts
 */
import * as assert from "node:assert/strict";
import { FakeWorkerFleet, startFakeWorkers } from "../helpers/fake-workers";
import { RealRouter, ROUTER_VERSIONS, startRealRouter } from "../helpers/real-router";

interface WorkerInfo {
    id: string;
    url: string;
    is_healthy: boolean;
    worker_type: string;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

async function listWorkers(router: RealRouter): Promise<WorkerInfo[]> {
    const res = await fetch(`${router.url}/workers`);
    assert.equal(res.status, 200, `GET /workers: ${res.status}`);
    const body = (await res.json()) as { workers: WorkerInfo[]; total: number };
    assert.equal(body.total, body.workers.length);
    return body.workers;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
        try {
            const v = await probe();
            if (v !== undefined) return v;
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${last}` : ""}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

function chatBody(stream: boolean): string {
    return JSON.stringify({
        model: "fake-model",
        messages: [{ role: "user", content: "who are you?" }],
        max_tokens: 4,
        stream,
    });
}

for (const version of ROUTER_VERSIONS)
    describe(`real router ${version} with two fake workers (round_robin)`, function () {
        this.timeout(120_000);
        let router: RealRouter | undefined;
        let fleet: FakeWorkerFleet | undefined;
        const smg = version.startsWith("1.");
        // No worker: 0.3.x answers 503 no_available_workers, smg 404 model_not_found (docs/router-smg-1.md).
        const noWorker = smg ? { status: 404, code: "model_not_found" } : { status: 503, code: "no_available_workers" };

        before(async () => {
            [router, fleet] = await Promise.all([startRealRouter({ version, policy: "round_robin" }), startFakeWorkers(2, { namePrefix: "replica" })]);
        });

        after(async () => {
            await Promise.all([fleet?.stop(), router?.stop()]);
        });

        it("registers both workers, routes plain and streamed chat to both, and deletes them", async () => {
            const r = router as RealRouter;
            const workers = (fleet as FakeWorkerFleet).workers;
            const names = workers.map((w) => w.name).sort();

            // no workers yet: the generation's own "no worker" answer
            const none = await fetch(`${r.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: chatBody(false) });
            assert.equal(none.status, noWorker.status);
            assert.equal(((await none.json()) as { error: { code: string } }).error.code, noWorker.code);

            // register: 202 + worker_id + Location
            const ids = new Map<string, string>();
            for (const w of workers) {
                const res = await fetch(`${r.url}/workers`, {
                    method: "POST",
                    headers: JSON_HEADERS,
                    body: JSON.stringify({ url: w.url, worker_type: "regular" }),
                });
                const body = (await res.json()) as { status: string; worker_id: string; url: string; location: string };
                assert.equal(res.status, 202, JSON.stringify(body));
                assert.equal(body.status, "accepted");
                assert.equal(body.url, w.url);
                assert.match(body.worker_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/); // UUIDv4 (0.3.x), v7 (smg)
                assert.equal(res.headers.get("location"), `/workers/${body.worker_id}`);
                ids.set(w.url, body.worker_id);
            }

            // both listed healthy, with the ids the POSTs returned
            const listed = await waitFor("both workers healthy in GET /workers", 20_000, async () => {
                const ws = await listWorkers(r);
                return ws.length === 2 && ws.every((w) => w.is_healthy) ? ws : undefined;
            });
            for (const w of listed) {
                assert.equal(w.id, ids.get(w.url), `id of ${w.url}`);
                assert.equal(w.worker_type, "regular");
            }

            // plain chat completions: header, body field and content all name the replica
            const plainSeen: string[] = [];
            for (let i = 0; i < 2; i++) {
                const res = await fetch(`${r.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: chatBody(false) });
                assert.equal(res.status, 200);
                const header = res.headers.get("x-fake-worker");
                const body = (await res.json()) as { worker: string; choices: { message: { content: string } }[] };
                assert.equal(body.worker, header);
                assert.ok(body.choices[0].message.content.startsWith(`${header} `), body.choices[0].message.content);
                plainSeen.push(header as string);
            }
            assert.deepEqual(plainSeen.sort(), names, "round_robin sends two plain requests to both replicas");

            // streamed chat completions (SSE)
            const streamSeen: string[] = [];
            for (let i = 0; i < 2; i++) {
                const res = await fetch(`${r.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: chatBody(true) });
                assert.equal(res.status, 200);
                assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
                const text = await res.text();
                const events = text.split("\n\n").filter((e) => e.trim() !== "");
                assert.ok(
                    events.every((e) => e.startsWith("data: ")),
                    text,
                );
                assert.equal(events[events.length - 1], "data: [DONE]");
                const chunks = events.slice(0, -1).map(
                    (e) =>
                        JSON.parse(e.slice("data: ".length)) as {
                            object: string;
                            worker: string;
                            choices: { delta: { content?: string } }[];
                        },
                );
                assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
                const worker = chunks[0].worker;
                assert.equal(res.headers.get("x-fake-worker"), worker);
                const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
                assert.ok(content.startsWith(worker), content);
                streamSeen.push(worker);
            }
            assert.deepEqual(streamSeen.sort(), names, "round_robin sends two streamed requests to both replicas");

            // delete both: 202, then gone
            for (const [url, id] of ids) {
                const res = await fetch(`${r.url}/workers/${id}`, { method: "DELETE" });
                const body = (await res.json()) as { status: string; worker_id: string };
                assert.equal(res.status, 202, `DELETE ${url}: ${JSON.stringify(body)}`);
                assert.equal(body.worker_id, id);
            }
            // (smg drains a removed worker for ~5 s before it is gone)
            await waitFor("GET /workers to be empty", 20_000, async () => ((await listWorkers(r)).length === 0 ? true : undefined));
            const gone = await fetch(`${r.url}/workers/${ids.values().next().value}`);
            assert.equal(gone.status, 404);

            // and back to the "no worker" answer
            const after = await fetch(`${r.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: chatBody(false) });
            assert.equal(after.status, noWorker.status);
        });
    });
