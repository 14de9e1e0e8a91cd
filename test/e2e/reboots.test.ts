// Production faults on sandbox hosts, with the default router (smg) and 2 replicas (replica 0 on r1,
// replica 1 on r2): the gateway reboots, a replica host reboots under load, a replica's model server
// dies under load, and the router restarts while a replica is down. Nothing runs pulumi to recover.
// Each test prints its figures; RELIABILITY.md lists them.
import * as assert from "assert";
import { portSlot, replicaPaths, routerReconcilePaths, workerUrl } from "../../components/naming";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, rebootHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { answeringWorkers, chat, streamComplete, underLoad, type Answer } from "../helpers/gateway-client";
import { leftOnGateway, routerUnit, workers } from "../helpers/gateway-router";

const replica1 = { url: workerUrl(portSlot("chat"), 1), unit: replicaPaths("chat", 1).processUnit, name: "sgw-r2-replica-1" };
const bothReplicas = ["sgw-r1-replica-0", "sgw-r2-replica-1"];
/** How long r2 stays off in its reboot, as a real machine's firmware and boot would (its address refuses connections meanwhile). */
const r2SecondsOff = 30;
/** The sandbox stack's readinessTimeoutSeconds: the router's --worker-startup-timeout-secs. */
const startupTimeoutSeconds = 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secondsSince = (start: number) => (Date.now() - start) / 1000;

/** Polls until `check` holds; fails after `timeoutMs`, naming what it waited for. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, pollMs = 500): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
        if (Date.now() > deadline) {
            throw new Error(`gave up after ${timeoutMs / 1000} s waiting until ${what}`);
        }
        await sleep(pollMs);
    }
}

/** How the router lists replica 1: healthy, unhealthy, or not at all. */
async function replica1Listed(): Promise<"healthy" | "unhealthy" | "absent"> {
    const listed = (await workers()).find((w) => w.url === replica1.url);
    return listed === undefined ? "absent" : listed.is_healthy ? "healthy" : "unhealthy";
}

/**
 * A loop request that succeeded: a 200, and a streamed one (every second request of `underLoad`) complete
 * (a stream cut by a dying replica may still end for the client under 200: smg sends a stream_error, then [DONE]).
 */
function succeeded(answer: Answer, index: number): boolean {
    return answer.status === 200 && (index % 2 === 0 || streamComplete(answer));
}

/** Whether replica 1 answered a loop request completely since answer `from`. */
const replica1ServedSince = (answers: readonly Answer[], from: number) => answers.some((a, i) => i >= from && a.worker === replica1.name && succeeded(a, i));

/** Every failed request of a loop, with the last event before it, for the report. */
function failures(answers: readonly Answer[], events: { at: number; what: string }[]): string[] {
    return answers.flatMap((answer, i) => {
        if (succeeded(answer, i)) {
            return [];
        }
        const after = events.filter((e) => e.at <= i).pop()?.what ?? "the start";
        const streamed = i % 2 === 1 ? "streamed, " : "";
        return [`#${i} (${streamed}after ${after}): ${answer.status} ${answer.worker ?? ""} ${answer.body.replace(/\s+/g, " ").slice(-160)}`];
    });
}

/**
 * No failed request, except at most the one in flight (the loop is sequential) if its response had already
 * begun on replica 1 when replica 1 went away: no proxy can retry a response whose first bytes went out.
 * That happens at a kill -9 of the model server, and at a clean shutdown of its host too: the host's sshd
 * ends the tunnel's session at once, before the model server's own graceful stop (which would finish it).
 * Anything else (a 502, a 503, a request the router did not retry) fails the test.
 */
function assertNothingLostButOneUnderWayOnReplica1(answers: readonly Answer[], text: string): void {
    const failed = answers.flatMap((a, i) => (succeeded(a, i) ? [] : [{ i, a }]));
    const begunOnReplica1 = failed.filter(({ a }) => a.worker === replica1.name);
    assert.deepStrictEqual(
        failed.filter(({ a }) => a.worker !== replica1.name).map(({ i, a }) => `#${i}: ${a.status} ${a.body.slice(-160)}`),
        [],
        text,
    );
    assert.ok(begunOnReplica1.length <= 1, `more than the one response under way when replica 1 went away was cut: ${text}`);
}

function report(title: string, answers: readonly Answer[], failed: string[], figures: string): string {
    const text = `${title}: ${answers.length} requests, ${failed.length} failed; ${figures}`;
    console.log(`      ${text}${failed.map((f) => `\n        ${f}`).join("")}`);
    return text;
}

describe("e2e: reboots and replica death on sandbox hosts (smg, replica 0 on r1, replica 1 on r2)", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("reboots");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("up with 2 replicas: both serve", async () => {
        project.setConfig(sandboxStack({ gateway: "reboots", replicas: 2 }));
        await project.up();
        assert.deepStrictEqual(await answeringWorkers(4), bothReplicas);
    });

    it("gateway reboot: the service serves again without pulumi; the router lists both workers; preview has no changes", async () => {
        const started = Date.now();
        const { sshdSeconds } = await rebootHost("gw");
        await waitFor("a request through the rebooted gateway answers 200", async () => (await chat()).status === 200, 180000, 200);
        const firstOkSeconds = secondsSince(started);
        await waitFor(
            "the router lists both workers healthy",
            async () => {
                const listed = await workers();
                return listed.length === 2 && listed.every((w) => w.is_healthy);
            },
            180000,
        );
        const bothSeconds = secondsSince(started);
        console.log(
            `      gateway reboot: sshd answers after ${sshdSeconds.toFixed(1)} s, first 200 after ${firstOkSeconds.toFixed(1)} s, both workers healthy after ${bothSeconds.toFixed(1)} s (from the reboot command)`,
        );
        assert.deepStrictEqual(await answeringWorkers(4), bothReplicas);
        const units = ["nginx", routerUnit, routerReconcilePaths("chat").unit, replicaPaths("chat", 0).tunnelUnit, replicaPaths("chat", 1).tunnelUnit];
        const states = (await onHost("gw", `systemctl is-active ${units.join(" ")} || true`)).trim().split("\n");
        assert.deepStrictEqual(Object.fromEntries(units.map((u, i) => [u, states[i]])), Object.fromEntries(units.map((u) => [u, "active"])));
        await project.run(["preview", "--expect-no-changes"]);
    });

    it(`replica host reboot (r2, off for ${r2SecondsOff} s) under load: replica 1 comes back and rejoins by itself; replica 0 serves throughout; no request fails but a response already under way on replica 1`, async () => {
        const events: { at: number; what: string }[] = [];
        const { result, answers } = await underLoad(async (soFar) => {
            const started = Date.now();
            events.push({ at: soFar.length, what: "reboot r2" });
            const { sshdSeconds } = await rebootHost("r2", r2SecondsOff);
            events.push({ at: soFar.length, what: "r2's sshd answers" });
            const from = soFar.length;
            await waitFor("replica 1 answers through the gateway again", async () => replica1ServedSince(soFar, from), 180000);
            return { sshdSeconds, servedSeconds: secondsSince(started) };
        });
        const failed = failures(answers, events);
        const text = report(
            "r2 reboot under load",
            answers,
            failed,
            `r2's sshd answers after ${result.sshdSeconds.toFixed(1)} s, replica 1 serves again after ${result.servedSeconds.toFixed(1)} s`,
        );
        assert.strictEqual(await replica1Listed(), "healthy");
        assert.ok(
            answers.some((a) => a.worker === bothReplicas[0]),
            "replica 0 served",
        );
        const tunnel = replicaPaths("chat", 1).tunnelUnit;
        console.log(`      the tunnel to replica 1 restarted ${(await onHost("gw", `systemctl show -p NRestarts --value ${tunnel}`)).trim()} times`);
        assertNothingLostButOneUnderWayOnReplica1(answers, text);
    });

    it("replica death: its model server killed under load (systemd restarts it); no request fails but a response already under way on it", async () => {
        const events: { at: number; what: string }[] = [];
        const { result, answers } = await underLoad(async (soFar) => {
            await sleep(1000);
            events.push({ at: soFar.length, what: "kill -9 of replica 1" });
            const started = Date.now();
            await onHost("r2", `systemctl kill -s KILL ${replica1.unit}`);
            const from = soFar.length;
            await waitFor("replica 1 answers through the gateway again", async () => replica1ServedSince(soFar, from), 120000);
            return { servedSeconds: secondsSince(started) };
        });
        const failed = failures(answers, events);
        const text = report("replica crash under load", answers, failed, `replica 1 serves again after ${result.servedSeconds.toFixed(1)} s`);
        assertNothingLostButOneUnderWayOnReplica1(answers, text);
    });

    it("replica death: killed and kept down under load, then started again; the router marks it unhealthy, then it rejoins; no request fails but a response already under way on it", async () => {
        const events: { at: number; what: string }[] = [];
        const { result, answers } = await underLoad(async (soFar) => {
            await sleep(1000);
            events.push({ at: soFar.length, what: "kill -9 of replica 1, kept down" });
            const killed = Date.now();
            // The stop cancels systemd's restart (RestartSec=3): the model server stays dead.
            await onHost("r2", `systemctl kill -s KILL ${replica1.unit}; systemctl stop ${replica1.unit}`);
            await waitFor("the router marks replica 1 unhealthy", async () => (await replica1Listed()) === "unhealthy", 120000);
            const unhealthySeconds = secondsSince(killed);
            events.push({ at: soFar.length, what: "replica 1 listed unhealthy" });
            await sleep(2000);
            events.push({ at: soFar.length, what: "start of replica 1" });
            const started = Date.now();
            await onHost("r2", `systemctl start ${replica1.unit}`);
            await waitFor("the router lists replica 1 healthy again", async () => (await replica1Listed()) === "healthy", 120000);
            const rejoinSeconds = secondsSince(started);
            const from = soFar.length;
            await waitFor("replica 1 answers through the gateway again", async () => replica1ServedSince(soFar, from), 60000);
            return { unhealthySeconds, rejoinSeconds };
        });
        const failed = failures(answers, events);
        const text = report(
            "replica killed and kept down under load",
            answers,
            failed,
            `listed unhealthy ${result.unhealthySeconds.toFixed(1)} s after the kill, healthy again ${result.rejoinSeconds.toFixed(1)} s after its start`,
        );
        assertNothingLostButOneUnderWayOnReplica1(answers, text);
    });

    it("a router restarted while a replica is down gives up on it past its startup timeout; the replica rejoins by itself once healthy", async () => {
        await onHost("r2", `systemctl stop ${replica1.unit}`);
        await onHost("gw", `systemctl restart ${routerUnit}`);
        const restarted = Date.now();
        // Past the router's startup timeout (and its next check), its add job for replica 1 has failed.
        await sleep((startupTimeoutSeconds + 10) * 1000);
        assert.strictEqual(await replica1Listed(), "absent", "the restarted router does not list the stopped replica");
        const gaveUp = await onHost(
            "gw",
            `journalctl -u ${routerUnit} --since @${Math.floor(restarted / 1000)} --no-pager | grep -c 'Failed job: type=AddWorker' || true`,
        );
        assert.ok(Number(gaveUp.trim()) >= 1, "the router's add job for replica 1 failed (it forgot the worker)");
        assert.deepStrictEqual(await answeringWorkers(2), [bothReplicas[0]], "replica 0 serves meanwhile");

        const started = Date.now();
        await onHost("r2", `systemctl start ${replica1.unit}`);
        await waitFor("the router lists replica 1 healthy again", async () => (await replica1Listed()) === "healthy", 90000);
        const rejoinSeconds = secondsSince(started);
        const reconciled = await onHost("gw", `journalctl -u ${routerReconcilePaths("chat").unit} --no-pager | grep -c 'adding it again' || true`);
        assert.ok(Number(reconciled.trim()) >= 1, "the reconcile beside the router added it back");
        console.log(
            `      router restarted with replica 1 down: given up after its ${startupTimeoutSeconds} s startup timeout; listed healthy ${rejoinSeconds.toFixed(1)} s after replica 1 started`,
        );
        assert.deepStrictEqual(await answeringWorkers(4), bothReplicas);
    });

    it("destroy leaves the gateway clean", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
    });
});
