// The router install on the gateway: pinned package, pinned dependency closure, air-gapped index, per generation.
import * as assert from "assert";
import { spawnSync } from "child_process";
import { sglangRouter, sglangRouterCommand } from "../../components/routers/sglang/router";

const settings = (version: string, indexUrl?: string) => ({ type: "sglang", policy: "cache_aware", version, ...(indexUrl ? { indexUrl } : {}) });

describe("sglang router install and launch, per generation", () => {
    /** One service's router launch, but for its version. */
    const options = {
        service: "chat",
        user: "sglang-gateway-router",
        port: 10001,
        metricsPort: 10301,
        policy: "round_robin",
        workerStartupTimeoutSeconds: 600,
        workerUrls: [],
    };

    it("smg 1.13.0 (the default) installs smg with its shipped closure; the venv counts as complete once smg.launch_router imports", () => {
        const install = sglangRouter.install(settings(sglangRouter.defaultVersion));
        assert.strictEqual(sglangRouter.defaultVersion, "1.13.0");
        assert.strictEqual(install.requirement, "smg==1.13.0");
        assert.deepStrictEqual(install.paths, ["/opt/sglang-gateway/routers/smg-1.13.0"]);
        const [script] = install.commands;
        assert.match(script, /-c \/opt\/sglang-gateway\/routers\/smg-1\.13\.0\/constraints\.txt smg==1\.13\.0/);
        assert.match(script, /^grpcio==1\.85\.3$/m);
        assert.match(script, /python -c 'import smg\.launch_router'/);
    });

    it("0.3.2 installs sglang-router with its shipped closure; its venv check imports sglang_router", () => {
        const [script] = sglangRouter.install(settings("0.3.2")).commands;
        assert.match(script, /-c \/opt\/sglang-gateway\/routers\/sglang-router-0\.3\.2\/constraints\.txt sglang-router==0\.3\.2/);
        assert.match(script, /^pydantic==2\.14\.4$/m);
        assert.match(script, /python -c 'import sglang_router'/);
    });

    it("a failed install names the gateway's Python and the pins its index has no wheel for (pip calls that a conflict)", () => {
        const [script] = sglangRouter.install(settings("1.13.0", "http://10.213.0.1:8764/simple")).commands;
        // Each pin is looked up alone, wheels only, against the same index.
        assert.match(
            script,
            /pip install --quiet --disable-pip-version-check --dry-run --no-deps --only-binary=:all: --ignore-installed --index-url http:\/\/10\.213\.0\.1:8764\/simple --trusted-host 10\.213\.0\.1 "\$pin"/,
        );
        assert.match(script, /installing smg==1\.13\.0 on this gateway's \$\(\/opt\/sglang-gateway\/routers\/smg-1\.13\.0\/bin\/python --version\) failed/);
        assert.match(script, /the index has no wheel for this Python and platform of\$missing/);
        assert.match(script, /^\s+exit 1$/m);
    });

    it("a plain-HTTP index on another host is trusted by name (pip refuses it otherwise)", () => {
        const [script] = sglangRouter.install(settings("0.3.2", "http://10.213.0.1:8764/simple")).commands;
        assert.match(script, /--index-url http:\/\/10\.213\.0\.1:8764\/simple --trusted-host 10\.213\.0\.1 /);
        assert.doesNotMatch(sglangRouter.install(settings("0.3.2", "https://pypi.example/simple")).commands[0], /trusted-host/);
    });

    it("launch: smg runs smg.launch_router and retries an unready worker every second; 0.3.2 runs sglang_router.launch_router", () => {
        const smg = sglangRouterCommand({ ...options, version: "1.13.0" });
        assert.deepStrictEqual(smg.slice(0, 3), ["/opt/sglang-gateway/routers/smg-1.13.0/bin/python", "-m", "smg.launch_router"]);
        assert.deepStrictEqual(smg.slice(-3), ["--worker-startup-check-interval", "1", "--log-json"]);
        const legacy = sglangRouterCommand({ ...options, version: "0.3.2" });
        assert.deepStrictEqual(legacy.slice(0, 3), ["/opt/sglang-gateway/routers/sglang-router-0.3.2/bin/python", "-m", "sglang_router.launch_router"]);
        assert.ok(!legacy.includes("--worker-startup-check-interval"), "0.3.2 does not know the flag");
        assert.ok(!legacy.includes("--log-json"));
    });

    it("smg's unit logs one line per request (RUST_LOG drops `started processing request`); 0.3.2's unit has no environment", () => {
        const unitOf = (version: string) => sglangRouter.launch({ ...options, version }).files.find((f) => f.path.endsWith(".service"))?.content ?? "";
        assert.match(unitOf("1.13.0"), /^Environment="RUST_LOG=info,smg::request=warn"$/m);
        assert.doesNotMatch(unitOf("0.3.2"), /Environment/);
    });

    it("the smg router's start removes installs no router uses any more; 0.3.2's scripts stay as they were", () => {
        assert.match(
            sglangRouter.launch({ ...options, version: "1.13.0" }).waitReady.join("\n"),
            /grep -qsF "\$install\/" \/etc\/sglang-gateway\/routers\/\*\/start\.sh \|\| rm -rf "\$install"/,
        );
        assert.strictEqual(sglangRouter.launch({ ...options, version: "0.3.2" }).waitReady.length, 1);
    });

    it("a reconcile beside the service's routers: its unit after each router, its script over each router's port, paused by a rolling update", () => {
        const one = sglangRouter.reconcile?.({ service: "chat", routerPorts: [10001], pausedWhile: "/run/sglang-gateway/rollout-chat" });
        assert.ok(one, "the sglang router has a reconcile");
        assert.strictEqual(one.unitName, "sglang-gateway-router-chat_reconcile.service");
        assert.deepStrictEqual(
            one.files.map((f) => [f.path, f.mode]),
            [
                ["/etc/sglang-gateway/routers/chat/reconcile.sh", "0755"],
                ["/etc/systemd/system/sglang-gateway-router-chat_reconcile.service", "0644"],
            ],
        );
        const [script, unit] = one.files.map((f) => f.content);
        assert.match(script, /^paused=\/run\/sglang-gateway\/rollout-chat$/m);
        assert.deepStrictEqual(script.match(/^ {4}reconcile .*$/gm), ["    reconcile http://127.0.0.1:10001"]);
        assert.match(script, /for f in \/var\/lib\/sglang-gateway\/routers\/chat\/workers\/\*; do/);
        assert.match(script, /9>\/var\/lib\/sglang-gateway\/routers\/chat\/workers\/\.lock$/m);
        assert.match(unit, /^ExecStart=\/etc\/sglang-gateway\/routers\/chat\/reconcile\.sh$/m);
        assert.match(unit, /^After=sglang-gateway-router-chat\.service$/m);
        assert.match(unit, /^Restart=always$/m);
        const check = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
        assert.strictEqual(check.status, 0, check.stderr);

        const two = sglangRouter.reconcile?.({ service: "chat", routerPorts: [10001, 10601], pausedWhile: "/run/sglang-gateway/rollout-chat" });
        const [script2, unit2] = (two?.files ?? []).map((f) => f.content);
        assert.deepStrictEqual(script2.match(/^ {4}reconcile .*$/gm), ["    reconcile http://127.0.0.1:10001", "    reconcile http://127.0.0.1:10601"]);
        assert.match(unit2, /^After=sglang-gateway-router-chat\.service sglang-gateway-router2-chat\.service$/m);
    });
});
