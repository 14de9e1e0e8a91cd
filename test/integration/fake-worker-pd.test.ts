/*
 * The fake worker's PD (prefill/decode disaggregation) mode behind the REAL router smg 1.13.0 --pd-disaggregation:
 * two prefill fakes and one decode fake on loopback, registered with POST /workers.
 *
 *   bash scripts/setup/router.sh     # once; builds the router venvs
 *   npx mocha test/integration/fake-worker-pd.test.ts
 *
 * Facts about the router in PD mode: docs/router-smg-1.md ("PD mode").
 */
import * as assert from "node:assert/strict";
import { FakeWorkerProc, startFakeWorker } from "../helpers/fake-workers";
import { freePort } from "../helpers/ports";
import { RealRouter, startRealRouter } from "../helpers/real-router";
import type { FakeWorkerState } from "../fixtures/fake-worker";

const VERSION = "1.13.0";
const JSON_HEADERS = { "Content-Type": "application/json" };
const ROUTER_ARGS = ["--pd-disaggregation", "--worker-startup-check-interval", "1"];

interface WorkerInfo {
    id: string;
    url: string;
    worker_type: string;
    bootstrap_port?: number | null;
    status: string;
    is_healthy: boolean;
    labels: Record<string, string>;
}

interface Answer {
    status: number;
    headers: Headers;
    /** the JSON body, or for SSE the JSON chunks (without [DONE]) */
    body: Record<string, unknown>;
    chunks: Record<string, unknown>[];
    text: string;
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

async function listWorkers(router: RealRouter): Promise<{ workers: WorkerInfo[]; stats: Record<string, number> }> {
    const res = await fetch(`${router.url}/workers`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, `GET /workers: ${res.status}`);
    return (await res.json()) as { workers: WorkerInfo[]; stats: Record<string, number> };
}

async function register(router: RealRouter, body: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${router.url}/workers`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    assert.equal(res.status, 202, `POST /workers ${JSON.stringify(body)}: ${text}`);
    return (JSON.parse(text) as { worker_id: string }).worker_id;
}

async function waitReady(router: RealRouter, n: number): Promise<WorkerInfo[]> {
    return waitFor(`${n} workers ready in GET /workers`, 20_000, async () => {
        const { workers } = await listWorkers(router);
        return workers.length === n && workers.every((w) => w.status === "ready" && w.is_healthy) ? workers : undefined;
    });
}

async function fakeState(w: FakeWorkerProc): Promise<FakeWorkerState> {
    const res = await fetch(`${w.url}/_fake/state`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as FakeWorkerState;
}

async function setFakeState(w: FakeWorkerProc, patch: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${w.url}/_fake/state`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(patch), signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
}

async function post(router: RealRouter, path: string, body: Record<string, unknown>): Promise<Answer> {
    const res = await fetch(`${router.url}${path}`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    const answer: Answer = { status: res.status, headers: res.headers, body: {}, chunks: [], text };
    if (/^text\/event-stream/.test(res.headers.get("content-type") ?? "")) {
        const events = text.split("\n\n").filter((e) => e.trim() !== "");
        if (res.status === 200) {
            assert.ok(
                events.every((e) => e.startsWith("data: ")),
                text,
            );
            assert.equal(events[events.length - 1], "data: [DONE]", text);
            answer.chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)) as Record<string, unknown>);
        }
    } else {
        try {
            answer.body = JSON.parse(text) as Record<string, unknown>;
        } catch {
            /* not JSON: left to the test */
        }
    }
    return answer;
}

const chat = (stream: boolean): Record<string, unknown> => ({
    model: "fake-model",
    messages: [{ role: "user", content: "who are you?" }],
    max_tokens: 4,
    stream,
});

describe(`fake-worker PD mode behind the real router smg ${VERSION} (--pd-disaggregation)`, function () {
    this.timeout(120_000);
    let prefills: FakeWorkerProc[] = [];
    let decode: FakeWorkerProc | undefined;
    /** prefill name -> its bootstrap server port (each prefill picks a free one: --disaggregation-bootstrap-port 0) */
    const bootstrapPorts = new Map<string, number>();

    before(async () => {
        const started = await Promise.allSettled([
            ...[0, 1].map((i) => startFakeWorker({ name: `prefill-${i}`, args: ["--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", "0"] })),
            startFakeWorker({ name: "decode-0", args: ["--disaggregation-mode", "decode"] }),
        ]);
        const ok = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        prefills = ok.filter((w) => w.name.startsWith("prefill-"));
        decode = ok.find((w) => w.name === "decode-0");
        const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed !== undefined) throw failed.reason;
        for (const p of prefills) {
            const info = (await (await fetch(`${p.url}/server_info`)).json()) as Record<string, unknown>;
            assert.equal(info.disaggregation_mode, "prefill");
            assert.equal(typeof info.disaggregation_bootstrap_port, "number");
            const ready = p.logs().match(/ready on \S+ \(.*, prefill, bootstrap port (\d+)\)/);
            assert.ok(ready !== null, p.logs());
            assert.equal(Number(ready[1]), info.disaggregation_bootstrap_port, "the ready line names the bootstrap port");
            bootstrapPorts.set(p.name, info.disaggregation_bootstrap_port as number);
        }
    });

    after(async () => {
        await Promise.all([...prefills, ...(decode ? [decode] : [])].map((w) => w.stop()));
    });

    describe("two prefills and one decode", () => {
        let router: RealRouter | undefined;

        before(async () => {
            router = await startRealRouter({ version: VERSION, policy: "round_robin", args: ROUTER_ARGS });
            for (const p of prefills) await register(router, { url: p.url, worker_type: "prefill", bootstrap_port: bootstrapPorts.get(p.name) });
            await register(router, { url: (decode as FakeWorkerProc).url, worker_type: "decode" });
            await waitReady(router, 3);
        });

        after(async () => {
            await Promise.all([...prefills].map((p) => setFakeState(p, { failAfter: null }).catch(() => undefined)));
            await router?.stop();
        });

        it("GET /workers lists each role with its worker_type, bootstrap_port and labels.disaggregation_mode", async () => {
            const { workers, stats } = await listWorkers(router as RealRouter);
            assert.deepEqual(stats, { prefill_count: 2, decode_count: 1, regular_count: 0 });
            for (const p of prefills) {
                const w = workers.find((x) => x.url === p.url);
                assert.ok(w !== undefined, `${p.url} listed`);
                assert.equal(w.worker_type, "prefill");
                assert.equal(w.bootstrap_port, bootstrapPorts.get(p.name));
                assert.equal(w.labels.disaggregation_mode, "prefill");
                // the router TCP-connects to a prefill's bootstrap port at registration (no HTTP request)
                const st = await fakeState(p);
                assert.ok((st.bootstrapConnections ?? 0) >= 1, `bootstrap connections of ${p.name}: ${st.bootstrapConnections}`);
                assert.equal(st.prefillRequests, 0);
            }
            const d = workers.find((x) => x.url === decode?.url);
            assert.ok(d !== undefined, "decode listed");
            assert.equal(d.worker_type, "decode");
            assert.equal(d.bootstrap_port ?? null, null);
            assert.equal(d.labels.disaggregation_mode, "decode");
        });

        it("a chat, a streamed chat and /generate each reach one prefill and the decode, which names the prefill it reached", async () => {
            const r = router as RealRouter;
            const dec = decode as FakeWorkerProc;
            const prefillNames = prefills.map((p) => p.name);
            const seen = new Set<string>();
            const cases: { what: string; path: string; body: Record<string, unknown>; stream: boolean }[] = [
                { what: "chat", path: "/v1/chat/completions", body: chat(false), stream: false },
                { what: "streamed chat", path: "/v1/chat/completions", body: chat(true), stream: true },
                { what: "/generate", path: "/generate", body: { text: "who are you?", sampling_params: { max_new_tokens: 4 } }, stream: false },
                { what: "chat again", path: "/v1/chat/completions", body: chat(false), stream: false },
            ];
            for (const c of cases) {
                const a = await post(r, c.path, c.body);
                assert.equal(a.status, 200, `${c.what}: ${a.text}`);
                assert.equal(a.headers.get("x-fake-worker"), dec.name, `${c.what}: the client gets the decode's answer`);
                assert.equal(a.headers.get("x-smg-routed-worker-id"), dec.url);
                const parts = c.stream ? a.chunks : [a.body];
                assert.ok(parts.length > 0, a.text);
                for (const part of parts) assert.equal(part.worker, dec.name, `${c.what}: ${JSON.stringify(part)}`);
                const prefill = parts[0].prefill as string;
                assert.ok(prefillNames.includes(prefill), `${c.what}: "prefill" ${JSON.stringify(prefill)} is one of ${prefillNames}`);
                for (const part of parts) assert.equal(part.prefill, prefill, `${c.what}: every chunk names the same prefill`);
                assert.equal(a.headers.get("x-fake-prefill"), prefill);
                seen.add(prefill);

                // pairing: the router gave the prefill and the decode the same room, and the decode asked THAT prefill about it
                const pre = prefills.find((p) => p.name === prefill) as FakeWorkerProc;
                const [ps, ds] = await Promise.all([fakeState(pre), fakeState(dec)]);
                const room = ds.lastBootstrap?.room;
                assert.match(room ?? "", /^\d+$/, `${c.what}: decode state ${JSON.stringify(ds)}`);
                assert.deepEqual(ds.lastBootstrap, { host: "127.0.0.1", port: bootstrapPorts.get(prefill), room }, "what the decode got");
                assert.deepEqual(ps.lastBootstrap, { host: "127.0.0.1", port: bootstrapPorts.get(prefill), room }, "what the prefill got");
                assert.equal(ps.lastRouteRoom, room, `${c.what}: the decode's GET /route reached ${prefill} with the room`);
                assert.equal(ds.lastPrefill, prefill);
                // the prefill got the same path; a streamed request is streamed to the prefill too
                const line = pre
                    .logs()
                    .split("\n")
                    .find((l) => l.endsWith(` room=${room}`));
                assert.ok(line !== undefined, `${prefill} logged room ${room}:\n${pre.logs()}`);
                assert.match(line, new RegExp(` POST ${c.path} 200 \\d+ms${c.stream ? " stream" : ""} room=`), line);
                assert.match(dec.logs(), new RegExp(` POST ${c.path} 200 \\d+ms${c.stream ? " stream" : ""} room=${room} prefill=${prefill}$`, "m"));
            }
            assert.deepEqual([...seen].sort(), prefillNames.sort(), "round_robin uses both prefills");
        });

        it("a failing prefill: the router answers 500 prefill_internal_error (after its retries)", async () => {
            const r = router as RealRouter;
            await Promise.all(prefills.map((p) => setFakeState(p, { failAfter: 0, resetCounters: true })));
            const a = await post(r, "/v1/chat/completions", chat(false));
            assert.equal(a.status, 500, a.text);
            assert.equal(a.headers.get("x-smg-error-code"), "prefill_internal_error");
            const err = (a.body as { error: { code: string; message: string } }).error;
            assert.equal(err.code, "prefill_internal_error");
            assert.match(err.message, /^Prefill server error \(500 Internal Server Error\): .*failing after 0 requests/);
            const states = await Promise.all(prefills.map(fakeState));
            const attempts = states.reduce((n, s) => n + (s.prefillRequests ?? 0), 0);
            assert.equal(attempts, 5, `prefill attempts (the router's default retries): ${states.map((s) => s.prefillRequests)}`);
            await Promise.all(prefills.map((p) => setFakeState(p, { failAfter: null })));
        });
    });

    describe("the only prefill registered with a bootstrap port nothing listens on", () => {
        let router: RealRouter | undefined;
        let wrongPort = 0;

        before(async () => {
            wrongPort = await freePort();
            router = await startRealRouter({ version: VERSION, policy: "round_robin", args: ROUTER_ARGS });
            await register(router, { url: prefills[0].url, worker_type: "prefill", bootstrap_port: wrongPort });
            await register(router, { url: (decode as FakeWorkerProc).url, worker_type: "decode" });
        });

        after(async () => {
            await router?.stop();
        });

        it("registers anyway (the router only warns), and the decode's 502 naming host:port comes through the router", async () => {
            const r = router as RealRouter;
            const workers = await waitReady(r, 2);
            assert.equal(workers.find((w) => w.worker_type === "prefill")?.bootstrap_port, wrongPort);
            assert.match(r.logs(), new RegExp(`Bootstrap port did not accept a connection at registration.*bootstrap_port=${wrongPort}`));

            const before = (await fakeState(decode as FakeWorkerProc)).bootstrapFailures ?? 0;
            const a = await post(r, "/v1/chat/completions", chat(false));
            assert.equal(a.status, 502, a.text);
            assert.equal(a.headers.get("x-smg-error-code"), "decode_bad_gateway");
            const err = (a.body as { error: { code: string; message: string } }).error;
            assert.equal(err.code, "decode_bad_gateway");
            assert.equal(err.message, `decode decode-0 could not reach the prefill's bootstrap server at 127.0.0.1:${wrongPort}: ECONNREFUSED`);
            const after = (await fakeState(decode as FakeWorkerProc)).bootstrapFailures ?? 0;
            assert.equal(after - before, 5, "the router retried the 502 (5 attempts)");
        });
    });
});
