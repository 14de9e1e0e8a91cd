// The scripts HostScript runs: files written, activation checked, rollback on failure; and the
// provider's diff and serialization. (Over real SSH on real hosts: test/e2e.)
import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { openSsh, rootShell, scriptInput } from "../../components/host-script/ssh";
import { freePort } from "../helpers/ports";
import { testKey } from "../helpers/stack-configs";
import { applyScript, hostScriptProvider, removeScript, type HostScriptInputs } from "../../components/host-script";
import { render } from "../../components/templates";

/** Runs a script the way HostScript does on a host: `bash -s`, the script on standard input. */
function runLocally(script: string): { code: number; stderr: string } {
    try {
        execFileSync("bash", ["-s"], { input: scriptInput(script), stdio: ["pipe", "pipe", "pipe"] });
        return { code: 0, stderr: "" };
    } catch (err) {
        const e = err as { status: number; stderr: Buffer };
        return { code: e.status, stderr: e.stderr.toString() };
    }
}

describe("host scripts", () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-files-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("writes every file with its mode, verbatim (quotes, dollars, backslashes, no final newline)", () => {
        const tricky = "a 'quoted' \"line\" with $HOME and `ticks` and \\backslash\nlast line without newline";
        const result = runLocally(
            applyScript({ description: "test", write: [{ path: `${dir}/sub/a.conf`, content: tricky, mode: "0640" }], activate: ["true"] }),
        );
        assert.strictEqual(result.code, 0, result.stderr);
        assert.strictEqual(fs.readFileSync(`${dir}/sub/a.conf`, "utf8"), `${tricky}\n`);
        assert.strictEqual((fs.statSync(`${dir}/sub/a.conf`).mode & 0o777).toString(8), "640");
    });

    it("a failed activation restores the previous files and removes new ones: nothing half-applied", () => {
        fs.writeFileSync(`${dir}/existing.conf`, "old\n");
        const result = runLocally(
            applyScript({
                description: "broken change",
                write: [
                    { path: `${dir}/existing.conf`, content: "new", mode: "0644" },
                    { path: `${dir}/added.conf`, content: "added", mode: "0644" },
                ],
                // The failing step is not the last: every step must count, not only the final one.
                activate: [`grep -q new ${dir}/existing.conf`, "false", "true"],
            }),
        );
        assert.notStrictEqual(result.code, 0);
        assert.match(result.stderr, /broken change failed; the previous files are restored/);
        assert.strictEqual(fs.readFileSync(`${dir}/existing.conf`, "utf8"), "old\n");
        assert.ok(!fs.existsSync(`${dir}/added.conf`));
    });

    it("an `exit` inside one removal step ends only that step", () => {
        const marker = `${dir}/later-step-ran`;
        const script = removeScript({ description: "test", write: [], deactivate: ["exit 3"], afterRemove: [`touch ${marker}`] });
        assert.strictEqual(runLocally(script).code, 0);
        assert.ok(fs.existsSync(marker));
    });

    it("remove runs the deactivation, removes the files, and tolerates what is already gone", () => {
        fs.writeFileSync(`${dir}/a.conf`, "x");
        const marker = `${dir}/deactivated`;
        const script = removeScript({
            description: "test",
            write: [{ path: `${dir}/a.conf` }, { path: `${dir}/never-existed.conf` }],
            deactivate: [`touch ${marker}`, "false"],
        });
        assert.strictEqual(runLocally(script).code, 0);
        assert.ok(fs.existsSync(marker));
        assert.ok(!fs.existsSync(`${dir}/a.conf`));
    });

    it("non-root logins run the script through sudo; the script never appears on a command line", () => {
        assert.strictEqual(rootShell("ubuntu"), "sudo -n bash -s");
        assert.strictEqual(rootShell("root"), "bash -s");
    });

    // What sshd does to a script when `pulumi up` dies: it closes the script's output pipes.
    for (const [outcome, activate, expect] of [
        ["applied", ["sleep 0.3", "echo starting the unit >&2", "touch MARK"], { file: true, marker: true }],
        ["rolled back", ["sleep 0.3", "echo the unit failed >&2", "false"], { file: false, marker: false }],
    ] as const) {
        it(`a step whose session is gone mid-way still ends ${outcome} on the host, never half-applied`, async () => {
            const marker = `${dir}/activated`;
            const stage = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-stage-"));
            const child = spawn("bash", ["-s"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, TMPDIR: stage } });
            const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
            child.stdin.end(
                scriptInput(
                    applyScript({
                        description: "lost session",
                        write: [{ path: `${dir}/unit.conf`, content: "new", mode: "0644" }],
                        activate: activate.map((line) => line.replace("MARK", marker)),
                    }),
                ),
            );
            // The session is gone before the first line of output.
            child.stdout.destroy();
            child.stderr.destroy();
            await exited;
            try {
                assert.strictEqual(fs.existsSync(`${dir}/unit.conf`), expect.file, "the written file");
                assert.strictEqual(fs.existsSync(marker), expect.marker, "the activation's last step");
                assert.deepStrictEqual(fs.readdirSync(stage), [], "the held output is removed");
            } finally {
                fs.rmSync(stage, { recursive: true, force: true });
            }
        });
    }

    it("two removals of one bridge drain on their own: the first one's end (here: its bound) never cuts the second one's wait short", async () => {
        // A stand-in nginx master whose one worker serves for 8 s; its pid file where the scripts read nginx's.
        const master = spawn("bash", ["-c", "sleep 8 & wait"], { stdio: "ignore" });
        const exited = new Promise<void>((resolve) => master.once("exit", () => resolve()));
        try {
            fs.writeFileSync(`${dir}/nginx.pid`, `${master.pid}\n`);
            await new Promise((r) => setTimeout(r, 200));
            const pidsFile = `${dir}/drain-chat-replica-1.pids`;
            const removal = (seconds: number) =>
                `${render("scripts/nginx-workers.sh.njk", { pidsFile, nginxPidFile: `${dir}/nginx.pid` })}\n${render("scripts/nginx-drain.sh.njk", { seconds, pidsFile })}`;
            const run = (script: string) =>
                new Promise<number>((resolve) => {
                    const started = Date.now();
                    spawn("bash", ["-c", script], { stdio: "ignore" }).once("exit", () => resolve(Date.now() - started));
                });
            // The dead run's removal, still draining with a 1 s bound; the rerun's removal of the same bridge starts meanwhile.
            const first = run(removal(1));
            await new Promise((r) => setTimeout(r, 300));
            const second = await run(removal(10));
            await first;
            // (Recording walks /proc: a second or two on a busy machine; the first one's bound ends well before the worker.)
            assert.ok(second >= 6500, `the second removal ended after ${second} ms, while the worker served until ~7700 ms`);
            assert.deepStrictEqual(fs.readdirSync(dir), ["nginx.pid"], "each removal's list goes with it");
        } finally {
            master.kill();
            await exited;
        }
    });

    it("a command inside the script that reads standard input cannot swallow the rest of the script", () => {
        const marker = `${dir}/after-cat`;
        const result = runLocally(applyScript({ description: "stdin", write: [], activate: ["cat > /dev/null", `touch ${marker}`] }));
        assert.strictEqual(result.code, 0, result.stderr);
        assert.ok(fs.existsSync(marker), "the step after `cat` did not run");
    });
});

describe("HostScript provider", () => {
    const base: HostScriptInputs = { connection: { host: "10.0.0.1", port: 22, user: "root", privateKey: "k" }, description: "d", create: "c", delete: "x" };
    const provider = hostScriptProvider as Required<pulumi.dynamic.ResourceProvider>;

    it("diff: same inputs are no change; a new script updates in place; another host replaces", async () => {
        assert.strictEqual((await provider.diff("id", base, { ...base })).changes, false);
        const edited = await provider.diff("id", base, { ...base, create: "c2" });
        assert.deepStrictEqual([edited.changes, edited.replaces], [true, []]);
        const moved = await provider.diff("id", base, { ...base, connection: { ...base.connection, host: "10.0.0.2" } });
        assert.deepStrictEqual([moved.changes, moved.replaces, moved.deleteBeforeReplace], [true, ["connection"], true]);
        const newLogin = await provider.diff("id", base, { ...base, connection: { ...base.connection, user: "admin" } });
        assert.deepStrictEqual([newLogin.changes, newLogin.replaces], [true, []], "same machine, new login: update in place");
        const newPort = await provider.diff("id", base, { ...base, connection: { ...base.connection, port: 2222 } });
        assert.deepStrictEqual(newPort.replaces, ["connection"], "another port may be another machine behind one IP");
    });

    it("an unreachable host or a bad key fails with a message naming the host", async () => {
        const port = await freePort();
        await assert.rejects(
            openSsh({ host: "127.0.0.1", port, user: "root", privateKey: testKey }, 1),
            new RegExp(`cannot reach root@127\\.0\\.0\\.1:${port} over SSH: .*ECONNREFUSED`),
        );
        await assert.rejects(
            provider.create({ ...base, connection: { host: "127.0.0.1", port, privateKey: "not a key" } }),
            /cannot connect to root@127\.0\.0\.1.*privateKey/,
        );
    });

    it("survives serialization (what the engine stores and runs later)", async () => {
        const serialized = await pulumi.runtime.serializeFunction(() => hostScriptProvider, { isFactoryFunction: true });
        const m = new (require("module"))("provider.js", module);
        m.paths = module.paths;
        m._compile(serialized.text, __filename);
        const revived = m.exports[serialized.exportName] as Required<pulumi.dynamic.ResourceProvider>;
        assert.strictEqual((await revived.diff("id", base, { ...base, create: "other" })).changes, true);
        // create reaches the captured SSH code and its require("ssh2"):
        await assert.rejects(
            revived.create({ ...base, connection: { host: "127.0.0.1", port: await freePort(), privateKey: "not a key" } }),
            /cannot connect to root@127\.0\.0\.1/,
        );
    });
});
