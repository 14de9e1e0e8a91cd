// The RouterWorker provider with the REAL router (smg) in PD mode and fake prefill/decode servers on
// loopback: each registers with its role, a request reaches one of each (the decode names the prefill it
// reached at the bootstrap host and port), and the mistakes the router accepts are the resource's errors.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { sglangWorkerProvider, type SglangWorkerInputs } from "../../components/routers/sglang/worker";
import { startFakeWorker, type FakeWorkerProc } from "../helpers/fake-workers";
import { startRealRouter, type RealRouter } from "../helpers/real-router";

const provider = sglangWorkerProvider as Required<pulumi.dynamic.ResourceProvider>;

interface Listed {
    url: string;
    worker_type: string;
    bootstrap_port?: number | null;
    status?: string;
}

describe("RouterWorker provider with the real router in PD mode (smg 1.13.0)", function () {
    this.timeout(120000);
    let router: RealRouter;
    let prefill: FakeWorkerProc;
    let decode: FakeWorkerProc;
    let plain: FakeWorkerProc;
    let bootstrapPort: number;

    before(async () => {
        [router, prefill, decode, plain] = await Promise.all([
            startRealRouter({
                version: "1.13.0",
                policy: "round_robin",
                args: [
                    "--pd-disaggregation",
                    "--worker-startup-timeout-secs",
                    "5",
                    "--health-check-interval-secs",
                    "1",
                    "--worker-startup-check-interval",
                    "1",
                ],
            }),
            startFakeWorker({ name: "prefill-0", args: ["--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", "0"] }),
            startFakeWorker({ name: "decode-0", args: ["--disaggregation-mode", "decode"] }),
            startFakeWorker({ name: "no-role" }),
        ]);
        bootstrapPort = ((await (await fetch(`${prefill.url}/server_info`)).json()) as { disaggregation_bootstrap_port: number }).disaggregation_bootstrap_port;
    });
    after(async () => Promise.all([prefill?.stop(), decode?.stop(), plain?.stop(), router?.stop()]));

    const inputsFor = (workerUrl: string, workerType: SglangWorkerInputs["workerType"], extra: Partial<SglangWorkerInputs> = {}): SglangWorkerInputs => ({
        adminBaseUrl: router.url,
        routerPort: router.port,
        workerUrl,
        workerType,
        workersDir: "/unused",
        readinessTimeoutSeconds: 20,
        pollIntervalMs: 100,
        ...extra,
    });
    // A removed worker stays listed as draining for ~5 s (smg) and takes no new requests: not counted.
    const listed = async () => ((await (await fetch(`${router.url}/workers`)).json()) as { workers: Listed[] }).workers.filter((w) => w.status !== "draining");
    const chat = async (stream: boolean) => {
        const res = await fetch(`${router.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream }),
        });
        return { status: res.status, decode: res.headers.get("x-fake-worker"), prefill: res.headers.get("x-fake-prefill"), text: await res.text() };
    };

    it("registers a prefill (with its bootstrap port) and a decode; plain and streamed chat reach one of each", async () => {
        await provider.create(inputsFor(prefill.url, "prefill", { bootstrapPort }));
        await provider.create(inputsFor(decode.url, "decode"));
        const workers = (await listed()).map((w) => [w.worker_type, w.url, w.bootstrap_port ?? null]).sort();
        assert.deepStrictEqual(workers, [
            ["decode", decode.url, null],
            ["prefill", prefill.url, bootstrapPort],
        ]);
        for (const stream of [false, true]) {
            const answer = await chat(stream);
            assert.strictEqual(answer.status, 200, answer.text);
            assert.deepStrictEqual([answer.decode, answer.prefill], ["decode-0", "prefill-0"], `stream=${stream}`);
            if (stream) {
                assert.ok(answer.text.trimEnd().endsWith("data: [DONE]"), answer.text);
                assert.match(answer.text, /"prefill":"prefill-0"/);
            }
        }
    });

    it("a server of the other role, or of none, is refused with a clear error and left unregistered", async () => {
        await assert.rejects(provider.create(inputsFor(decode.url.replace("127.0.0.1", "localhost"), "prefill", { bootstrapPort })), (err: Error) => {
            assert.match(err.message, /reports disaggregation_mode 'decode', and it is registered as prefill: start it with `--disaggregation-mode prefill`/);
            return true;
        });
        await assert.rejects(
            provider.create(inputsFor(plain.url, "decode")),
            /reports no disaggregation mode \(a server without a role\), and it is registered as decode/,
        );
        // Removal drains for ~5 s in smg; the wrong registrations must be gone for good.
        for (let i = 0; i < 80 && (await listed()).length !== 2; i++) {
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepStrictEqual((await listed()).map((w) => w.worker_type).sort(), ["decode", "prefill"]);
        assert.strictEqual((await chat(false)).status, 200, "the good pair still serves");
    });

    it("a prefill without its bootstrap port is refused before the router sees it (the router would register it, then hand out null)", async () => {
        await assert.rejects(provider.create(inputsFor(`${prefill.url}/`, "prefill")), /a prefill worker needs its bootstrapPort .* "bootstrap_port": null/);
        assert.strictEqual((await listed()).length, 2);
    });

    it("delete removes each role's worker; the router then answers 503 naming the missing role", async () => {
        const decodeOuts = { ...inputsFor(decode.url, "decode"), routerWorkerId: "" };
        await provider.delete(decode.url, decodeOuts);
        assert.deepStrictEqual(
            (await listed()).map((w) => w.worker_type),
            ["prefill"],
        );
        const answer = await chat(false);
        assert.strictEqual(answer.status, 503);
        assert.match(answer.text, /No (available )?decode workers/);
    });
});
