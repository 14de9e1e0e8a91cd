// The package as a platform team uses it, end to end on the sandbox: a TypeScript Pulumi program of its own
// that depends on the packed tarball and builds a Gateway and a Service from the public API only. It is first
// deployed with the previous release (0.2.0, packed from its commit), then upgraded to this checkout's
// package: the preview plans no replacement (only the changes the CHANGELOG names); then 2→3 creates exactly the new
// replica's resources, requests pass through the gateway, and destroy leaves the hosts clean.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { leftOnGateway } from "../helpers/gateway-router";
import { answeringWorkers, underLoad } from "../helpers/gateway-client";

const repo = path.resolve(__dirname, "..", "..");
/** The commit that landed as 0.2.0 (CHANGELOG), the release before this one. */
const previousRelease = "7e39a71";

/** `npm pack` of a checkout; returns the tarball's path. */
function pack(checkout: string, into: string): string {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", into], { cwd: checkout, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return path.join(into, (JSON.parse(out.slice(out.indexOf("["))) as { filename: string }[])[0].filename);
}

/** The package in the consumer's node_modules, as `npm install <tarball>` would put it. */
function install(consumer: string, tarball: string): string {
    const target = path.join(consumer, "node_modules", "sglang-gateway");
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(target, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", target, "--strip-components=1"]);
    return target;
}

/**
 * 0.2.0's exports map blocked the deep requires of Pulumi's serialized providers
 * (`sglang-gateway/bin/components/...`), so it could not deploy from a user's program at all; this
 * release exports that subpath. The old package gets that one field, and nothing else, as a 0.2.1 would.
 */
function allowProviderRequires(installed: string): void {
    const file = path.join(installed, "package.json");
    const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { exports: Record<string, unknown> };
    pkg.exports["./bin/components/*"] = "./bin/components/*";
    fs.writeFileSync(file, JSON.stringify(pkg, null, 4));
}

const consumerProgram = `// A platform team's own stack: the gateway and one service, from the package's public API.
import * as pulumi from "@pulumi/pulumi";
import { Gateway, Service } from "sglang-gateway";

const config = new pulumi.Config();
const g = config.requireObject<{ name: string; host: string; domain: string; privateKeyPath: string; router: { type: string; policy: string; indexUrl: string } }>("gateway");
const [s] = config.requireObject<{ name: string; port: number; model: string; commands: string[]; replicas: number; readinessTimeoutSeconds: number; hosts: { host: string }[] }[]>("services");
const tokens = config.requireObject<Record<string, string[]>>("tokens");

const gateway = new Gateway(g.name, { backend: "ssh", host: g.host, domain: g.domain, privateKeyPath: g.privateKeyPath, router: g.router });
const service = new Service(s.name, {
    gateway,
    port: s.port,
    model: s.model,
    commands: s.commands,
    replicas: s.replicas,
    readinessTimeoutSeconds: s.readinessTimeoutSeconds,
    hosts: s.hosts,
    tokens: pulumi.secret(tokens[s.name]),
});
export const url = service.url;
`;

describe("e2e the packed package in a user's own program: deployed with 0.2.0, upgraded, scaled", function () {
    this.timeout(900000);
    let work: string;
    let consumer: string;
    let previous: string;
    let current: string;
    before(() => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-pkg-upgrade-"));
        // The previous release, packed from its own commit (its prepack builds it with this checkout's toolchain).
        const old = path.join(work, "previous");
        execFileSync("git", ["worktree", "add", "--detach", old, previousRelease], { cwd: repo, stdio: "ignore" });
        try {
            fs.symlinkSync(path.join(repo, "node_modules"), path.join(old, "node_modules"));
            // Both tarballs are named sglang-gateway-<version>.tgz: each gets a directory of its own.
            previous = pack(old, fs.mkdtempSync(path.join(work, "previous-tgz-")));
        } finally {
            execFileSync("git", ["worktree", "remove", "--force", old], { cwd: repo, stdio: "ignore" });
        }
        current = pack(repo, fs.mkdtempSync(path.join(work, "current-tgz-")));
        consumer = path.join(work, "consumer");
        fs.mkdirSync(path.join(consumer, "node_modules"), { recursive: true });
        fs.writeFileSync(path.join(consumer, "index.ts"), consumerProgram);
        fs.writeFileSync(
            path.join(consumer, "tsconfig.json"),
            JSON.stringify({
                compilerOptions: { target: "ES2022", module: "commonjs", moduleResolution: "node", strict: true, esModuleInterop: true, skipLibCheck: true },
            }),
        );
        // What npm would install beside the package: its dependencies, and the program's TypeScript toolchain.
        const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { dependencies: Record<string, string> };
        for (const dep of [...Object.keys(pkg.dependencies), "typescript", "ts-node", "@types/node"]) {
            fs.mkdirSync(path.dirname(path.join(consumer, "node_modules", dep)), { recursive: true });
            fs.symlinkSync(path.join(repo, "node_modules", dep), path.join(consumer, "node_modules", dep));
        }
        allowProviderRequires(install(consumer, previous));
        fs.writeFileSync(
            path.join(consumer, "package.json"),
            JSON.stringify({ name: "platform-stack", private: true, dependencies: { "sglang-gateway": "file:" } }),
        );
    });
    after(() => fs.rmSync(work, { recursive: true, force: true }));
    const stack = onFreshSandbox("e2e-pkg", { program: () => path.join(consumer, "index.ts") });
    let project: PulumiProject;
    beforeEach(() => (project = stack()));
    const config = (replicas: number) => sandboxStack({ gateway: "e2e-pkg", replicas });

    it("0.2.0: up with 2 replicas, requests through the gateway", async () => {
        project.setConfig(config(2));
        await project.up();
        assert.strictEqual((await answeringWorkers(4)).length, 2);
    });

    it("the upgrade to this package plans no replacement: the router reconcile is created, the setup, router and model servers updated (their units run unprivileged now)", async () => {
        install(consumer, current);
        const changed = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        assert.deepStrictEqual(changed.sort(), [
            "create chat-router-reconcile",
            "update chat-replica-0-bridge",
            "update chat-replica-0-process",
            "update chat-replica-0-tunnel",
            "update chat-replica-1-bridge",
            "update chat-replica-1-process",
            "update chat-replica-1-tunnel",
            "update chat-router",
            // The JSON access log and nginx's request id (CHANGELOG): one reload.
            "update chat-server",
            "update e2e-pkg-setup",
        ]);
        // The model servers roll: the upgrade loses no request of a loop beside it.
        const { answers } = await underLoad(() => project.up());
        const failed = answers.filter((a) => a.status !== 200);
        console.log(`      upgrade from 0.2.0: ${answers.length} requests, ${failed.length} failed (${failed.map((a) => a.status).join(", ")})`);
        await project.run(["preview", "--expect-no-changes"]);
    });

    it("after the upgrade, 2→3 creates exactly replica 2's resources and it serves; destroy leaves the hosts clean", async () => {
        project.setConfig(config(3));
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
        assert.deepStrictEqual(steps.map((s) => `${s.op} ${s.urn.split("::").pop()}`).sort(), [
            "create chat-replica-2",
            "create chat-replica-2-bridge",
            "create chat-replica-2-process",
            "create chat-replica-2-tunnel",
            "create chat-replica-2-worker",
        ]);
        await project.up();
        assert.strictEqual((await answeringWorkers(6)).length, 3);
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0");
    });
});
