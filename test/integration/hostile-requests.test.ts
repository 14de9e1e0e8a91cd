// Hostile requests against the real gateway data path on loopback: real nginx with the rendered
// server block in front of the real router (each generation) with two fake workers registered.
// Every request carries a valid token (the worst case: a client of the service). Each must answer
// 4xx, never reach the router's admin API, never leak an internal address; the router's worker
// list must be the same afterwards.
import * as assert from "assert";
import { serverBlockText } from "../../components/host-files/server-block";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startFakeWorkers, type FakeWorkerFleet } from "../helpers/fake-workers";
import { hostileAnswerProblems, hostilePost, hostileRequests, raw } from "../helpers/hostile-requests";
import { startNginx } from "../helpers/nginx";
import { freePort } from "../helpers/ports";
import { ROUTER_VERSIONS, startRealRouter, type RealRouter } from "../helpers/real-router";

const token = "tok-0123456789abcdef";
const host = "chat.example.com";

for (const version of ROUTER_VERSIONS) {
    describe(`hostile requests through real nginx to the real router ${version}`, function () {
        this.timeout(120000);
        let router: RealRouter;
        let fleet: FakeWorkerFleet;
        let nginx: Awaited<ReturnType<typeof startNginx>>;
        let port: number;

        before(async () => {
            [router, fleet] = await Promise.all([startRealRouter({ version, policy: "round_robin" }), startFakeWorkers(2, { namePrefix: "replica" })]);
            for (const w of fleet.workers) {
                await fetch(`${router.url}/workers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: w.url }) });
            }
            for (let i = 0; i < 100 && (await workerList()).filter((w) => w.is_healthy).length < 2; i++) {
                await new Promise((r) => setTimeout(r, 100));
            }
            port = await freePort();
            const text = serverBlockText({
                service: "chat",
                serverName: host,
                auth: true,
                tokens: [token],
                upstreamServers: [`127.0.0.1:${router.port}`],
                allow: sglangRouter.inferencePaths,
                internalResponseHeaders: sglangRouter.internalResponseHeaders(version),
                noWorkerAnswer: sglangRouter.noWorkerAnswer(version),
                servedModel: "fake-model",
                rateLimits: [],
                httpPort: port,
            });
            nginx = await startNginx({ services: { "chat.conf": text } });
        });
        after(async () => Promise.all([nginx?.stop(), fleet?.stop(), router?.stop()]));

        async function workerList(): Promise<{ id: string; url: string; is_healthy: boolean }[]> {
            return ((await (await fetch(`${router.url}/workers`)).json()) as { workers: { id: string; url: string; is_healthy: boolean }[] }).workers;
        }

        it("at least 40 hostile requests all answer 4xx; the router's workers are untouched; nothing internal leaks", async () => {
            const before = (await workerList()).map((w) => `${w.id} ${w.url}`).sort();
            assert.strictEqual(before.length, 2);
            const target = { host, token, routerPort: router.port, workerUrl: fleet.workers[0].url };
            const cases = hostileRequests(target);
            assert.ok(cases.length >= 40, `${cases.length} cases`);
            const wrong: string[] = [];
            for (const [title, request] of cases) {
                wrong.push(...hostileAnswerProblems(title, await raw("127.0.0.1", port, request)));
            }
            assert.deepStrictEqual(wrong, []);
            assert.deepStrictEqual((await workerList()).map((w) => `${w.id} ${w.url}`).sort(), before, "the router's workers are unchanged");
            const ok = await raw(
                "127.0.0.1",
                port,
                hostilePost(target, "/v1/chat/completions", JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] })),
            );
            assert.deepStrictEqual(ok.statuses, [200], "and the service still serves");
        });
    });
}
