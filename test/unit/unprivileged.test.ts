// Unprivileged processes: the router and the model servers run as system users of their own, in
// systemd sandboxes; a container's `docker run` stays root with what a root client can take. The
// rendered units, and the steps that create and remove the users (Pulumi mocks).
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "../../components";
import { replicaProcessFiles } from "../../components/host-files/replica";
import { routerPaths, systemUsers } from "../../components/naming";
import { sglangRouter, sglangRouterCommand } from "../../components/routers/sglang/router";
import { AwsMocks } from "../helpers/aws-mocks";
import { settle } from "../helpers/mocks";
import { sshStack } from "../helpers/stack-configs";

/** `Key=value` lines of a unit file's [Service] section, in order (a key may repeat). */
function serviceSettings(unit: string): [string, string][] {
    const section = unit.split("[Service]\n")[1].split("\n[")[0];
    return section
        .split("\n")
        .filter((line) => /^[A-Za-z]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
}

const setting = (unit: string, key: string) =>
    serviceSettings(unit)
        .filter(([k]) => k === key)
        .map(([, v]) => v);

/** Every unit that runs something of this library: no privilege gained by exec, a read-only system, a private /tmp. */
const sandboxed = {
    NoNewPrivileges: "yes",
    ProtectSystem: "strict",
    ReadOnlyPaths: "/run",
    PrivateTmp: "yes",
    ProtectKernelTunables: "yes",
    ProtectKernelModules: "yes",
    ProtectKernelLogs: "yes",
    ProtectControlGroups: "yes",
    RestrictSUIDSGID: "yes",
    RestrictNamespaces: "yes",
    LockPersonality: "yes",
};

function assertSandboxed(unit: string, what: string): void {
    for (const [key, value] of Object.entries(sandboxed)) {
        assert.deepStrictEqual(setting(unit, key), [value], `${what}: ${key}`);
    }
    assert.deepStrictEqual(setting(unit, "CapabilityBoundingSet")[0], "", `${what}: the capability bounding set starts empty`);
    assert.deepStrictEqual(setting(unit, "ReadWritePaths"), [], `${what}: nothing else writable`);
}

const replica = { service: "chat", index: 2, port: 8001, model: "m", commands: ["exec serve"], env: {}, reachMode: "tunnel" as const };
const launchOptions = {
    service: "chat",
    user: systemUsers.router,
    port: 10001,
    metricsPort: 10301,
    policy: "round_robin",
    workerStartupTimeoutSeconds: 60,
    workerUrls: [],
};

describe("unprivileged processes: rendered units", () => {
    it("a model server runs as the replica user, writing only its service's cache ($HOME) and a private /tmp", () => {
        const unit = replicaProcessFiles(replica).unit.content;
        assert.deepStrictEqual([setting(unit, "User"), setting(unit, "Group")], [[systemUsers.replica], [systemUsers.replica]]);
        assert.deepStrictEqual(setting(unit, "CacheDirectory"), ["sglang-gateway/chat"]);
        assert.deepStrictEqual(setting(unit, "Environment"), ["HOME=/var/cache/sglang-gateway/chat"], "HOME is the cache systemd makes writable");
        assertSandboxed(unit, "model server");
        assert.deepStrictEqual(setting(unit, "ProtectHome"), ["read-only"], "model files kept under /home stay readable");
        assert.deepStrictEqual(setting(unit, "CapabilityBoundingSet"), [""], "no capability at all");
        assert.deepStrictEqual(setting(unit, "AmbientCapabilities"), []);
        // GPUs are device files: neither option that closes the device policy.
        assert.deepStrictEqual([setting(unit, "PrivateDevices"), setting(unit, "ProtectClock"), setting(unit, "DeviceAllow")], [[], [], []]);
        assert.ok(unit.indexOf("EnvironmentFile=") >= 0, "the user's environment (read by systemd as root) may still set HOME");
    });

    it("a model server on a port below 1024 gets exactly the capability to bind it, and only then", () => {
        const unit = replicaProcessFiles({ ...replica, port: 80 }).unit.content;
        assert.deepStrictEqual(setting(unit, "CapabilityBoundingSet"), ["", "CAP_NET_BIND_SERVICE"]);
        assert.deepStrictEqual(setting(unit, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
        const prefill = replicaProcessFiles({ ...replica, role: "prefill", bootstrapPort: 998 }).unit.content;
        assert.deepStrictEqual(setting(prefill, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"], "a bootstrap port below 1024 too");
        assert.match(prefill, /ports? 998: below 1024/);
    });

    it("a container: `docker run` stays root (the docker socket is root's), with the sandbox its client can take", () => {
        const unit = replicaProcessFiles({ ...replica, image: "lmsysorg/sglang:latest" }).unit.content;
        assert.deepStrictEqual([setting(unit, "User"), setting(unit, "CacheDirectory"), setting(unit, "Environment")], [[], [], []]);
        assertSandboxed(unit, "docker client");
        assert.deepStrictEqual(setting(unit, "ProtectHome"), ["read-only"], "root's docker login (/root/.docker) stays readable");
        // The client needs no devices (dockerd hands the GPUs to the container) and only the docker socket (or a TCP DOCKER_HOST).
        for (const [key, value] of [
            ["PrivateDevices", "yes"],
            ["MemoryDenyWriteExecute", "yes"],
            ["RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"],
            ["SystemCallFilter", "@system-service"],
        ]) {
            assert.deepStrictEqual(setting(unit, key), [value], key);
        }
    });

    for (const version of ["1.13.0", "0.3.2"]) {
        for (const instance of [1, 2] as const) {
            it(`router ${version}, process ${instance}: its own user, writing only the log directory it logs to`, () => {
                const launch = sglangRouter.launch({ ...launchOptions, version, ...(instance === 2 ? { instance } : {}) });
                const unit = launch.files.find((f) => f.path.endsWith(".service"))?.content ?? "";
                assert.deepStrictEqual([setting(unit, "User"), setting(unit, "Group")], [[systemUsers.router], [systemUsers.router]]);
                const command = sglangRouterCommand({ ...launchOptions, version, ...(instance === 2 ? { instance } : {}) });
                const logDir = command[command.indexOf("--log-dir") + 1];
                assert.strictEqual(logDir, routerPaths("chat", instance).logDir);
                assert.deepStrictEqual(setting(unit, "LogsDirectory"), [logDir.replace(/^\/var\/log\//, "")], "systemd makes the router's --log-dir writable");
                assertSandboxed(unit, "router");
                for (const [key, value] of [
                    ["ProtectHome", "yes"],
                    ["PrivateDevices", "yes"],
                    ["TemporaryFileSystem", "/dev/shm:mode=1777,nosuid,nodev,noexec"],
                    ["PrivateIPC", "yes"],
                    ["ProtectProc", "invisible"],
                    ["MemoryDenyWriteExecute", "yes"],
                    ["RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"],
                ]) {
                    assert.deepStrictEqual(setting(unit, key), [value], key);
                }
                assert.deepStrictEqual(setting(unit, "CapabilityBoundingSet"), [""]);
                // Root writes the start script and the worker files; the router's user must reach them.
                const prepare = launch.prepare.join("\n");
                for (const dir of [...routerPaths("chat", instance).searchableDirs, "/var/lib/sglang-gateway/routers/chat/workers"]) {
                    assert.ok(prepare.includes(` ${dir}`), `${dir} is made searchable`);
                }
                assert.match(prepare, /^install -d -m 0755 /m);
            });
        }
    }
});

async function build(raw: unknown) {
    const mocks = new AwsMocks({ region: "eu-west-1" });
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    buildStack(raw, {});
    await settle();
    const script = (name: string, which: "create" | "delete") => String(mocks.named(name).inputs[which]);
    return { mocks, script };
}

/** Where `text` starts in `script`; fails when it is not there. */
function at(script: string, text: string | RegExp): number {
    const found = typeof text === "string" ? script.indexOf(text) : script.search(text);
    assert.ok(found >= 0, `${text} not in:\n${script}`);
    return found;
}

describe("unprivileged processes: the users come and go with the steps that need them (mocks)", () => {
    it("the gateway's setup creates the router user before it installs the router; its removal deletes it", async () => {
        const { script } = await build(sshStack(1));
        const setup = script("gw-setup", "create");
        assert.ok(
            at(setup, `useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${systemUsers.router}`) <
                at(setup, "python3 -m venv"),
        );
        assert.match(setup, /^umask 022$/m, "the router's install is readable by its user whatever root's umask");
        assert.match(script("gw-setup", "delete"), new RegExp(`userdel ${systemUsers.router}`));
        // The router restarts only after the user exists: its step depends on the setup.
        assert.ok(
            at(script("chat-router", "create"), "install -d -m 0755") <
                at(script("chat-router", "create"), "systemctl restart sglang-gateway-router-chat.service"),
        );
    });

    it("a plain gateway creates no router user", async () => {
        const { script } = await build(sshStack(1, { router: null }));
        assert.doesNotMatch(script("gw-setup", "create"), /useradd/);
    });

    it("a model server's step creates its user and makes its directories searchable before the unit starts", async () => {
        const { script } = await build(sshStack(2));
        const create = script("chat-replica-1-process", "create");
        const user = at(create, `useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${systemUsers.replica}`);
        const dirs = at(create, "install -d -m 0755 /opt/sglang-gateway /opt/sglang-gateway/chat /opt/sglang-gateway/chat/replica-1");
        const start = at(create, "systemctl restart sglang-gateway-chat-replica-1.service");
        assert.ok(user < dirs && dirs < start, "user, directories, then the start");
        assert.match(create, /for group in video render; do/, "GPU device groups, where they exist");
        // The cache goes with the service's last replica on the host, the user with the library's last.
        const remove = script("chat-replica-1-process", "delete");
        assert.match(remove, /if \[ ! -e \/opt\/sglang-gateway\/chat \]; then\n\s+rm -rf \/var\/cache\/sglang-gateway\/chat/);
        assert.match(
            remove,
            new RegExp(`if \\[ ! -e /opt/sglang-gateway \\] && id -u ${systemUsers.replica} >/dev/null 2>&1; then\\n\\s+userdel ${systemUsers.replica}`),
        );
    });

    it("a container's step creates no user (its docker client runs as root)", async () => {
        const { script } = await build(sshStack(1, { service: { image: "lmsysorg/sglang:latest" } }));
        const create = script("chat-replica-0-process", "create");
        assert.doesNotMatch(create, /useradd/);
        assert.doesNotMatch(create, /^User=/m);
        assert.match(create, /^ProtectSystem=strict$/m);
    });
});
