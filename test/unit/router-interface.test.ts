// The Router interface is enough for another router: one registered here (a router that learns its
// workers only at start) gets its own launch, install and paths, and no per-replica registration.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { buildStack, registerRouter, type Router } from "../../components";
import { workerUrl } from "../../components/naming";
import { RecordingMocks, settle } from "../helpers/mocks";
import { sshStack } from "../helpers/stack-configs";

const launched: { workerUrls: string[]; policy: string }[] = [];

const staticRouter: Router = {
    type: "static-test",
    defaultVersion: "1.0.0",
    defaultPolicy: "first",
    addsWorkersAtRuntime: false,
    versionProblem: (version) => (version === "1.0.0" ? undefined : "expected 1.0.0, the only version"),
    policyProblem: (policy) => (policy === "first" || policy === "rotate" ? undefined : "expected one of first, rotate"),
    inferencePaths: { exact: [], prefix: ["/v1/"] },
    internalResponseHeaders: () => ["x-static-upstream"],
    noWorkerAnswer: () => undefined,
    pdProblem: () => "static-test cannot pair prefill and decode workers",
    pdNoWorkerAnswer: () => undefined,
    rolloutScripts() {
        throw new Error("a router without runtime registration restarts instead of rolling");
    },
    install: (settings) => ({ requirement: `static-test==${settings.version}`, commands: ["echo install-static-test"], paths: ["/opt/static-test"] }),
    launch(options) {
        launched.push({ workerUrls: options.workerUrls, policy: options.policy });
        return {
            unitName: `static-${options.service}.service`,
            files: [{ path: `/etc/static-${options.service}.conf`, mode: "0644", content: options.workerUrls.join("\n") }],
            prepare: [],
            waitReady: [],
            statePaths: [],
        };
    },
    worker() {
        throw new Error("a router without runtime registration is never asked for a worker resource");
    },
};

async function build(raw: unknown) {
    const mocks = new RecordingMocks();
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    launched.length = 0;
    const { services } = buildStack(raw, {});
    await settle();
    return { mocks, service: services[0] };
}

describe("router interface: a router that learns its workers only at start", () => {
    before(() => registerRouter(staticRouter));

    it("gets every replica's worker URL at launch and no RouterWorker resources", async () => {
        const { mocks, service } = await build(sshStack(3, { router: { type: "static-test" } }));
        assert.strictEqual(mocks.resources.filter((r) => r.name.endsWith("-worker")).length, 0);
        const slot = (service.ports.routerPort - 10000) as number;
        assert.deepStrictEqual(launched, [{ workerUrls: [0, 1, 2].map((i) => workerUrl(slot, i)), policy: "first" }]);
        assert.match(String(mocks.named("chat-router").inputs.create), /static-chat\.service/);
        assert.match(String(mocks.named("gw-setup").inputs.create), /echo install-static-test/);
    });

    it("its own versions and policies are what the config checks enforce", () => {
        assert.throws(
            () => buildStack(sshStack(1, { router: { type: "static-test", policy: "cache_aware" } }), {}),
            /gateway\.router\.policy: expected one of first, rotate/,
        );
        assert.throws(() => buildStack(sshStack(1, { router: { type: "static-test", version: "2.0.0" } }), {}), /gateway\.router\.version: expected 1\.0\.0/);
        assert.throws(() => buildStack(sshStack(1, { router: { type: "nope" } }), {}), /gateway\.router\.type: expected a router type: sglang, static-test/);
    });

    it("a replica-count change reaches the router's launch (it restarts), not a per-replica registration", async () => {
        const one = await build(sshStack(1, { router: { type: "static-test" } }));
        const two = await build(sshStack(2, { router: { type: "static-test" } }));
        assert.notStrictEqual(one.mocks.named("chat-router").inputs.create, two.mocks.named("chat-router").inputs.create);
    });
});
