// The reconcile beside a service's router (templates/scripts/sglang-router-reconcile.sh.njk), run for
// real against the REAL router of each generation on loopback: a router started while a worker is down
// gives up on it past its startup timeout and never tries again; the reconcile adds it back once it is
// healthy, and never adds back a worker whose file is gone, one that does not answer its health check, or
// any while a rolling update of the service holds its lock.
// Against the in-test admin API: PD workers come back with their role and a prefill's bootstrap port.
import * as assert from "assert";
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { sglangReconcileScript } from "../../components/routers/sglang/router";
import { sglangWorkersLock } from "../../components/routers/sglang/paths";
import { AdminApi } from "../helpers/admin-api";
import { killGroup, track } from "../helpers/child-processes";
import { startFakeWorker, type FakeWorkerProc } from "../helpers/fake-workers";
import { freePort } from "../helpers/ports";
import { ROUTER_VERSIONS, startRealRouter, type RealRouter } from "../helpers/real-router";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reconcile script for a router on this machine, over a workers directory of the test's own, every second. */
class Reconcile {
    readonly workersDir: string;
    /** The service's rolling-update lock: while it exists, nothing is added back. */
    readonly pausedWhile: string;
    private child: ChildProcess | undefined;
    output = "";

    constructor(private routerPort: number) {
        this.workersDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-reconcile-")), "workers");
        fs.mkdirSync(this.workersDir);
        this.pausedWhile = path.join(path.dirname(this.workersDir), "rollout-chat");
    }

    /** A worker's file as its RouterWorker writes it: the start script's arguments. */
    record(name: string, startArguments: string): void {
        fs.writeFileSync(path.join(this.workersDir, name), `${startArguments}\n`);
    }

    /** As a RouterWorker's delete does: the file goes under the reconcile's lock. */
    forget(name: string): void {
        execFileSync("flock", ["-w", "30", sglangWorkersLock(this.workersDir), "rm", "-f", path.join(this.workersDir, name)]);
    }

    start(): void {
        const script = path.join(path.dirname(this.workersDir), "reconcile.sh");
        fs.writeFileSync(
            script,
            sglangReconcileScript({
                service: "chat",
                routerPorts: [this.routerPort],
                workersDir: this.workersDir,
                pausedWhile: this.pausedWhile,
                intervalSeconds: 1,
            }),
            {
                mode: 0o755,
            },
        );
        this.child = spawn("sh", [script], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
        track(this.child);
        this.child.stdout?.on("data", (chunk) => (this.output += String(chunk)));
        this.child.stderr?.on("data", (chunk) => (this.output += String(chunk)));
    }

    stop(): void {
        if (this.child) killGroup(this.child, "SIGKILL");
        fs.rmSync(path.dirname(this.workersDir), { recursive: true, force: true });
    }
}

async function listed(router: RealRouter): Promise<{ id: string; url: string; is_healthy: boolean }[]> {
    const res = await fetch(`${router.url}/workers`);
    return ((await res.json()) as { workers: { id: string; url: string; is_healthy: boolean }[] }).workers;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting until ${what}`);
        await sleep(200);
    }
}

for (const version of ROUTER_VERSIONS)
    describe(`the reconcile beside the real router ${version}`, function () {
        this.timeout(120000);
        const smg = version.startsWith("1.");
        let router: RealRouter | undefined;
        let reconcile: Reconcile | undefined;
        const workers: FakeWorkerProc[] = [];
        afterEach(async () => {
            reconcile?.stop();
            await Promise.all([router?.stop(), ...workers.map((w) => w.stop())]);
            workers.length = 0;
        });

        it("adds back a worker the router gave up on at start once it is healthy; never one that is unhealthy or whose file is gone", async () => {
            const up = await startFakeWorker({ name: "up" });
            workers.push(up);
            const [latePort, deadPort] = [await freePort(), await freePort()];
            const late = `http://127.0.0.1:${latePort}`;
            const dead = `http://127.0.0.1:${deadPort}`;
            router = await startRealRouter({
                version,
                args: [
                    "--worker-urls",
                    up.url,
                    late,
                    dead,
                    "--worker-startup-timeout-secs",
                    "2",
                    "--health-check-interval-secs",
                    "1",
                    ...(smg ? ["--worker-startup-check-interval", "1"] : []),
                ],
            });
            // Past its startup timeout the router has given up on both workers that were down.
            await sleep(6000);
            assert.deepStrictEqual(
                (await listed(router)).map((w) => w.url),
                [up.url],
                "the router forgot the workers that were down at its start",
            );
            workers.push(await startFakeWorker({ name: "late", port: latePort }));
            await sleep(3000);
            assert.ok(!(await listed(router)).some((w) => w.url === late), "the router does not try again by itself");

            reconcile = new Reconcile(router.port);
            reconcile.record("up", up.url);
            reconcile.record("late", late);
            reconcile.record("dead", dead);
            // A rolling update of the service holds its lock: the registrations are its own meanwhile.
            fs.mkdirSync(reconcile.pausedWhile);
            reconcile.start();
            await sleep(3500);
            assert.ok(!(await listed(router)).some((w) => w.url === late), "nothing is added back while a rolling update runs");
            fs.rmdirSync(reconcile.pausedWhile);
            const current = router;
            await waitUntil("the late worker is listed healthy", async () => (await listed(current)).some((w) => w.url === late && w.is_healthy), 15000);
            assert.match(reconcile.output, new RegExp(`worker ${late}, which answers its health check: adding it again`));
            assert.doesNotMatch(reconcile.output, new RegExp(`${dead}|worker ${up.url}`), "only the missing, healthy worker was added");

            // Removed as a RouterWorker removes it (file first, then the router's DELETE): it stays removed.
            reconcile.forget("late");
            await sleep(500);
            const id = (await listed(router)).find((w) => w.url === late)?.id;
            const answer = await fetch(`${router.url}/workers/${id}`, { method: "DELETE" });
            assert.ok(answer.status < 300, `DELETE answered ${answer.status}`);
            await sleep(smg ? 8000 : 4000);
            assert.deepStrictEqual(
                (await listed(router)).map((w) => w.url),
                [up.url],
                "a worker whose file is gone is not added back",
            );
        });
    });

describe("the reconcile's registrations (in-test admin API)", function () {
    this.timeout(60000);
    it("adds back a prefill with its role and bootstrap port, a decode with its role, a regular worker as regular", async () => {
        const api = new AdminApi({ smg: true });
        const base = await api.start();
        const servers = await Promise.all(["prefill", "decode", "regular"].map((name) => startFakeWorker({ name })));
        const reconcile = new Reconcile(Number(new URL(base).port));
        try {
            reconcile.record("prefill", `--prefill ${servers[0].url} 9000`);
            reconcile.record("decode", `--decode ${servers[1].url}`);
            reconcile.record("regular", servers[2].url);
            reconcile.start();
            await waitUntil("three registrations", async () => api.registrations.length >= 3, 15000);
            const byUrl = Object.fromEntries(api.registrations.map((r) => [r.url, r]));
            assert.deepStrictEqual(byUrl[servers[0].url], { url: servers[0].url, worker_type: "prefill", bootstrap_port: 9000 });
            assert.deepStrictEqual(byUrl[servers[1].url], { url: servers[1].url, worker_type: "decode" });
            assert.deepStrictEqual(byUrl[servers[2].url], { url: servers[2].url, worker_type: "regular" });
            await sleep(2500);
            assert.strictEqual(api.registrations.length, 3, "listed workers are not added again");
        } finally {
            reconcile.stop();
            await Promise.all([api.stop(), ...servers.map((s) => s.stop())]);
        }
    });
});
