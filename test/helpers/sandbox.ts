// The sandbox hosts (scripts/sandbox.sh): bring them up and down, and run commands on them.
import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { gatewayCacheDir } from "./cache";
import { PulumiProject } from "./pulumi-cli";

const repo = path.resolve(__dirname, "..", "..");
const cache = gatewayCacheDir();

export interface SandboxState {
    hosts: Record<"gw" | "r1" | "r2", { address: string; user: string; port: number }>;
    privateKeyPath: string;
    indexUrl: string;
    bridgeAddress: string;
}

export function sandbox(command: "up" | "down" | "status"): void {
    execFileSync("bash", [path.join(repo, "scripts", "sandbox.sh"), command], { stdio: ["ignore", "inherit", "inherit"], timeout: 300000 });
}

export function sandboxState(): SandboxState {
    return JSON.parse(fs.readFileSync(path.join(cache, "sandbox", "state.json"), "utf8")) as SandboxState;
}

const sshOptions = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"];

/** Runs a shell command on a sandbox host as root; resolves with stdout, rejects with stderr. */
export function onHost(host: "gw" | "r1" | "r2", command: string): Promise<string> {
    const state = sandboxState();
    return new Promise((resolve, reject) =>
        execFile("ssh", [...sshOptions, "-i", state.privateKeyPath, `root@${state.hosts[host].address}`, command], { maxBuffer: 16 * 1024 * 1024, timeout: 120000 }, (err, stdout, stderr) =>
            err ? reject(new Error(`${host}: ${command}: ${err.message}\n${stderr}`)) : resolve(stdout),
        ),
    );
}

/**
 * Mocha hooks for a suite on fresh sandbox hosts with its own stack: before, hosts down and up again
 * (nothing from an earlier run or the demo leaks in) and a new project; after, always, hosts down.
 */
export function onFreshSandbox(stack: string): () => PulumiProject {
    let project: PulumiProject | undefined;
    before(async () => {
        sandbox("down");
        sandbox("up");
        project = new PulumiProject(stack);
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
