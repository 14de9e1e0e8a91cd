// End to end on sandbox hosts: `pulumi up` killed the way a crashed CI runner dies (SIGKILL to the CLI,
// its language host and its provider hosts) at three points of a scaling change, then the recovery the
// README gives (`pulumi cancel`, `pulumi refresh --clear-pending-creates`, `pulumi up`) converges: the
// router has exactly the desired workers, the hosts nothing more, and a preview nothing to do. Then a
// service's router stopped during `up`: a clear error, nothing recorded that was not done, and a rerun
// once it runs again converges.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { answeringWorkers, chat, fakeWorkerCommand, streamComplete, type Answer } from "../helpers/gateway-client";
import { routerUnit, workers } from "../helpers/gateway-router";
import { crash, pendingOperations, startUp, waitFor } from "../helpers/interrupted-up";
import { portSlot, workerUrl } from "../../components/naming";

/** The fake worker, held back while `/run/sgw-test-hold-<index>` exists on its host: a model server slow to start. */
const heldWorkerCommand = `while [ -e /run/sgw-test-hold-$REPLICA_INDEX ]; do sleep 0.2; done; ${fakeWorkerCommand}`;

function stackConfig(replicas: number) {
    const config = sandboxStack({ gateway: "interrupted", replicas });
    config.services[0].commands = [heldWorkerCommand];
    return config;
}

const urls = (replicas: number) => Array.from({ length: replicas }, (_, i) => workerUrl(portSlot("chat"), i));
/** Replica i runs on r1 (even i) or r2 (odd i). */
const hostOf = (i: number) => (i % 2 === 0 ? "r1" : "r2");
const lines = (text: string) =>
    text
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .sort();

/** The README's recovery after a killed `up`; a kill during the state write is repaired as the README says. */
async function recover(project: PulumiProject, whileUp?: () => Promise<void>): Promise<{ seconds: number; repairedStateFile: boolean; up: string }> {
    const started = Date.now();
    let repairedStateFile = false;
    const run = async (args: string[]) => {
        try {
            return await project.run(args);
        } catch (err) {
            // gocloud's file:// backend writes `<stack>.json.attrs` in place before it renames the new state in: a kill
            // in between leaves it empty, and every command fails to read the (intact) previous state until it goes.
            const attrs = path.join(project.stateDir, ".pulumi", "stacks", "sglang-gateway", `${project.stack}.json.attrs`);
            if (repairedStateFile || !/failed to load checkpoint: EOF/.test((err as Error).message) || fs.statSync(attrs).size !== 0) throw err;
            fs.rmSync(attrs);
            repairedStateFile = true;
            return project.run(args);
        }
    };
    await run(["cancel", "--yes"]);
    await run(["refresh", "--clear-pending-creates", "--yes", "--skip-preview"]);
    const [up] = await Promise.all([run(["up", "--yes", "--skip-preview"]), whileUp?.()]);
    await run(["preview", "--expect-no-changes"]);
    assert.deepStrictEqual(pendingOperations(project), [], "the state has no pending operations left");
    return { seconds: (Date.now() - started) / 1000, repairedStateFile, up: up.stdout };
}

/** Brings the stack to `replicas` (a no-op when it is there): each case starts from its own state. */
async function upTo(project: PulumiProject, replicas: number): Promise<void> {
    project.setConfig(stackConfig(replicas));
    await project.up();
}

/** What the next `up` says right after the kill: the dead run's lock (or, killed mid-write, the state it cannot read). */
async function nextUpRefused(project: PulumiProject): Promise<void> {
    await assert.rejects(
        project.up(),
        /currently locked by 1 lock\(s\)\. Either wait for the other process\(es\) to end or delete the lock file with `pulumi cancel`|failed to load checkpoint: EOF/,
    );
}

/** The router, the gateway and both replica hosts hold exactly `replicas` replicas: nothing missing, nothing twice, nothing left over. */
async function assertConverged(replicas: number): Promise<void> {
    const listed = await workers();
    assert.deepStrictEqual(listed.map((w) => w.url).sort(), urls(replicas).sort(), "the router's workers");
    assert.ok(
        listed.every((w) => w.is_healthy),
        JSON.stringify(listed),
    );
    const indices = Array.from({ length: replicas }, (_, i) => i);
    const gateway = await onHost(
        "gw",
        "ls /etc/nginx/sglang-gateway/bridges/ /run/sglang-gateway/chat/ /var/lib/sglang-gateway/routers/chat/workers/; " +
            "systemctl list-unit-files --plain --no-legend 'sglang-gateway-tunnel-*' | cut -d' ' -f1; " +
            "systemctl list-units --plain --no-legend --state=active 'sglang-gateway-tunnel-*' | cut -d' ' -f1; " +
            "ls -d /run/sglang-gateway/drain-* /tmp/sglang-gateway.* /tmp/tmp.* 2>/dev/null || true",
    );
    assert.deepStrictEqual(
        lines(gateway),
        [
            ...indices.map((i) => `chat-replica-${i}.conf`),
            ...indices.map((i) => `replica-${i}.sock`),
            ...urls(replicas).map((u) => u.replace(/[^A-Za-z0-9]+/g, "_")),
            ...indices.flatMap((i) => [`sglang-gateway-tunnel-chat-${i}.service`, `sglang-gateway-tunnel-chat-${i}.service`]),
            // ls prints each directory's name before its entries
            "/etc/nginx/sglang-gateway/bridges/:",
            "/run/sglang-gateway/chat/:",
            "/var/lib/sglang-gateway/routers/chat/workers/:",
        ].sort(),
        "on the gateway: bridges, sockets, worker files, tunnel units (installed, active), nothing staged or draining",
    );
    for (const host of ["r1", "r2"] as const) {
        const mine = indices.filter((i) => hostOf(i) === host);
        const found = await onHost(
            host,
            "systemctl list-unit-files --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1; " +
                "systemctl list-units --plain --no-legend --state=active 'sglang-gateway-*' | cut -d' ' -f1; " +
                "ls /opt/sglang-gateway/chat 2>/dev/null; ls -d /tmp/sglang-gateway.* /tmp/tmp.* 2>/dev/null || true",
        );
        assert.deepStrictEqual(
            lines(found),
            mine.flatMap((i) => [`sglang-gateway-chat-replica-${i}.service`, `sglang-gateway-chat-replica-${i}.service`, `replica-${i}`]).sort(),
            `on ${host}: units (installed, active) and directories`,
        );
    }
    const expected = indices.map((i) => `sgw-${hostOf(i)}-replica-${i}`).sort();
    assert.deepStrictEqual(await answeringWorkers(2 * replicas), expected);
}

describe("e2e: an interrupted pulumi up, and a router that is down during up (sandbox hosts, smg)", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("interrupted");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("up with 2 replicas", async () => {
        project.setConfig(stackConfig(2));
        await project.up();
        await assertConverged(2);
    });

    it("killed while replica 2's process step runs (2→3): the step still ends applied on r1; cancel, refresh --clear-pending-creates and up converge", async () => {
        await upTo(project, 2);
        // Another change holds r1's host lock: the process step waits there, running, when the kill comes.
        const holder = (
            await onHost("r1", "mkdir -p /run/sglang-gateway; setsid flock /run/sglang-gateway/apply.lock sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
        ).trim();
        project.setConfig(stackConfig(3));
        const running = startUp(project);
        await waitFor(
            "replica 2's process step waiting on r1",
            async () => {
                const pending = pendingOperations(project).some((op) => op.type === "creating" && op.urn.endsWith("::chat-replica-2-process"));
                return pending && (await onHost("r1", "pgrep -cfx 'flock -w 300 9' || true")).trim() === "1" ? true : undefined;
            },
            180000,
            running,
        );
        await crash(running);
        assert.deepStrictEqual(
            pendingOperations(project).map((op) => `${op.type} ${op.urn.split("::").pop()}`),
            ["creating chat-replica-2-process"],
        );
        await nextUpRefused(project);

        // The lock is free: the step the dead run began goes on by itself, to its end (not half-applied: unit enabled, never started).
        await onHost("r1", `kill -- -${holder}`);
        const state = await waitFor(
            "the orphaned step to finish on r1",
            async () => {
                const left = (await onHost("r1", "pgrep -cfx 'flock -w 300 9' || true")).trim();
                return left === "0" ? (await onHost("r1", "systemctl is-active sglang-gateway-chat-replica-2.service || true")).trim() : undefined;
            },
            60000,
        );
        assert.strictEqual(state, "active", "the step begun before the kill ended applied on r1");

        const figures = await recover(project);
        console.log(`      process step: recovered in ${figures.seconds} s (state file repaired: ${figures.repairedStateFile})`);
        await assertConverged(3);
    });

    it("killed while replica 2's worker waits to turn healthy (2→3): the rerun adopts the router's registration, no duplicate", async () => {
        await upTo(project, 2);
        await onHost("r1", "touch /run/sgw-test-hold-2");
        project.setConfig(stackConfig(3));
        const running = startUp(project);
        const workerFile = `/var/lib/sglang-gateway/routers/chat/workers/${urls(3)[2].replace(/[^A-Za-z0-9]+/g, "_")}`;
        await waitFor(
            "replica 2's registration under way",
            async () => {
                const pending = pendingOperations(project).some((op) => op.type === "creating" && op.urn.endsWith("::chat-replica-2-worker"));
                return pending && (await onHost("gw", `test -e ${workerFile} && echo yes || true`)).trim() === "yes" ? true : undefined;
            },
            180000,
            running,
        );
        // The POST follows the file at once; the router then polls the held server.
        await new Promise((r) => setTimeout(r, 1500));
        await crash(running);
        assert.deepStrictEqual(
            pendingOperations(project).map((op) => `${op.type} ${op.urn.split("::").pop()}`),
            ["creating chat-replica-2-worker"],
        );
        await nextUpRefused(project);

        // The rerun finds the router still waiting for the server (smg: 409 in progress) and adopts it; the server comes up meanwhile.
        const figures = await recover(project, async () => {
            await waitFor(
                "the rerun registering replica 2",
                () => (pendingOperations(project).some((op) => op.type === "creating" && op.urn.endsWith("::chat-replica-2-worker")) ? true : undefined),
                180000,
            );
            await new Promise((r) => setTimeout(r, 2000));
            await onHost("r1", "rm -f /run/sgw-test-hold-2");
        });
        console.log(`      registration: recovered in ${figures.seconds} s (state file repaired: ${figures.repairedStateFile})`);
        await assertConverged(3);
    });

    it("killed during the deletes of 3→1 while the bridges drain long streams: the rerun finishes the deletes, waiting for the same streams; none is cut", async () => {
        await upTo(project, 3);
        project.setConfig(stackConfig(1));
        // ~150 s streams on every replica, open before the change starts: they outlast the kill and the start of the rerun's
        // removals even on a loaded machine (each run's program took up to 50 s there), and the rerun's removals start
        // less than 120 s (the drain's bound) before they end.
        const opened = Date.now();
        const streams = Promise.all(
            Array.from({ length: 6 }, () => chat({ stream: true, tokens: 3000 }).catch((err: Error) => ({ status: 0, body: err.message }) as Answer)),
        );
        await new Promise((r) => setTimeout(r, 500));
        const running = startUp(project);
        await waitFor(
            "a bridge draining",
            async () => {
                const pending = pendingOperations(project).some((op) => op.type === "deleting" && /::chat-replica-[12]-bridge$/.test(op.urn));
                return pending && (await onHost("gw", "ls /run/sglang-gateway/ | grep -c '^drain-' || true")).trim() !== "0" ? true : undefined;
            },
            180000,
            running,
        );
        const killedAt = Date.now();
        await crash(running);
        const pending = pendingOperations(project).map((op) => `${op.type} ${op.urn.split("::").pop()}`);
        assert.ok(pending.length > 0 && pending.every((p) => /^deleting chat-replica-[12]-bridge$/.test(p)), pending.join(", "));
        await nextUpRefused(project);
        // The rerun begins 50 s into the streams, not at once: its removals then start 65–110 s in (cancel, refresh and
        // the program take 15–60 s), so the streams outlast their start by more than 10 s and end within the drain's
        // 120 s bound. Begun at once on a quiet machine (15 s after the kill), the bound ran out 10 s before the streams ended.
        await new Promise((r) => setTimeout(r, Math.max(0, opened + 50000 - Date.now())));

        let rerunRemovesAt = 0;
        const isBridgeRemoval = (op: { type: string; urn: string }) => op.type === "deleting" && /::chat-replica-[12]-bridge$/.test(op.urn);
        const figures = await recover(project, async () => {
            // The dead run's pending removals go with the rerun's first state write; then the rerun's own begin.
            await waitFor("the rerun's state", () => (pendingOperations(project).some(isBridgeRemoval) ? undefined : true), 180000);
            rerunRemovesAt = await waitFor(
                "the rerun removing a bridge",
                () => (pendingOperations(project).some(isBridgeRemoval) ? Date.now() : undefined),
                180000,
            );
        });
        const answers = await streams;
        const cut = answers.filter((a) => !streamComplete(a));
        const lastEnd = Math.max(...answers.map((a) => opened + (a.seconds ?? 0) * 1000));
        // The rerun's bridge removals waited for the nginx workers the dead run's reload had retired (they carry the streams).
        const rerunDrains = [...figures.up.matchAll(/chat-replica-[12]-bridge deleted \((\d+(?:\.\d+)?)s\)/g)].map((m) => Number(m[1]));
        console.log(
            `      deletes: killed ${((killedAt - opened) / 1000).toFixed(1)} s into the streams, recovered in ${figures.seconds} s ` +
                `(state file repaired: ${figures.repairedStateFile}); the rerun began its bridge removals ${((rerunRemovesAt - killedAt) / 1000).toFixed(1)} s after the kill, ` +
                `and they took ${rerunDrains.join(" s, ")} s; streams: ${answers.length} open, ${cut.length} cut, the last ended ${((lastEnd - killedAt) / 1000).toFixed(1)} s after the kill`,
        );
        // On a loaded machine the recovery can outlast the streams; the checks below still hold, but that run
        // did not show the rerun waiting for them: say so rather than fail (seen once with five sandboxes up).
        if (!(lastEnd > rerunRemovesAt + 10000)) {
            console.log("      note: the streams ended before the rerun began to remove the bridges; this run did not exercise the overlap");
        }
        assert.deepStrictEqual(new Set(answers.map((a) => a.worker)).size, 3, "the streams ran on all three replicas");
        assert.deepStrictEqual(
            cut.map((a) => `${a.status} ${a.worker}: …${a.body.slice(-120)}`),
            [],
            "streams cut",
        );
        // Each of them: a removal of the same bridge still draining from the dead run must not cut the rerun's own wait short.
        assert.ok(
            rerunDrains.length === 2 && Math.min(...rerunDrains) >= 3,
            `the rerun removed a bridge without waiting for the streams: ${rerunDrains.join(" s, ")} s`,
        );
        await assertConverged(1);
    });

    describe("the service's router stopped during up", () => {
        before(async () => {
            project = stack();
            // Whatever an earlier case left (a failed one: its lock, a pending create), as the README says.
            await project.run(["cancel", "--yes"]);
            await project.run(["refresh", "--clear-pending-creates", "--yes", "--skip-preview"]);
            await upTo(project, 2);
            await onHost("gw", `systemctl stop ${routerUnit}`);
        });

        const whatToCheck = new RegExp(
            "the router of service chat on the gateway 10\\.213\\.\\d+\\.2 is not running: nothing accepts connections on its port 127\\.0\\.0\\.1:\\d+ there .*" +
                `Check the router on the gateway: \`systemctl status ${routerUnit.replace(/\./g, "\\.")}\`, and \`journalctl -u ${routerUnit.replace(/\./g, "\\.")}\``,
            "s",
        );

        it("adding a replica fails naming the service, the gateway and what to check; the registration is not recorded, and nothing else was left undone", async () => {
            project.setConfig(stackConfig(3));
            await assert.rejects(project.up(), (err: Error) => {
                assert.match(err.message, /chat-replica-2-worker/);
                console.log(`      as pulumi up shows it: ${/error: (cannot register worker[^\n]*)/.exec(err.message)?.[1]}`);
                assert.match(err.message, new RegExp(`cannot register worker ${urls(3)[2]}: `));
                assert.match(err.message, whatToCheck);
                assert.match(err.message, /Nothing was registered, and the state records nothing as done; run `pulumi up` again once the router answers\./);
                return true;
            });
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
            assert.deepStrictEqual(steps, ["create chat-replica-2-worker"], "only the registration is left to do");
            const file = urls(3)[2].replace(/[^A-Za-z0-9]+/g, "_");
            assert.strictEqual((await onHost("gw", `ls /var/lib/sglang-gateway/routers/chat/workers/`)).includes(file), false, "no worker file for it");
        });

        it("removing replicas fails the same way; the registration stays recorded, and its file stays for the router's restart", async () => {
            project.setConfig(stackConfig(1));
            await assert.rejects(project.up(), (err: Error) => {
                assert.match(err.message, new RegExp(`cannot remove worker ${urls(2)[1]}: `));
                assert.match(err.message, whatToCheck);
                assert.match(err.message, /Nothing was removed/);
                return true;
            });
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
            // Replica 1 is still whole; of replica 2 (never registered, so its removal needs no router) whatever the failed run did not reach.
            const replica1 = ["chat-replica-1", "chat-replica-1-bridge", "chat-replica-1-process", "chat-replica-1-tunnel", "chat-replica-1-worker"].map(
                (n) => `delete ${n}`,
            );
            assert.deepStrictEqual(
                steps.filter((s) => !/^delete chat-replica-2(-(bridge|tunnel|process))?$/.test(s)).sort(),
                replica1,
                "left to do: all of replica 1, nothing else but replica 2's deletes",
            );
            const file = urls(2)[1].replace(/[^A-Za-z0-9]+/g, "_");
            assert.ok((await onHost("gw", `ls /var/lib/sglang-gateway/routers/chat/workers/`)).includes(file), "replica 1's worker file");
        });

        it("once the router runs again, up converges", async () => {
            await onHost("gw", `systemctl start ${routerUnit}`);
            await project.up();
            await project.run(["preview", "--expect-no-changes"]);
            await assertConverged(1);
        });
    });
});
