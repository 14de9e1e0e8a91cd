// An earlier commit of this library, exported from git, whose stack program an upgrade test deploys
// first: the hosts then run what a user's stack of that release runs, before this checkout's `up`.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repo = path.resolve(__dirname, "..", "..");

/**
 * The last release, 0.2.0, whose routers and model servers run as root without systemd sandboxing. (Not an
 * unreleased commit in between: one of those passed each gateway step the setup's host-key pin, which a
 * preview cannot know, so an upgrade from it plans changes no user's stack ever had.)
 */
export const rootProcessesCommit = "7e39a71a146b5e70b1f15f0d19f343d243a0dc17";

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
