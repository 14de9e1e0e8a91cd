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
