// Two router processes per service behind the service's nginx upstream (router.processes: 2), on loopback
// with real nginx and two real smg routers: `kill -9` of one under a request loop loses no request that
// had not started answering; with one router the same crash fails requests until it is back.
import * as assert from "assert";
import * as http from "http";
import { serverBlockText } from "../../components/host-files/server-block";
import { sglangRouter } from "../../components/routers/sglang/router";
import { startFakeWorkers, type FakeWorkerFleet } from "../helpers/fake-workers";
import { startNginx } from "../helpers/nginx";
import { freePort } from "../helpers/ports";
import { startRealRouter, type RealRouter } from "../helpers/real-router";

const host = "chat.failover.test";

function chat(port: number, stream: boolean): Promise<{ status: number; complete: boolean }> {
    const body = JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "x" }], max_tokens: 4, stream });
    return new Promise((resolve) => {
        const req = http.request(
            { host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", headers: { host, "content-type": "application/json" }, timeout: 10000 },
            (res) => {
                let text = "";
                res.on("data", (c) => (text += c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, complete: !stream || text.trimEnd().endsWith("data: [DONE]") }));
                res.on("error", () => resolve({ status: -1, complete: false }));
            },
        );
        req.on("error", () => resolve({ status: 0, complete: false }));
        req.on("timeout", () => req.destroy());
        req.end(body);
    });
}

/** Sequential requests for `ms`; `atMs` in, on a timer (so mid-request), `fault` runs. Counts the failed answers. */
async function loopWithFault(port: number, stream: boolean, ms: number, atMs: number, fault: () => void): Promise<{ total: number; failed: number }> {
    const started = Date.now();
    const timer = setTimeout(fault, atMs);
    let total = 0;
    let failed = 0;
    try {
        while (Date.now() - started < ms && total < 2000) {
            const answer = await chat(port, stream);
            total++;
            if (answer.status !== 200 || !answer.complete) failed++;
        }
    } finally {
        clearTimeout(timer);
    }
    return { total, failed };
}

/** Two slow requests at once (nginx gives one to each router); the first router dies while both are in flight. */
async function killDuringTwoRequests(port: number, fleet: FakeWorkerFleet, victim: RealRouter): Promise<number[]> {
    await Promise.all(fleet.workers.map((w) => fetch(`${w.url}/_fake/state`, { method: "POST", body: JSON.stringify({ latencyMs: 1500 }) })));
    try {
        const answers = Promise.all([chat(port, false), chat(port, false)]);
        await new Promise((r) => setTimeout(r, 500));
        process.kill(victim.pid, "SIGKILL");
        return (await answers).map((a) => a.status);
    } finally {
        await Promise.all(fleet.workers.map((w) => fetch(`${w.url}/_fake/state`, { method: "POST", body: JSON.stringify({ latencyMs: 0 }) })));
    }
}

describe("router crash behind nginx with one and with two router processes (real nginx, real smg, loopback)", function () {
    this.timeout(120000);
    let fleet: FakeWorkerFleet;
    let routers: RealRouter[] = [];

    async function registered(router: RealRouter) {
        for (const w of fleet.workers) {
            await fetch(`${router.url}/workers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: w.url }) });
        }
        for (let i = 0; i < 100; i++) {
            const listed = ((await (await fetch(`${router.url}/workers`)).json()) as { workers: { is_healthy: boolean }[] }).workers;
            if (listed.filter((w) => w.is_healthy).length === fleet.workers.length) return router;
            await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error("workers never healthy");
    }
    const startRouter = async () =>
        registered(await startRealRouter({ version: "1.13.0", policy: "round_robin", args: ["--worker-startup-check-interval", "1"] }));
    async function site(upstreams: RealRouter[], failover: boolean) {
        const port = await freePort();
        const text = serverBlockText({
            service: "chat",
            serverName: host,
            auth: false,
            tokens: [],
            upstreamServers: upstreams.map((r) => `127.0.0.1:${r.port}`),
            allow: sglangRouter.inferencePaths,
            internalResponseHeaders: sglangRouter.internalResponseHeaders("1.13.0"),
            noWorkerAnswer: sglangRouter.noWorkerAnswer("1.13.0"),
            rateLimits: [],
            httpPort: port,
            failover,
        });
        return { port, nginx: await startNginx({ services: { "chat.conf": text } }) };
    }

    before(async () => {
        fleet = await startFakeWorkers(2, { namePrefix: "replica", args: ["--tokens-per-second", "40"] });
    });
    afterEach(async () => {
        await Promise.all(routers.map((r) => r.stop()));
        routers = [];
    });
    after(async () => fleet?.stop());

    for (const stream of [false, true]) {
        it(`two routers, ${stream ? "streamed" : "plain"} requests: kill -9 one mid-loop; ${stream ? "only a stream already answering through it may be cut" : "no request fails"}`, async () => {
            routers = [await startRouter(), await startRouter()];
            const { port, nginx } = await site(routers, true);
            try {
                const result = await loopWithFault(port, stream, 4000, 1500, () => process.kill(routers[0].pid, "SIGKILL"));
                console.log(`      two routers, ${stream ? "streamed" : "plain"}: ${result.total} requests, ${result.failed} failed`);
                assert.ok(result.total > 10, `${result.total} requests`);
                assert.ok(result.failed <= (stream ? 1 : 0), `${result.failed} of ${result.total} failed`);
            } finally {
                await nginx.stop();
            }
        });
    }

    it("two routers: one dies and comes back, then the other dies within seconds: no request fails (a router that failed is never marked down)", async () => {
        routers = [await startRouter(), await startRouter()];
        const { port, nginx } = await site(routers, true);
        try {
            const first = await loopWithFault(port, false, 1500, 500, () => process.kill(routers[0].pid, "SIGKILL"));
            // Back on the same port, as systemd brings it back.
            const revived = await registered(
                await startRealRouter({ version: "1.13.0", policy: "round_robin", port: routers[0].port, args: ["--worker-startup-check-interval", "1"] }),
            );
            routers.push(revived);
            const second = await loopWithFault(port, false, 2500, 500, () => process.kill(routers[1].pid, "SIGKILL"));
            console.log(`      two routers, one after the other: ${first.total + second.total} requests, ${first.failed + second.failed} failed`);
            assert.deepStrictEqual([first.failed, second.failed], [0, 0]);
        } finally {
            await nginx.stop();
        }
    });

    it("one router (the default): the same crash fails every request until the router is back (the gap systemd's restart leaves)", async () => {
        routers = [await startRouter()];
        const { port, nginx } = await site(routers, false);
        try {
            const result = await loopWithFault(port, false, 3000, 1000, () => process.kill(routers[0].pid, "SIGKILL"));
            console.log(`      one router, killed and not restarted: ${result.total} requests, ${result.failed} failed`);
            assert.ok(result.failed > 0, "a crash of the only router fails requests");
        } finally {
            await nginx.stop();
        }
    });

    it("a router that listens before its workers are registered (just restarted): its no-worker answer goes to the other router, no request fails", async () => {
        // The second router has no worker yet, as one systemd restarted a moment ago (its workers come from
        // its start script's files and are added only after it listens).
        routers = [await startRouter(), await startRealRouter({ version: "1.13.0", policy: "round_robin", args: ["--worker-startup-check-interval", "1"] })];
        const { port, nginx } = await site(routers, true);
        try {
            const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(port, i % 2 === 1)));
            const statuses = answers.map((a) => (a.complete ? a.status : -1));
            console.log(`      one router without workers: ${statuses.filter((s) => s === 200).length} of ${statuses.length} answered 200`);
            assert.deepStrictEqual(statuses, Array(20).fill(200));
        } finally {
            await nginx.stop();
        }
    });

    it("a request in flight on the router that dies is answered by the other with failover, and fails without it", async () => {
        for (const failover of [true, false]) {
            routers = [await startRouter(), await startRouter()];
            const { port, nginx } = await site(routers, failover);
            try {
                const statuses = await killDuringTwoRequests(port, fleet, routers[0]);
                console.log(`      two requests in flight, one router killed, failover ${failover}: ${statuses.join(", ")}`);
                if (failover) {
                    assert.deepStrictEqual(statuses, [200, 200]);
                } else {
                    assert.deepStrictEqual([...statuses].sort(), [200, 502], "nginx does not resend a POST already sent, unless told to");
                }
            } finally {
                await nginx.stop();
                await Promise.all(routers.map((r) => r.stop()));
                routers = [];
            }
        }
    });
});
