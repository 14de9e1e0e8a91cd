// The phases of a remote step, named in the order they run, and the two scripts that run them.
import { hostPaths } from "../naming";
import { render } from "../templates";

export interface HostFile {
    path: string;
    content: string;
    /** Octal mode, e.g. "0644". */
    mode: string;
}

/**
 * What a remote step does. On create and update, in this order: `write` the files, `activate`
 * them, and on failure restore the previous files and `rollBack`. On delete, in this order:
 * `awaitIdle` (before the host lock), `deactivate`, remove the files and `removePaths`,
 * `afterRemove`, then `drain` (after the lock).
 */
export interface HostStepPhases {
    /** What the step is, for logs and errors, e.g. "bridge for chat replica 1". */
    description: string;
    write: HostFile[];
    /** Shell lines run after the files are written; any failure restores the previous files. */
    activate: string[];
    /** Shell lines run after a failed activation restored the files. */
    rollBack?: string[];
    /** Shell lines run first on delete, before taking the host lock (bounded waits). */
    awaitIdle?: string[];
    /** Shell lines run on delete before the files go (stop a unit, record what a reload retires). */
    deactivate?: string[];
    /** Paths removed on delete besides the written files. */
    removePaths?: string[];
    /** Shell lines run on delete after the files are gone (reload). */
    afterRemove?: string[];
    /** Shell lines run last on delete, without the host lock (bounded waits, e.g. request drain). */
    drain?: string[];
}

/** A heredoc delimiter that cannot occur in the content: it carries the content's hash. */
function heredocDelimiter(content: string): string {
    const crypto: typeof import("crypto") = require("crypto");
    return `SGLANG_GATEWAY_FILE_${crypto.createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
}

function withFinalNewline(text: string): string {
    return text.endsWith("\n") ? text : `${text}\n`;
}

/** The create/update script: write, activate, roll back on failure. */
export function applyScript(step: Pick<HostStepPhases, "description" | "write" | "activate" | "rollBack">): string {
    return render("scripts/apply.sh.njk", {
        description: step.description,
        lockFile: hostPaths.lockFile,
        lockDir: hostPaths.runDir,
        files: step.write.map((f) => ({ path: f.path, mode: f.mode, content: withFinalNewline(f.content), delimiter: heredocDelimiter(f.content) })),
        activate: step.activate,
        rollBack: step.rollBack ?? [],
    });
}

/** The delete script: await idle, deactivate, remove, after remove, drain. */
export function removeScript(step: Omit<HostStepPhases, "write" | "activate" | "rollBack"> & { write: { path: string }[] }): string {
    return render("scripts/remove.sh.njk", {
        description: step.description,
        lockFile: hostPaths.lockFile,
        lockDir: hostPaths.runDir,
        awaitIdle: step.awaitIdle ?? [],
        deactivate: step.deactivate ?? [],
        paths: [...step.write.map((f) => f.path), ...(step.removePaths ?? [])],
        afterRemove: step.afterRemove ?? [],
        drain: step.drain ?? [],
    });
}
