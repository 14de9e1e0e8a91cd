// The sandbox hosts (scripts/sandbox.sh): bring them up and down, and run commands on them.
import { execFile, execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { gatewayCacheDir } from "./cache";
import { PulumiProject } from "./pulumi-cli";

const repo = path.resolve(__dirname, "..", "..");
const script = path.join(repo, "scripts", "sandbox.sh");

export type SandboxHost = "gw" | "r1" | "r2";

/** `$CACHE/sandbox/state.json`, written by `sandbox.sh up` (and printed by `sandbox.sh names`). */
export interface SandboxState {
    /** `release`: the Debian release the host booted (bookworm unless SGLANG_GATEWAY_SANDBOX_RELEASES says otherwise). */
    hosts: Record<SandboxHost, { address: string; user: string; port: number; release: "bookworm" | "trixie" }>;
    privateKeyPath: string;
    indexUrl: string;
    bridgeAddress: string;
    /** The cache's real path; its sha256 gives the id in every machine-wide name. */
    cache: string;
    id: string;
    /** The file in /run that holds the id and the subnet for this cache while its sandbox exists. */
    claim: string;
    subnet: string;
    bridge: string;
    netns: Record<SandboxHost, string>;
    veths: Record<SandboxHost, string>;
}

/** Runs `sandbox.sh <command>` for a cache (default: the one the suite runs with); throws if it fails. */
export function sandbox(command: "up" | "down" | "status", cache = gatewayCacheDir(), env: NodeJS.ProcessEnv = {}): void {
    execFileSync("bash", [script, command], {
        stdio: ["ignore", "inherit", "inherit"],
        timeout: 300000,
        env: { ...process.env, ...env, SGLANG_GATEWAY_CACHE: cache },
    });
}

/** Runs `sandbox.sh <command>` for a cache and returns how it ended, with its output. */
export function sandboxRun(
    command: "up" | "down" | "status" | "names",
    cache = gatewayCacheDir(),
    env: NodeJS.ProcessEnv = {},
): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync("bash", [script, command], { encoding: "utf8", timeout: 300000, env: { ...process.env, ...env, SGLANG_GATEWAY_CACHE: cache } });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function sandboxState(cache = gatewayCacheDir()): SandboxState {
    return JSON.parse(fs.readFileSync(path.join(cache, "sandbox", "state.json"), "utf8")) as SandboxState;
}

/** What `up` would use for a cache: names, subnet and addresses (state.json's shape); creates nothing. */
export function sandboxNames(cache = gatewayCacheDir()): SandboxState {
    const { status, stdout, stderr } = sandboxRun("names", cache);
    if (status !== 0) throw new Error(`sandbox.sh names: ${stderr}`);
    return JSON.parse(stdout) as SandboxState;
}

const sshOptions = [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
];

/** Runs a shell command on a sandbox host as root; resolves with stdout, rejects with stderr. */
export function onHost(host: SandboxHost, command: string, cache = gatewayCacheDir()): Promise<string> {
    const state = sandboxState(cache);
    return new Promise((resolve, reject) =>
        execFile(
            "ssh",
            [...sshOptions, "-i", state.privateKeyPath, `root@${state.hosts[host].address}`, command],
            { maxBuffer: 16 * 1024 * 1024, timeout: 120000 },
            (err, stdout, stderr) => (err ? reject(new Error(`${host}: ${command}: ${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
    );
}

/**
 * Installs a Debian package on a sandbox host, which reaches no registry: the host machine downloads it
 * (once, into `$CACHE/debs`; the machine's release, which the hosts boot by default) and copies it over,
 * as an operator without internet on the gateway would. Resolves with the installed version.
 */
export async function preinstallPackage(host: SandboxHost, pkg: string, cache = gatewayCacheDir()): Promise<string> {
    const dir = path.join(cache, "debs");
    fs.mkdirSync(dir, { recursive: true });
    const cached = () => fs.readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
    if (!cached()) {
        execFileSync("apt-get", ["download", "-qq", pkg], { cwd: dir, stdio: ["ignore", "ignore", "inherit"], timeout: 120000 });
    }
    const deb = cached() as string;
    const state = sandboxState(cache);
    execFileSync("scp", [...sshOptions, "-i", state.privateKeyPath, path.join(dir, deb), `root@${state.hosts[host].address}:/tmp/${deb}`], { timeout: 60000 });
    await onHost(host, `dpkg -i /tmp/${deb} >/dev/null && rm -f /tmp/${deb}`, cache);
    return (await onHost(host, `dpkg-query -W -f='\${Version}' ${pkg}`, cache)).trim();
}

/**
 * Reboots one sandbox host keeping its disk (`sandbox.sh reboot`), off for `secondsOff` before it boots
 * again; resolves once its sshd answers again, with the seconds that took from the reboot command.
 * Async, so a request loop keeps running meanwhile.
 */
export function rebootHost(host: SandboxHost, secondsOff = 0, cache = gatewayCacheDir()): Promise<{ sshdSeconds: number }> {
    return new Promise((resolve, reject) =>
        execFile(
            "bash",
            [script, "reboot", host, String(secondsOff)],
            { timeout: 300000, env: { ...process.env, SGLANG_GATEWAY_CACHE: cache } },
            (err, stdout, stderr) => {
                const seconds = /sshd answers after ([\d.]+) s/.exec(stdout)?.[1];
                if (err || seconds === undefined) {
                    reject(new Error(`sandbox.sh reboot ${host}: ${err?.message ?? "no time printed"}\n${stdout}${stderr}`));
                } else {
                    resolve({ sshdSeconds: Number(seconds) });
                }
            },
        ),
    );
}

/** Which hosts boot another Debian release than bookworm (scripts/sandbox.sh SGLANG_GATEWAY_SANDBOX_RELEASES). */
export interface SandboxOptions {
    releases?: Partial<Record<SandboxHost, "bookworm" | "trixie">>;
    /** Another program than this repo's stack program (its entry file), read when the project is made. */
    program?: () => string;
}

/**
 * Mocha hooks for a suite on fresh sandbox hosts with its own stack: before, hosts down and up again
 * (nothing from an earlier run or the demo leaks in) and a new project; after, always, hosts down.
 */
export function onFreshSandbox(stack: string, options: SandboxOptions = {}): () => PulumiProject {
    let project: PulumiProject | undefined;
    const releases = Object.entries(options.releases ?? {})
        .map(([host, release]) => `${host}=${release}`)
        .join(" ");
    before(async () => {
        sandbox("down");
        sandbox("up", gatewayCacheDir(), { SGLANG_GATEWAY_SANDBOX_RELEASES: releases });
        project = new PulumiProject(stack, options.program?.());
        await project.init();
    });
    after(() => {
        try {
            sandbox("down");
        } finally {
            project?.remove();
        }
    });
    return () => project as PulumiProject;
}
