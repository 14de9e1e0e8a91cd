// Sandboxes of two caches side by side (scripts/sandbox.sh): the machine-wide names and the subnet
// come from the cache directory, so `up` from a second cache never touches the first cache's hosts;
// a subnet or name that someone else holds is refused before anything is created; `down` removes
// its own cache's sandbox and nothing else. The extra caches borrow the first cache's rootfs/,
// wheels/ and fixtures/ through symlinks, so no second debootstrap runs.
import * as assert from "assert";
import { execFile, execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { gatewayCacheDir } from "../helpers/cache";
import { onHost, sandbox, sandboxNames, sandboxRun, sandboxState, type SandboxHost, type SandboxState } from "../helpers/sandbox";

const hosts: SandboxHost[] = ["gw", "r1", "r2"];
const firstCache = gatewayCacheDir();
const script = path.resolve(__dirname, "..", "..", "scripts", "sandbox.sh");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A new cache directory that borrows the first cache's rootfs, wheels and fixtures, on a subnet none of `taken` has. */
function borrowingCache(taken: string[]): { dir: string; names: SandboxState } {
    for (let attempt = 0; attempt < 20; attempt++) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-cache-"));
        for (const shared of ["rootfs", "wheels", "fixtures"]) fs.symlinkSync(path.join(firstCache, shared), path.join(dir, shared));
        const names = sandboxNames(dir);
        // Other lanes of `npm test` hold sandboxes too: their claims say which subnets are in use.
        const claimed = fs.existsSync("/run/sglang-gateway-sandbox")
            ? fs.readdirSync("/run/sglang-gateway-sandbox").map((id) => /subnet=(\S+)/.exec(fs.readFileSync(`/run/sglang-gateway-sandbox/${id}`, "utf8"))?.[1])
            : [];
        if (!taken.includes(names.subnet) && !claimed.some((c) => c !== undefined && names.subnet.startsWith(`${c}.`))) return { dir, names };
        fs.rmSync(dir, { recursive: true, force: true }); // 1 in 254: two caches derive the same subnet
    }
    throw new Error("no cache directory with a free subnet in 20 tries");
}

/** `sandbox.sh up` for a cache, without blocking the event loop (so the first sandbox can be probed meanwhile). */
function upAsync(cache: string): Promise<void> {
    return new Promise((resolve, reject) =>
        execFile(
            "bash",
            [script, "up"],
            { env: { ...process.env, SGLANG_GATEWAY_CACHE: cache }, timeout: 300000, maxBuffer: 16 * 1024 * 1024 },
            (err, _stdout, stderr) => (err ? reject(new Error(`up of ${cache}: ${err.message}\n${stderr}`)) : resolve()),
        ),
    );
}

/** Per host: its machine-id (new on every `up`) and systemd's state. The same later means the host was not restarted. */
async function fingerprint(cache: string): Promise<Record<SandboxHost, string>> {
    const out = {} as Record<SandboxHost, string>;
    for (const host of hosts) out[host] = (await onHost(host, "cat /etc/machine-id; systemctl is-system-running || true", cache)).trim().replace(/\s+/, " ");
    return out;
}

/** The sandbox of `cache` serves: the same hosts as in `before`, booted, and gw reaches r1, r2 and the index over the bridge. */
async function assertServes(cache: string, before: Record<SandboxHost, string>): Promise<void> {
    const state = sandboxState(cache);
    assert.deepStrictEqual(await fingerprint(cache), before, `the hosts of ${cache} were restarted or stopped`);
    for (const host of hosts) assert.match(before[host], / running$/, `${host} of ${cache}: ${before[host]}`);
    const reach = await onHost(
        "gw",
        `ping -c 1 -W 2 ${state.hosts.r1.address} >/dev/null && ping -c 1 -W 2 ${state.hosts.r2.address} >/dev/null && curl -fsS -o /dev/null -w '%{http_code}' ${state.indexUrl}/`,
        cache,
    );
    assert.strictEqual(reach, "200");
}

/** Everything of a cache's sandbox that can outlive it on this machine: namespaces, links, claim, processes, mounts, cgroups. */
function leftovers(names: SandboxState): string[] {
    const left: string[] = [];
    const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
        .split("\n")
        .map((line) => line.split(" ")[0]);
    for (const ns of Object.values(names.netns)) if (netns.includes(ns)) left.push(`netns ${ns}`);
    for (const link of [names.bridge, ...Object.values(names.veths)]) if (spawnSync("ip", ["link", "show", link]).status === 0) left.push(`link ${link}`);
    if (fs.existsSync(names.claim)) left.push(`claim ${names.claim}`);
    for (const pid of fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
        let cmdline: string;
        try {
            cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
        } catch {
            continue;
        }
        if (cmdline.includes(names.cache) || cmdline.includes(`sgw-${names.id}-`)) left.push(`process ${pid}: ${cmdline}`);
    }
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n"))
        if (line.includes(names.cache) || line.includes(`-${names.id}-`)) left.push(`mount ${line}`);
    const cgroups = execFileSync("find", ["/sys/fs/cgroup", "-maxdepth", "8", "-type", "d", "-name", `sgw-${names.id}-*`], { encoding: "utf8" }).trim();
    if (cgroups) left.push(`cgroups ${cgroups}`);
    const propagate = "/run/systemd/nspawn/propagate";
    if (fs.existsSync(propagate)) for (const dir of fs.readdirSync(propagate)) if (dir.startsWith(`sgw-${names.id}-`)) left.push(`${propagate}/${dir}`);
    return left;
}

describe("e2e: sandboxes of two caches side by side", function () {
    this.timeout(900000);
    const caches: string[] = [];
    const strays: string[] = [];
    let first: SandboxState;
    let firstHosts: Record<SandboxHost, string>;
    let second: { dir: string; names: SandboxState };

    before(async () => {
        sandbox("down");
        const started = Date.now();
        sandbox("up");
        console.log(`      first sandbox (${firstCache}) up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        first = sandboxState();
        firstHosts = await fingerprint(firstCache);
    });

    after(() => {
        const failures: string[] = [];
        for (const stray of strays) spawnSync("ip", ["link", "del", stray]);
        for (const cache of caches) {
            const down = sandboxRun("down", cache);
            if (down.status !== 0) failures.push(`down of ${cache}: ${down.stderr}`);
            else fs.rmSync(cache, { recursive: true, force: true });
        }
        try {
            sandbox("down");
        } catch (err) {
            failures.push(String(err));
        }
        if (failures.length) throw new Error(failures.join("\n"));
    });

    it("the first cache's names and subnet come from its directory", () => {
        assert.deepStrictEqual(first, sandboxNames(firstCache), "state.json says what `names` derives");
        assert.strictEqual(first.id, crypto.createHash("sha256").update(fs.realpathSync(firstCache)).digest("hex").slice(0, 6));
        assert.match(first.subnet, /^10\.213\.([1-9]\d?|1\d\d|2[0-4]\d|25[0-4])\.0\/24$/);
        for (const link of [first.bridge, ...Object.values(first.veths)]) assert.ok(link.length <= 15 && link.includes(first.id), link);
        assert.ok(execFileSync("ip", ["-o", "-4", "addr", "show", "dev", first.bridge], { encoding: "utf8" }).includes(`${first.bridgeAddress}/24`));
        assert.strictEqual(fs.readFileSync(first.claim, "utf8"), `cache=${first.cache}\nsubnet=${first.subnet.replace(/\.0\/24$/, "")}\n`);
    });

    it("a second cache's sandbox comes up beside it under its own names and subnet; the first keeps serving", async () => {
        second = borrowingCache([first.subnet]);
        caches.push(second.dir);
        for (const key of ["id", "claim", "subnet", "bridge", "bridgeAddress", "indexUrl", "privateKeyPath"] as const)
            assert.notStrictEqual(second.names[key], first[key], key);
        for (const host of hosts) {
            assert.notStrictEqual(second.names.netns[host], first.netns[host]);
            assert.notStrictEqual(second.names.veths[host], first.veths[host]);
            assert.notStrictEqual(second.names.hosts[host].address, first.hosts[host].address);
        }

        // Probe the first sandbox's hosts over ssh, round after round, for as long as the second comes up.
        const failures: string[] = [];
        let rounds = 0;
        let done = false;
        const started = Date.now();
        const up = upAsync(second.dir).finally(() => (done = true));
        while (!done) {
            await fingerprint(firstCache)
                .then((now) => assert.deepStrictEqual(now, firstHosts))
                .catch((err: Error) => failures.push(err.message));
            rounds++;
            await Promise.race([up.catch(() => undefined), sleep(500)]);
        }
        await up;
        console.log(
            `      second sandbox (${second.dir}) up in ${((Date.now() - started) / 1000).toFixed(1)} s; the first answered ${rounds - failures.length} of ${rounds} probe rounds meanwhile`,
        );
        assert.strictEqual(
            failures.length,
            0,
            `the first sandbox failed ${failures.length} of ${rounds} probe rounds while the second came up; the first failure: ${failures[0]}`,
        );
        assert.ok(rounds >= 3, `only ${rounds} probe rounds`);

        assert.deepStrictEqual(sandboxState(second.dir), second.names, "state.json says what `names` derived");
        await assertServes(second.dir, await fingerprint(second.dir));
        assert.strictEqual((await onHost("r1", "hostname", second.dir)).trim(), "sgw-r1", "inside, the host names stay");
        await assertServes(firstCache, firstHosts);
        assert.strictEqual(sandboxRun("status", firstCache).status, 0);
        assert.strictEqual(sandboxRun("status", second.dir).status, 0);
    });

    it("refuses a subnet that something else holds (here a bridge that is no sandbox's), creating and removing nothing", async () => {
        const third = borrowingCache([first.subnet, second.names.subnet]);
        caches.push(third.dir);
        // A bridge rather than a dummy link: this kernel may lack the dummy module, and the sandbox needs bridges anyway.
        const stray = `sgwt${crypto.randomBytes(3).toString("hex")}`;
        const address = third.names.subnet.replace(/\.0\/24$/, ".254/24");
        execFileSync("ip", ["link", "add", stray, "type", "bridge"]);
        strays.push(stray);
        execFileSync("ip", ["addr", "add", address, "dev", stray]);

        const refused = sandboxRun("up", third.dir);
        assert.notStrictEqual(refused.status, 0, refused.stderr);
        assert.ok(refused.stderr.includes(`${address} is on interface ${stray}`), refused.stderr);
        assert.ok(refused.stderr.includes("Nothing was created or removed"), refused.stderr);
        assert.ok(execFileSync("ip", ["-o", "-4", "addr", "show", "dev", stray], { encoding: "utf8" }).includes(address), "the stray bridge keeps its address");
        assert.deepStrictEqual(leftovers(third.names), []);
        await assertServes(firstCache, firstHosts);
        await assertServes(second.dir, await fingerprint(second.dir));
    });

    it("refuses the subnet of another cache's sandbox, naming that cache; a down where nothing is up touches nothing", async () => {
        const third = borrowingCache([first.subnet, second.names.subnet]);
        caches.push(third.dir);
        const override = { SGLANG_GATEWAY_SANDBOX_SUBNET: first.subnet };
        const refused = sandboxRun("up", third.dir, override);
        assert.notStrictEqual(refused.status, 0, refused.stderr);
        assert.ok(refused.stderr.includes(`${first.subnet} is claimed by the sandbox of cache ${first.cache}`), refused.stderr);
        assert.ok(refused.stderr.includes(`${first.bridgeAddress}/24 is on bridge ${first.bridge} of the sandbox of cache ${first.cache}`), refused.stderr);
        assert.deepStrictEqual(leftovers(third.names), []);

        const down = sandboxRun("down", third.dir, override);
        assert.strictEqual(down.status, 0, down.stderr);
        await assertServes(firstCache, firstHosts);
        assert.ok(fs.existsSync(first.claim), "the first keeps its claim");
    });

    it("down of the second cache removes all of it and nothing of the first", async () => {
        const started = Date.now();
        sandbox("down", second.dir);
        console.log(`      second sandbox down in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.deepStrictEqual(leftovers(second.names), []);
        assert.ok(!fs.existsSync(path.join(second.dir, "sandbox", "state.json")));
        assert.strictEqual(sandboxRun("status", second.dir).status, 3);
        await assertServes(firstCache, firstHosts);
    });
});
