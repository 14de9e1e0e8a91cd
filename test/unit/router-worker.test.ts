// The RouterWorker provider's methods against an in-test server speaking the router's /workers API.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { bootstrapPortCheck, sglangWorkerProvider, type SglangWorkerInputs, type SglangWorkerOutputs } from "../../components/routers/sglang/worker";
import { AdminApi } from "../helpers/admin-api";
import { FakeSshd } from "../helpers/fake-sshd";
import { freePort } from "../helpers/ports";
import { testKey } from "../helpers/stack-configs";

const provider = sglangWorkerProvider as Required<pulumi.dynamic.ResourceProvider>;

function inputs(adminBaseUrl: string, overrides: Partial<SglangWorkerInputs> = {}): SglangWorkerInputs {
    return {
        adminBaseUrl,
        routerPort: 0,
        workerUrl: "http://127.0.0.1:20001",
        workerType: "regular",
        workersDir: "/unused-without-ssh",
        readinessTimeoutSeconds: 5,
        pollIntervalMs: 20,
        ...overrides,
    };
}

describe("RouterWorker provider (sglang, 0.3.x /workers API)", () => {
    let api: AdminApi;
    let base: string;

    afterEach(() => api.stop());

    it("create posts the worker once and returns when the router lists it healthy", async () => {
        api = new AdminApi({ healthyAfterPolls: 3 });
        base = await api.start();
        const result = await provider.create(inputs(base));
        assert.strictEqual(result.id, "http://127.0.0.1:20001");
        assert.strictEqual(api.calls.filter((c) => c === "POST /workers").length, 1);
        const [registered] = [...api.workers.values()];
        assert.strictEqual(result.outs.routerWorkerId, registered.id);
        assert.ok(api.calls.filter((c) => c === "GET /workers").length >= 3, "waited for health");
    });

    it("create adopts a worker the router already lists (a restarted router read it from disk)", async () => {
        api = new AdminApi();
        base = await api.start();
        await provider.create(inputs(base));
        api.calls.length = 0;
        await provider.create(inputs(base));
        assert.deepStrictEqual(
            api.calls.filter((c) => c.startsWith("POST")),
            [],
        );
    });

    it("create times out, removes the registration again, and names the URL and the router's last answer", async () => {
        api = new AdminApi({ healthyAfterPolls: Infinity });
        base = await api.start();
        await assert.rejects(provider.create(inputs(base, { readinessTimeoutSeconds: 1 })), (err: Error) => {
            assert.match(err.message, /http:\/\/127\.0\.0\.1:20001/);
            assert.match(err.message, /within 1 s/);
            assert.match(err.message, /"status":"processing"/);
            assert.match(err.message, /removed again/);
            return true;
        });
        assert.strictEqual(api.workers.size, 0, "the failed registration is cleaned up");
        assert.ok(api.calls.some((c) => c.startsWith("DELETE /workers/")));
    });

    it("create stops waiting as soon as the router's add job failed, and says why", async () => {
        api = new AdminApi({ healthyAfterPolls: Infinity, failJobs: true });
        base = await api.start();
        const started = Date.now();
        await assert.rejects(provider.create(inputs(base, { readinessTimeoutSeconds: 30 })), /registration job failed.*failed health check/);
        assert.ok(Date.now() - started < 5000, "did not wait for the whole timeout");
    });

    it("create fails with the router's answer when the POST is refused", async () => {
        api = new AdminApi({ refuseRegistration: true });
        base = await api.start();
        await assert.rejects(provider.create(inputs(base)), /POST \/workers for http:\/\/127\.0\.0\.1:20001 answered 503: .*overloaded/);
    });

    it("delete resolves the id by URL and deletes it; already gone is success", async () => {
        api = new AdminApi();
        base = await api.start();
        const created = await provider.create(inputs(base));
        const [worker] = [...api.workers.values()];
        await provider.delete(created.id, created.outs as SglangWorkerOutputs);
        assert.ok(api.calls.includes(`DELETE /workers/${worker.id}`));
        assert.strictEqual(api.workers.size, 0);
        api.calls.length = 0;
        await provider.delete(created.id, created.outs as SglangWorkerOutputs);
        assert.deepStrictEqual(
            api.calls.filter((c) => c.startsWith("DELETE")),
            [],
            "nothing to delete, no error",
        );
    });

    it("delete leaves other workers alone", async () => {
        api = new AdminApi();
        base = await api.start();
        const a = await provider.create(inputs(base, { workerUrl: "http://127.0.0.1:20001" }));
        await provider.create(inputs(base, { workerUrl: "http://127.0.0.1:20002" }));
        await provider.delete(a.id, a.outs as SglangWorkerOutputs);
        assert.deepStrictEqual(
            [...api.workers.values()].map((w) => w.url),
            ["http://127.0.0.1:20002"],
        );
    });

    it("delete resolves the router id by its own URL only: not a stale stored id, not the first listed, not a similar URL", async () => {
        api = new AdminApi();
        base = await api.start();
        const first = await provider.create(inputs(base, { workerUrl: "http://127.0.0.1:20001" }));
        const target = await provider.create(inputs(base, { workerUrl: "http://127.0.0.1:2000" }));
        await provider.create(inputs(base, { workerUrl: "http://127.0.0.1:200011" }));
        // A restarted router hands out new ids: the one in the state may now belong to another worker.
        const stale = { ...(target.outs as SglangWorkerOutputs), routerWorkerId: (first.outs as SglangWorkerOutputs).routerWorkerId };
        await provider.delete(target.id, stale);
        assert.deepStrictEqual([...api.workers.values()].map((w) => w.url).sort(), ["http://127.0.0.1:20001", "http://127.0.0.1:200011"]);
    });

    it("read reports a worker missing from the router as gone (drift for pulumi refresh)", async () => {
        api = new AdminApi();
        base = await api.start();
        const created = await provider.create(inputs(base));
        const present = await provider.read(created.id, created.outs);
        assert.strictEqual(present.id, created.id);
        api.forget("http://127.0.0.1:20001");
        const gone = await provider.read(created.id, created.outs);
        assert.ok(!gone.id, "missing worker reads as deleted");
    });

    it("diff replaces on a new URL or worker type only; other changes update in place", async () => {
        const olds = { ...inputs("http://x"), routerWorkerId: "id" } as SglangWorkerOutputs;
        const same = await provider.diff("id", olds, inputs("http://x"));
        assert.strictEqual(same.changes, false);
        const moved = await provider.diff("id", olds, inputs("http://x", { workerUrl: "http://127.0.0.1:20009" }));
        assert.deepStrictEqual([moved.changes, moved.replaces], [true, ["workerUrl"]]);
        const slower = await provider.diff("id", olds, inputs("http://x", { readinessTimeoutSeconds: 99 }));
        assert.deepStrictEqual([slower.changes, slower.replaces], [true, []]);
    });

    it("diff: a new gateway instance behind the same address (aws hostId) re-registers, cleaning first", async () => {
        const gateway = { host: "203.0.113.10", port: 22, user: "ubuntu", privateKey: "k" };
        const olds = { ...inputs("http://x"), adminBaseUrl: undefined, gateway: { ...gateway, hostId: "i-old" }, routerWorkerId: "id" } as SglangWorkerOutputs;
        const replaced = await provider.diff("id", olds, { ...olds, gateway: { ...gateway, hostId: "i-new" } });
        assert.deepStrictEqual([replaced.changes, replaced.replaces, replaced.deleteBeforeReplace], [true, ["gateway"], true]);
        const same = await provider.diff("id", olds, { ...olds });
        assert.strictEqual(same.changes, false);
    });

    it("survives serialization: the provider round-trips through serializeFunction", async () => {
        const serialized = await pulumi.runtime.serializeFunction(() => sglangWorkerProvider, { isFactoryFunction: true });
        assert.ok(serialized.text.length < 200_000, `serialized provider is ${serialized.text.length} characters`);
        // What the dynamic-provider host does with the state: evaluate the text, take the export.
        const m = new (require("module"))("provider.js", module);
        m.paths = module.paths;
        m._compile(serialized.text, __filename);
        const revived = m.exports[serialized.exportName] as Required<pulumi.dynamic.ResourceProvider>;
        api = new AdminApi();
        base = await api.start();
        const created = await revived.create(inputs(base));
        assert.strictEqual(api.workers.size, 1);
        await revived.delete(created.id, created.outs);
        assert.strictEqual(api.workers.size, 0);
        // The SSH path too: the captured session code and its require("ssh2") work after the round trip.
        const viaSsh = { ...inputs(base), adminBaseUrl: undefined, gateway: { host: "127.0.0.1", port: 1, privateKey: "not a key" } };
        await assert.rejects(revived.create(viaSsh), /cannot connect to root@127\.0\.0\.1:1/);
    });
});

describe("RouterWorker provider against smg 1.x answers (409, draining, a failed add's id gone)", () => {
    let api: AdminApi;
    let base: string;

    afterEach(() => api.stop());

    it("an add the router answers 409 'in progress' is adopted and waited for, not an error", async () => {
        api = new AdminApi({ smg: true, healthyAfterPolls: 3 });
        base = await api.start();
        // Someone (a restarted router reading its worker files, an earlier interrupted apply) added it already.
        await fetch(`${base}/workers`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ url: "http://127.0.0.1:20001" }),
        });
        const created = await provider.create(inputs(base));
        assert.strictEqual(api.workers.size, 1);
        assert.strictEqual((created.outs as SglangWorkerOutputs).routerWorkerId, [...api.workers.values()][0].id);
    });

    it("an add the router answers 409 'already exists' is adopted", async () => {
        api = new AdminApi({ smg: true });
        base = await api.start();
        await provider.create(inputs(base));
        api.calls.length = 0;
        const again = await provider.create(inputs(base));
        assert.strictEqual((again.outs as SglangWorkerOutputs).routerWorkerId, [...api.workers.values()][0].id);
    });

    it("a re-add right after a delete waits until the draining worker is gone, then adds it: not the whole readiness timeout", async () => {
        api = new AdminApi({ smg: true, drainMs: 1200 });
        base = await api.start();
        const first = await provider.create(inputs(base));
        await provider.delete(first.id, first.outs as SglangWorkerOutputs);
        assert.strictEqual([...api.workers.values()][0]?.drainingUntil !== undefined, true, "listed as draining after the delete");
        const started = Date.now();
        const again = await provider.create(inputs(base, { readinessTimeoutSeconds: 30 }));
        const took = Date.now() - started;
        assert.ok(took >= 500 && took < 10000, `re-add took ${took} ms`);
        const [worker] = [...api.workers.values()];
        assert.strictEqual(worker.drainingUntil, undefined);
        assert.strictEqual((again.outs as SglangWorkerOutputs).routerWorkerId, worker.id);
        assert.strictEqual(api.calls.filter((c) => c === "POST /workers").length, 2);
    });

    it("an accepted add whose id later answers 404 has failed: the wait ends at once and says why", async () => {
        api = new AdminApi({ smg: true, healthyAfterPolls: Infinity, failJobs: true });
        base = await api.start();
        const started = Date.now();
        await assert.rejects(
            provider.create(inputs(base, { readinessTimeoutSeconds: 30 })),
            /registration job failed.*answered 404 \(the router dropped the registration\)/,
        );
        assert.ok(Date.now() - started < 5000, "did not wait for the whole timeout");
    });

    it("deleting twice is fine; a draining worker reads as gone", async () => {
        api = new AdminApi({ smg: true, drainMs: 5000 });
        base = await api.start();
        const created = await provider.create(inputs(base));
        await provider.delete(created.id, created.outs as SglangWorkerOutputs);
        await provider.delete(created.id, created.outs as SglangWorkerOutputs);
        const read = await provider.read(created.id, created.outs as SglangWorkerOutputs);
        assert.ok(!read.id, "a draining worker is not there any more for refresh");
    });
});

describe("RouterWorker provider: PD roles (smg answers)", () => {
    let api: AdminApi;
    afterEach(() => api.stop());
    const prefillUrl = "http://10.0.0.5:8000";

    it("a prefill registers with its role and bootstrap port; a decode with its role only", async () => {
        api = new AdminApi({ smg: true, serverModes: { [prefillUrl]: "prefill", "http://127.0.0.1:20001": "decode" } });
        const base = await api.start();
        await provider.create(inputs(base, { workerUrl: prefillUrl, workerType: "prefill", bootstrapPort: 9000 }));
        await provider.create(inputs(base, { workerType: "decode" }));
        assert.deepStrictEqual(api.registrations, [
            { url: prefillUrl, worker_type: "prefill", bootstrap_port: 9000 },
            { url: "http://127.0.0.1:20001", worker_type: "decode" },
        ]);
    });

    for (const [registeredAs, reported, says] of [
        ["decode", "prefill", /reports disaggregation_mode 'prefill', and it is registered as decode: start it with `--disaggregation-mode decode`/],
        ["prefill", undefined, /reports no disaggregation mode \(a server without a role\), and it is registered as prefill/],
    ] as const) {
        it(`a ${registeredAs} whose server reports ${reported ?? "no mode"} fails with a clear error and leaves no registration (the router does not check)`, async () => {
            api = new AdminApi({ smg: true, drainMs: 50, serverModes: reported ? { [prefillUrl]: reported } : {} });
            const base = await api.start();
            const args = inputs(base, { workerUrl: prefillUrl, workerType: registeredAs, ...(registeredAs === "prefill" ? { bootstrapPort: 9000 } : {}) });
            await assert.rejects(provider.create(args), (err: Error) => {
                assert.match(err.message, says);
                assert.match(err.message, /http:\/\/10\.0\.0\.5:8000/);
                assert.match(err.message, /registration was removed again/);
                return true;
            });
            assert.ok(
                api.calls.some((c) => c.startsWith("DELETE /workers/")),
                api.calls.join(", "),
            );
        });
    }

    it("a prefill without its bootstrap port, or a decode with one, is refused before any call", () => {
        assert.match(
            bootstrapPortCheck({ role: "prefill" }) ?? "",
            /a prefill worker needs its bootstrapPort .* got undefined: without it the router tells decode servers "bootstrap_port": null/,
        );
        assert.match(bootstrapPortCheck({ role: "prefill", bootstrapPort: 70000 }) ?? "", /from 1 to 65535/);
        assert.match(bootstrapPortCheck({ role: "decode", bootstrapPort: 9000 }) ?? "", /only a prefill has one/);
        assert.strictEqual(bootstrapPortCheck({ role: "prefill", bootstrapPort: 9000 }), undefined);
        assert.strictEqual(bootstrapPortCheck({}), undefined);
    });

    it("diff: a new role or bootstrap port replaces the registration", async () => {
        const olds = { ...inputs("http://x", { workerType: "prefill", bootstrapPort: 9000 }), routerWorkerId: "id" } as SglangWorkerOutputs;
        assert.deepStrictEqual((await provider.diff("id", olds, { ...olds, bootstrapPort: 9001 })).replaces, ["bootstrapPort"]);
        assert.deepStrictEqual((await provider.diff("id", olds, { ...olds, workerType: "decode", bootstrapPort: undefined })).replaces, [
            "workerType",
            "bootstrapPort",
        ]);
    });
});

describe("RouterWorker provider: a router that cannot be reached", () => {
    let sshd: FakeSshd | undefined;
    let api: AdminApi | undefined;
    afterEach(async () => {
        await sshd?.stop();
        await api?.stop();
        sshd = api = undefined;
    });

    /** The provider's inputs as on a gateway: the router's port reached through SSH (here: the fake sshd). */
    const onGateway = (sshPort: number, routerPort: number): SglangWorkerInputs => ({
        ...inputs("unused"),
        adminBaseUrl: undefined,
        gateway: { host: "127.0.0.1", port: sshPort, user: "root", privateKey: testKey },
        service: "chat",
        routerPort,
        workersDir: "/var/lib/sglang-gateway/routers/chat/workers",
    });
    const workerFileWrites = () => (sshd?.scripts ?? []).filter((s) => s.includes("printf"));
    const workerFileRemovals = () => (sshd?.scripts ?? []).filter((s) => s.includes("rm -f '/var/lib/sglang-gateway/routers/chat/workers/"));
    const stoppedRouter = (doing: string, routerPort: number) =>
        new RegExp(
            `^cannot ${doing} worker http://127\\.0\\.0\\.1:20001: the router of service chat on the gateway 127\\.0\\.0\\.1 is not running: ` +
                `nothing accepts connections on its port 127\\.0\\.0\\.1:${routerPort} there \\(GET /workers: .*\\)\\. ` +
                "Check the router on the gateway: `systemctl status sglang-gateway-router-chat\\.service`, and `journalctl -u sglang-gateway-router-chat\\.service` for why it stopped",
        );

    it("create with the router stopped names the service, the gateway and what to check there, and writes nothing", async () => {
        sshd = new FakeSshd();
        const routerPort = await freePort();
        await assert.rejects(provider.create(onGateway(await sshd.start(), routerPort)), (err: Error) => {
            assert.match(err.message, stoppedRouter("register", routerPort));
            assert.match(err.message, /Nothing was registered, and the state records nothing as done; run `pulumi up` again once the router answers\.$/);
            return true;
        });
        assert.deepStrictEqual(workerFileWrites(), [], "no worker file: the router's next start would add the worker behind the state's back");
    });

    it("delete with the router stopped keeps the worker and its file (router and state still agree); once it is back, delete removes both", async () => {
        sshd = new FakeSshd();
        const sshPort = await sshd.start();
        api = new AdminApi({ smg: true, drainMs: 50 });
        const routerPort = Number(new URL(await api.start()).port);
        const created = await provider.create(onGateway(sshPort, routerPort));
        assert.strictEqual(workerFileWrites().length, 1);
        await api.stop();
        await assert.rejects(provider.delete(created.id, created.outs as SglangWorkerOutputs), (err: Error) => {
            assert.match(err.message, stoppedRouter("remove", routerPort));
            assert.match(err.message, /Nothing was removed/);
            return true;
        });
        assert.deepStrictEqual(workerFileRemovals(), [], "the worker file stays while the router could not be told");
        // The router is back (with its workers, as its start script re-adds them from their files).
        const back = new AdminApi({ smg: true, drainMs: 50 });
        await back.start(routerPort);
        api = back;
        await provider.create(onGateway(sshPort, routerPort));
        await provider.delete(created.id, created.outs as SglangWorkerOutputs);
        assert.ok(back.calls.some((c) => c.startsWith("DELETE /workers/")));
        assert.strictEqual(workerFileRemovals().length, 1);
    });

    it("a service's second router stopped: the error names its unit and says the first one has the worker", async () => {
        sshd = new FakeSshd();
        api = new AdminApi({ smg: true });
        const routerPort = Number(new URL(await api.start()).port);
        const second = await freePort();
        await assert.rejects(provider.create({ ...onGateway(await sshd.start(), routerPort), extraRouterPorts: [second] }), (err: Error) => {
            assert.match(err.message, new RegExp(`nothing accepts connections on its port 127\\.0\\.0\\.1:${second} there`));
            assert.match(err.message, /`systemctl status sglang-gateway-router2-chat\.service`/);
            assert.match(err.message, /Nothing was registered with this router \(the first one has it; a rerun adopts that\)/);
            return true;
        });
    });

    it("refresh with the router stopped fails instead of reporting the worker gone", async () => {
        sshd = new FakeSshd();
        const routerPort = await freePort();
        const props = { ...onGateway(await sshd.start(), routerPort), routerWorkerId: "id" };
        await assert.rejects(
            provider.read("http://127.0.0.1:20001", props),
            /cannot read worker .* is not running: .*Nothing in the state changed; refresh again once the router answers\.$/,
        );
    });

    it("a gateway whose sshd does not forward: the error says which setting (AllowTcpForwarding)", async () => {
        sshd = new FakeSshd({ forwarding: false });
        await assert.rejects(
            provider.create(onGateway(await sshd.start(), await freePort())),
            /the router of service chat on the gateway 127\.0\.0\.1 is out of reach: the gateway's sshd does not forward connections to its port .*AllowTcpForwarding yes/,
        );
    });

    it("a router at a URL (no SSH) that is not running: named by its URL", async () => {
        const url = `http://127.0.0.1:${await freePort()}`;
        await assert.rejects(
            provider.create({ ...inputs(url), service: "chat" }),
            new RegExp(`the router of service chat at ${url.replace(/\./g, "\\.")} is not running`),
        );
    });
});
