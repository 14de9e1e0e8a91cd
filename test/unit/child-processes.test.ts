// Routers and fake workers the tests start never outlive the test run, even when mocha is interrupted.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repo = path.resolve(__dirname, "..", "..");

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (check()) return true;
        await new Promise((r) => setTimeout(r, 100));
    }
    return check();
}

describe("test child processes", function () {
    this.timeout(60000);
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
        it(`are killed when mocha gets ${signal}`, async () => {
            const pidFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-child-")), "pid");
            const mocha = spawn(
                process.execPath,
                [path.join(repo, "node_modules", "mocha", "bin", "mocha.js"), "--timeout", "0", "test/fixtures/tracked-child.spec.ts"],
                {
                    cwd: repo,
                    env: { ...process.env, SGW_CHILD_PID_FILE: pidFile },
                    stdio: "ignore",
                },
            );
            try {
                assert.ok(await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8") !== "", 30000), "the fixture never started its child");
                const pid = Number(fs.readFileSync(pidFile, "utf8"));
                assert.ok(alive(pid));
                mocha.kill(signal);
                assert.ok(await waitFor(() => !alive(pid), 10000), `child ${pid} outlived mocha after ${signal}`);
            } finally {
                mocha.kill("SIGKILL");
            }
        });
    }
});
