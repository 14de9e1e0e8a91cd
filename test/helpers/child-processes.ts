// Test child processes (routers, fake workers) run in their own process group and never outlive the test run.
import type { ChildProcess } from "child_process";

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills the child's whole process group (it was spawned detached), falling back to the child alone. */
export function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
        process.kill(-child.pid, sig);
    } catch {
        try {
            child.kill(sig);
        } catch {
            /* gone */
        }
    }
}

function killAll(): void {
    for (const c of live) killGroup(c, "SIGKILL");
}

/**
 * Remembers the child until it exits; whatever is still running when the test process ends is killed:
 * on a normal exit, and on SIGINT or SIGTERM (whose default action would skip the exit hook).
 */
export function track(child: ChildProcess): void {
    if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.once("exit", killAll);
        for (const [signal, code] of [
            ["SIGINT", 130],
            ["SIGTERM", 143],
        ] as const) {
            process.once(signal, () => {
                killAll();
                process.exit(code);
            });
        }
    }
    live.add(child);
    child.once("exit", () => live.delete(child));
}

/** SIGTERM to the group, SIGKILL after `timeoutMs`; resolves once `exited` does. */
export async function terminate(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
    killGroup(child, "SIGTERM");
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
}
