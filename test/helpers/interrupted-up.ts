// A `pulumi up` that dies the way a crashed CI runner does: SIGKILL to the CLI and to every process
// below it (language host, program, dynamic-provider hosts), at a moment the test picks from the state.
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { PulumiProject } from "./pulumi-cli";
import { track } from "./child-processes";

export interface PendingOperation {
    /** `creating`, `updating`, `deleting`, `reading`. */
    type: string;
    urn: string;
}

/** The operations the stack's state records as begun and not finished (the file:// backend writes them as each step starts). */
export function pendingOperations(project: PulumiProject): PendingOperation[] {
    const file = path.join(project.stateDir, ".pulumi", "stacks", "sglang-gateway", `${project.stack}.json`);
    if (!fs.existsSync(file)) return [];
    const latest = (
        JSON.parse(fs.readFileSync(file, "utf8")) as { checkpoint?: { latest?: { pending_operations?: { type: string; resource: { urn: string } }[] } } }
    ).checkpoint?.latest;
    return (latest?.pending_operations ?? []).map((op) => ({ type: op.type, urn: op.resource.urn }));
}

/** Every process below `pid` (children, grandchildren, ...), read from /proc. */
function descendants(pid: number): number[] {
    const parents = new Map<number, number[]>();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            // The command name is in parentheses and may hold spaces: the parent pid is the 2nd field after it.
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
        } catch {
            /* gone meanwhile */
        }
    }
    const found: number[] = [];
    const queue = [pid];
    while (queue.length > 0) {
        for (const child of parents.get(queue.shift() as number) ?? []) {
            found.push(child);
            queue.push(child);
        }
    }
    return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
    try {
        process.kill(pid, sig);
    } catch {
        /* gone */
    }
}

/**
 * SIGKILL to `pid` and all its descendants at once. The engine starts its plugins in process groups
 * of their own, so a group kill would miss them: the tree is stopped first (nothing can start or
 * reap anything), then killed.
 */
export function killTree(pid: number): number[] {
    const stopped = new Set<number>([pid]);
    signal(pid, "SIGSTOP");
    for (let round = 0; round < 10; round++) {
        const found = descendants(pid).filter((p) => !stopped.has(p));
        if (found.length === 0) break;
        for (const p of found) {
            stopped.add(p);
            signal(p, "SIGSTOP");
        }
    }
    for (const p of stopped) signal(p, "SIGKILL");
    return [...stopped];
}

export interface RunningUp {
    child: ChildProcess;
    /** stdout and stderr so far. */
    output(): string;
    /** Resolves with the exit code, or the signal's name. */
    exited: Promise<number | string>;
}

/** `pulumi up --yes --skip-preview` in the background, output collected. */
export function startUp(project: PulumiProject): RunningUp {
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", project.stack], {
        cwd: project.dir,
        env: project.env(),
        stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    let text = "";
    child.stdout?.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.once("exit", (code, sig) => resolve(code ?? sig ?? "?")));
    return { child, output: () => text, exited };
}

/** Polls `check` every 200 ms until it returns a value, for at most `timeoutMs`; `running` ends the wait early (the run finished first). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, running?: RunningUp): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let finished = false;
    void running?.exited.then(() => (finished = true));
    for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        if (finished) throw new Error(`pulumi up ended before ${what}:\n${running?.output().slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${running ? `:\n${running.output().slice(-4000)}` : ""}`);
        await new Promise((r) => setTimeout(r, 200));
    }
}

/** Kills the run's whole process tree and waits for the CLI to be gone. */
export async function crash(running: RunningUp): Promise<void> {
    if (running.child.pid === undefined) throw new Error("pulumi up has no pid");
    killTree(running.child.pid);
    await running.exited;
}
