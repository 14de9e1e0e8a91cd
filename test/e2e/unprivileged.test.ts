// End to end on real hosts: the router and the model servers run as unprivileged system users in
// systemd sandboxes. A stack of the last commit that ran them as root upgrades with one restart of
// the router and a rolling restart of the model servers; then each process runs as its user, with the
// unit's sandbox in force (its mount namespace read-only but for what it may write), and the service
// serves, scales, and runs the other router generation. Destroy removes the users.
import * as assert from "assert";
import * as path from "path";
import { replicaPaths, routerPaths, systemUsers } from "../../components/naming";
import { answeringWorkers, underLoad } from "../helpers/gateway-client";
import { leftOnGateway, routerUnit, workers } from "../helpers/gateway-router";
import { exportCommit, rootProcessesCommit } from "../helpers/previous-release";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, type SandboxHost } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";

const gateway = "e2e-unpriv";
const config = (replicas: number, version?: string) => sandboxStack({ gateway, replicas, ...(version ? { router: { version } } : {}) });
/** Replica i of chat runs on r1 or r2, in turn. */
const replicaHost = (i: number): SandboxHost => (i % 2 === 0 ? "r1" : "r2");
const replicaUnit = (i: number) => replicaPaths("chat", i).processUnit;

/** The users of every process of a unit (by the unit `ps` reports for it, whatever the cgroup version). */
async function unitUsers(host: SandboxHost, unit: string): Promise<string[]> {
    const out = await onHost(host, `ps -eo user:40=,unit:100= | awk -v unit=${unit} '$2 == unit { print $1 }' | sort -u`);
    return out.split("\n").filter((l) => l !== "");
}

async function mainPidUser(host: SandboxHost, unit: string): Promise<string> {
    return (await onHost(host, `ps -o user:40= -p "$(systemctl show -p MainPID --value ${unit})"`)).trim();
}

async function unitProperties(host: SandboxHost, unit: string, names: string[]): Promise<Record<string, string>> {
    const out = await onHost(host, `systemctl show -p ${names.join(",")} ${unit}`);
    return Object.fromEntries(
        out
            .split("\n")
            .filter((l) => l.includes("="))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
}

/**
 * The directories of `dirs` in which the unit's main process, as `user` inside its own mount namespace
 * (nsenter: the unit's view of the file system), can create a file.
 */
async function writableDirs(host: SandboxHost, unit: string, user: string, dirs: string[]): Promise<string[]> {
    const out = await onHost(
        host,
        `pid=$(systemctl show -p MainPID --value ${unit}); for d in ${dirs.join(" ")}; do ` +
            `nsenter -t "$pid" -m setpriv --reuid=${user} --regid=${user} --clear-groups -- sh -c ': > "$1/.sgw-probe" && rm -f "$1/.sgw-probe"' probe "$d" 2>/dev/null && echo "$d"; done; true`,
    );
    return out.split("\n").filter((l) => l !== "");
}

/** What root gets inside the unit's mount namespace when it writes `file`: "" when it can, else the error. */
async function rootWriteInNamespace(host: SandboxHost, unit: string, file: string): Promise<string> {
    return (
        await onHost(host, `pid=$(systemctl show -p MainPID --value ${unit}); nsenter -t "$pid" -m sh -c ': > ${file} && rm -f ${file}' 2>&1 || true`)
    ).trim();
}

/** The mount options of `/` as the unit's main process sees it (the last mount there is the one in force). */
async function rootMountOptions(host: SandboxHost, unit: string): Promise<string> {
    return (await onHost(host, `awk '$5 == "/" { o = $6 } END { print o }' /proc/"$(systemctl show -p MainPID --value ${unit})"/mountinfo`)).trim();
}

/** A file the unit writes to a scratch directory is not in the host's one of that name (its own, private). */
async function scratchIsPrivate(host: SandboxHost, unit: string, user: string, dir: string): Promise<boolean> {
    const probe = `${dir}/.sgw-private-probe`;
    const out = await onHost(
        host,
        `pid=$(systemctl show -p MainPID --value ${unit}); nsenter -t "$pid" -m setpriv --reuid=${user} --regid=${user} --clear-groups -- sh -c ': > ${probe}' && ` +
            `if [ -e ${probe} ]; then echo shared; rm -f ${probe}; else echo private; fi; nsenter -t "$pid" -m rm -f ${probe}`,
    );
    return out.trim() === "private";
}

const routerSandbox = {
    User: systemUsers.router,
    Group: systemUsers.router,
    NoNewPrivileges: "yes",
    CapabilityBoundingSet: "",
    ProtectSystem: "strict",
    ReadOnlyPaths: "/run",
    ReadWritePaths: "",
    LogsDirectory: "sglang-gateway/chat",
    PrivateTmp: "yes",
    ProtectHome: "yes",
    PrivateDevices: "yes",
    PrivateIPC: "yes",
    ProtectKernelTunables: "yes",
    ProtectKernelModules: "yes",
    ProtectKernelLogs: "yes",
    ProtectControlGroups: "yes",
    RestrictSUIDSGID: "yes",
    MemoryDenyWriteExecute: "yes",
};

const modelServerSandbox = {
    User: systemUsers.replica,
    Group: systemUsers.replica,
    NoNewPrivileges: "yes",
    CapabilityBoundingSet: "",
    ProtectSystem: "strict",
    ReadOnlyPaths: "/run",
    ReadWritePaths: "",
    CacheDirectory: "sglang-gateway/chat",
    PrivateTmp: "yes",
    ProtectHome: "read-only",
    ProtectKernelTunables: "yes",
    ProtectKernelModules: "yes",
    ProtectKernelLogs: "yes",
    ProtectControlGroups: "yes",
    RestrictSUIDSGID: "yes",
};

/** Where the router could write if its sandbox leaked; it may write only its log directory and its private scratch. */
const routerProbeDirs = [
    "/",
    "/etc",
    "/etc/sglang-gateway/routers/chat",
    "/var/lib/sglang-gateway/routers/chat/workers",
    "/opt/sglang-gateway/routers",
    "/var/log/sglang-gateway",
    routerPaths("chat").logDir,
    "/run",
    "/run/lock",
    "/root",
    "/home",
    "/tmp",
    "/var/tmp",
    "/dev/shm",
];

describe("e2e unprivileged processes on sandbox hosts: routers and model servers run as their own users, sandboxed", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-unpriv");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("a stack of the last commit that ran them as root serves, router and model servers as root", async () => {
        const previous = exportCommit(rootProcessesCommit);
        try {
            project.useProgram(path.join(previous.root, "index.ts"));
            project.setConfig(config(2));
            await project.up();
        } finally {
            project.useProgram();
            previous.remove();
        }
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
        assert.strictEqual(await mainPidUser("gw", routerUnit), "root");
        assert.strictEqual(await mainPidUser("r1", replicaUnit(0)), "root");
    });

    it("upgrading: the preview updates the setup, the router and each model server, and replaces nothing", async () => {
        project.setConfig(config(2));
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        assert.deepStrictEqual(steps.sort(), [
            // The reconcile beside the router is new since 0.2.0.
            "create chat-router-reconcile",
            // Their removal script only (each removal drains on its own list of nginx workers): nothing runs on the hosts.
            "update chat-replica-0-bridge",
            "update chat-replica-0-process",
            "update chat-replica-0-tunnel",
            "update chat-replica-1-bridge",
            "update chat-replica-1-process",
            "update chat-replica-1-tunnel",
            "update chat-router",
            // The JSON access log and nginx's request id (CHANGELOG): one reload.
            "update chat-server",
            `update ${gateway}-setup`,
        ]);
    });

    it("upgrading: up updates just those, restarts the router once and rolls the model servers one at a time; failures only in the router's restart gap", async () => {
        project.setConfig(config(2));
        const since = (await onHost("gw", "date '+%Y-%m-%d %H:%M:%S'")).trim();
        const started = Date.now();
        const { result, answers } = await underLoad(() => project.up());
        const seconds = (Date.now() - started) / 1000;
        assert.match(
            result.stdout,
            /^\s*~ 9 updated$/m,
            "the setup, the router, its server block, two model servers, two tunnels (their pinned key) and (their removal script) two bridges",
        );
        assert.match(result.stdout, /^\s*\+ 1 created$/m, "the reconcile beside the router");
        assert.doesNotMatch(result.stdout, /replaced|deleted/, "nothing replaced or deleted");
        const starts = async (host: SandboxHost, unit: string) =>
            Number((await onHost(host, `journalctl -u ${unit} --since '${since}' -o cat --no-pager | grep -c '^Started ' || true`)).trim());
        assert.strictEqual(await starts("gw", routerUnit), 1, "the router restarted once");
        assert.strictEqual(await starts("r1", replicaUnit(0)), 1, "replica 0 restarted once");
        assert.strictEqual(await starts("r2", replicaUnit(1)), 1, "replica 1 restarted once");
        // Rolling: each replica leaves the router, restarts, and is back before the next one leaves; each twice
        // (its model server, then its tunnel, in whatever order the replicas take the lock).
        const log = (await onHost("gw", `journalctl -t sglang-gateway-rollout --since '${since}' -o cat --no-pager`)).split("\n").filter((l) => l !== "");
        const events = log.map((l) => /chat: (chat replica \d) (leaves|is out|is back)/.exec(l)?.slice(1, 3)).filter((e) => e !== undefined);
        const rolled: string[] = [];
        for (let i = 0; i < events.length; i += 3) {
            const who = events[i][0];
            assert.deepStrictEqual(
                events.slice(i, i + 3).map((e) => e.join(" ")),
                [`${who} leaves`, `${who} is out`, `${who} is back`],
                `one replica at a time: ${log.join(" | ")}`,
            );
            rolled.push(who);
        }
        assert.deepStrictEqual(rolled.sort(), ["chat replica 0", "chat replica 0", "chat replica 1", "chat replica 1"]);

        const failed = answers.filter((a) => a.status !== 200);
        const report =
            `upgrade to unprivileged processes under load: ${answers.length} requests, ${failed.length} failed ` +
            `(${[...new Set(failed.map((a) => a.status))].join(", ") || "none"}), up took ${seconds.toFixed(1)} s`;
        console.log(`      ${report}`);
        // Only the router's restart gap may fail a request: nginx's 502 while it is down, the gateway's 503 while its workers come back.
        assert.ok(
            failed.every((a) => a.status === 502 || a.status === 503),
            report,
        );
        assert.ok(failed.length <= 40, `more failures than a restart gap explains: ${report}`);
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
    });

    it("every process of the router runs as the router's user, every process of a model server as the model servers' user", async () => {
        assert.deepStrictEqual(await unitUsers("gw", routerUnit), [systemUsers.router]);
        assert.strictEqual(await mainPidUser("gw", routerUnit), systemUsers.router);
        for (const i of [0, 1]) {
            assert.deepStrictEqual(await unitUsers(replicaHost(i), replicaUnit(i)), [systemUsers.replica], `replica ${i}`);
            assert.strictEqual(await mainPidUser(replicaHost(i), replicaUnit(i)), systemUsers.replica);
        }
        // Nobody else runs as them; the users have no login.
        assert.match(await onHost("gw", `getent passwd ${systemUsers.router}`), /:\/nonexistent:\/usr\/sbin\/nologin\n$/);
        assert.match(await onHost("r1", `getent passwd ${systemUsers.replica}`), /:\/nonexistent:\/usr\/sbin\/nologin\n$/);
    });

    it("systemctl show: the units' sandbox options are in force", async () => {
        const router = await unitProperties("gw", routerUnit, Object.keys(routerSandbox));
        assert.deepStrictEqual(router, routerSandbox);
        for (const i of [0, 1]) {
            assert.deepStrictEqual(await unitProperties(replicaHost(i), replicaUnit(i), Object.keys(modelServerSandbox)), modelServerSandbox, `replica ${i}`);
        }
    });

    it("the router sees / read-only: as its user it writes only its log directory and its private /tmp, /var/tmp and /dev/shm", async () => {
        assert.match(await rootMountOptions("gw", routerUnit), /^ro,/);
        assert.deepStrictEqual(await writableDirs("gw", routerUnit, systemUsers.router, routerProbeDirs), [
            routerPaths("chat").logDir,
            "/tmp",
            "/var/tmp",
            "/dev/shm",
        ]);
        for (const dir of ["/tmp", "/dev/shm"]) {
            assert.ok(await scratchIsPrivate("gw", routerUnit, systemUsers.router, dir), `${dir} is the router's own`);
        }
        // Read-only mounts, not only file modes: root inside the namespace cannot write either.
        for (const file of ["/etc/.sgw-probe", "/var/lib/sglang-gateway/routers/chat/workers/.sgw-probe", "/run/.sgw-probe"]) {
            assert.match(await rootWriteInNamespace("gw", routerUnit, file), /Read-only file system/, file);
        }
        // It logs where systemd lets it: its log directory is its user's, with today's file.
        assert.match(
            await onHost("gw", `stat -c '%U %a' ${routerPaths("chat").logDir}; ls ${routerPaths("chat").logDir}`),
            new RegExp(`^${systemUsers.router} 750\\nsmg\\.`),
        );
    });

    it("a model server sees / read-only: as its user it writes only its service's cache ($HOME) and its private /tmp", async () => {
        const unit = replicaUnit(0);
        assert.match(await rootMountOptions("r1", unit), /^ro,/);
        const cache = replicaPaths("chat", 0).cacheDir;
        const dirs = ["/", "/etc", replicaPaths("chat", 0).processDir, "/var/cache", cache, "/run", "/run/lock", "/root", "/home", "/tmp", "/var/tmp"];
        assert.deepStrictEqual(await writableDirs("r1", unit, systemUsers.replica, dirs), [cache, "/tmp", "/var/tmp"]);
        assert.ok(await scratchIsPrivate("r1", unit, systemUsers.replica, "/tmp"), "/tmp is its own");
        assert.match(
            await onHost("r1", `tr '\\0' '\\n' < /proc/"$(systemctl show -p MainPID --value ${unit})"/environ | grep '^HOME='`),
            new RegExp(`^HOME=${cache}\n$`),
        );
        assert.match(await rootWriteInNamespace("r1", unit, `${replicaPaths("chat", 0).processDir}/.sgw-probe`), /Read-only file system/);
    });

    it("the service serves and scales 2→3: the new model server runs as its user", async () => {
        project.setConfig(config(3));
        await project.up();
        assert.deepStrictEqual(await answeringWorkers(6), ["sgw-r1-replica-0", "sgw-r1-replica-2", "sgw-r2-replica-1"]);
        assert.deepStrictEqual(await unitUsers("r1", replicaUnit(2)), [systemUsers.replica]);
        assert.strictEqual((await workers()).filter((w) => w.is_healthy).length, 3);
    });

    it("sglang-router 0.3.2 runs under the same unit: its user, the same writable directories, and it serves every worker; back to smg", async () => {
        project.setConfig(config(3, "0.3.2"));
        await project.up();
        assert.strictEqual((await onHost("gw", "ps -eo comm | grep -c 'sglang::router' || true")).trim(), "1");
        assert.deepStrictEqual(await unitUsers("gw", routerUnit), [systemUsers.router]);
        assert.deepStrictEqual(await writableDirs("gw", routerUnit, systemUsers.router, routerProbeDirs), [
            routerPaths("chat").logDir,
            "/tmp",
            "/var/tmp",
            "/dev/shm",
        ]);
        assert.deepStrictEqual(await answeringWorkers(6), ["sgw-r1-replica-0", "sgw-r1-replica-2", "sgw-r2-replica-1"]);
        // Back to smg: its start removes the 0.3.2 install (0.3.2's leaves an smg install behind, which destroy would not remove).
        project.setConfig(config(3));
        await project.up();
        assert.deepStrictEqual(await unitUsers("gw", routerUnit), [systemUsers.router]);
    });

    it("destroy removes the users and the model servers' caches with everything else", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
        for (const host of ["r1", "r2"] as const) {
            const left = await onHost(host, `getent passwd ${systemUsers.replica}; ls -d /var/cache/sglang-gateway /opt/sglang-gateway 2>/dev/null || true`);
            assert.strictEqual(left.trim(), "", `left on ${host}: ${left}`);
        }
    });
});
