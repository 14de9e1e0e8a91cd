// An earlier commit of this library, exported from git, whose stack program an upgrade test deploys
// first: the hosts then run what a user's stack of that release runs, before this checkout's `up`.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repo = path.resolve(__dirname, "..", "..");

/**
 * The last commit whose routers and model servers run as root, without systemd sandboxing: main's tip when
 * they stopped (so an upgrade from it changes nothing else; from c2280b8, the host-key pinning that landed
 * in between also plans its own changes).
 */
export const rootProcessesCommit = "35b821ff6fd277e3c39e664ff241b5c33a2724a4";

/** `git archive` of `commit` in a temp directory, with this checkout's node_modules; `remove` deletes it. */
export function exportCommit(commit: string): { root: string; remove(): void } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `sgw-release-${commit.slice(0, 8)}-`));
    try {
        execFileSync("bash", ["-c", 'set -o pipefail; git -C "$1" archive "$2" | tar -x -C "$3"', "export", repo, commit, root], { stdio: "pipe" });
    } catch (err) {
        fs.rmSync(root, { recursive: true, force: true });
        throw new Error(`cannot export commit ${commit} (a shallow clone lacks it): ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
    }
    // Read only: the export resolves its packages from this checkout's install (an older lock file's may differ slightly).
    fs.symlinkSync(path.join(repo, "node_modules"), path.join(root, "node_modules"));
    return { root, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
