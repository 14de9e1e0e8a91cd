// Steps many remote changes share: a systemd unit's lifecycle, an nginx reload that is checked first,
// and the bounded waits around nginx reloads and sockets.
import { gpuDeviceGroups, hostPaths } from "../naming";
import { render } from "../templates";

/**
 * Installing, (re)starting and removing one systemd unit whose file the step writes. `stopFails`: its process
 * exits non-zero when stopped (ssh does), so the stopped unit stays listed as failed until it is reset.
 */
export function systemdUnitSteps(unit: string, options: { stopFails?: boolean } = {}) {
    return {
        activate: ["systemctl daemon-reload", `systemctl enable ${unit}`, `systemctl restart ${unit}`],
        rollBack: ["systemctl daemon-reload"],
        deactivate: [`systemctl disable --now ${unit}`],
        afterRemove: ["systemctl daemon-reload", ...(options.stopFails ? [`systemctl reset-failed ${unit} 2>/dev/null || true`] : [])],
    };
}

/** nginx reads its changed files only after `nginx -t` passed; a removal reloads if the rest still checks. */
export const nginxReload = {
    activate: ["nginx -t", "systemctl reload nginx"],
    afterRemove: "nginx -t && systemctl reload nginx",
};

/** `server_tokens off` for all of nginx's http block (its default server too), unless nginx.conf sets server_tokens itself. */
export function nginxServerTokensOff(file: string, nginxTest = "nginx -t"): string {
    return render("scripts/nginx-server-tokens.sh.njk", { file, nginxTest });
}

/** Records this host's nginx workers (the ones the next reload retires), for `nginxDrain` in the same script: in `<pidsFile>.$$`. */
export function nginxRecordWorkers(pidsFile: string): string {
    return render("scripts/nginx-workers.sh.njk", { pidsFile, nginxPidFile: hostPaths.nginxPidFile });
}

/** Waits (bounded) until the workers `nginxRecordWorkers` recorded have finished their requests and exited. */
export function nginxDrain(pidsFile: string, seconds = 120): string {
    return render("scripts/nginx-drain.sh.njk", { seconds, pidsFile });
}

/** Waits (bounded) until no nginx worker that an earlier reload retired is left. */
export function nginxDrainRetired(seconds = 120): string {
    return render("scripts/nginx-drain-retired.sh.njk", { seconds, nginxPidFile: hostPaths.nginxPidFile });
}

/** Waits (bounded) for a unix socket, showing the unit's journal if it never appears. */
export function waitForSocket(socket: string, what: string, unit: string, seconds = 30): string {
    return render("scripts/wait-socket.sh.njk", { socket, seconds, what, unit });
}

/** Waits (bounded) until a model server on this host answers its health URL, showing the end of its journal if it never does. */
export function waitForModelServer(port: number, what: string, unit: string, seconds: number): string {
    return render("scripts/wait-http.sh.njk", { url: `http://127.0.0.1:${port}/health`, seconds, what, unit, journalLines: 50 });
}

export interface RolloutStep {
    service: string;
    /** For messages and the lock's owner: `chat replica 1`. */
    label: string;
    lockDir: string;
    /** The same for every replica restarting for one config change: a failed roll stops the others of that change only. */
    rolloutId: string;
    /** Router shell: out of service, requests in flight finished. */
    leave: string;
    /** Router shell: back in service, healthy; fails when it does not get there in time. */
    join: string;
    readinessTimeoutSeconds: number;
}

/**
 * The scripts around one replica's restart for a new config, run on the gateway: `before` waits for the
 * service's rollout lock and takes the replica out; `after` puts it back and releases the lock, or
 * marks the roll failed so the replicas still waiting keep their config.
 */
export function rolloutScripts(step: RolloutStep): { before: string; after: string } {
    return {
        // Long enough for every other replica's restart, one after another.
        before: render("scripts/rollout-before.sh.njk", { ...step, waitSeconds: 64 * (step.readinessTimeoutSeconds + 660) }),
        after: render("scripts/rollout-after.sh.njk", step),
    };
}

/**
 * The unprivileged system user a kind of process runs as: `create` (idempotent) before the first of them
 * starts; `remove` after the last is gone (`whenGone`: only once that path no longer exists). `gpus` adds
 * it to the groups GPU device files may belong to.
 */
export function systemUser(user: string, what: string, options: { gpus?: boolean; whenGone?: string } = {}) {
    return {
        create: render("scripts/system-user.sh.njk", { user, what, gpuGroups: options.gpus ? gpuDeviceGroups : [] }),
        remove: render("scripts/system-user-remove.sh.njk", { user, what, whenGone: options.whenGone ?? "" }),
    };
}

/** Makes directories root wrote searchable (0755) for the unprivileged user that reads below them. */
export function searchableDirs(user: string, dirs: string[]): string {
    return render("scripts/searchable-dirs.sh.njk", { user, dirs });
}

/** Prints the SSH host key `host:port` presents to the host this runs on (`<type> <base64>`), for a step to learn it. */
export function sshHostKeyScan(host: string, port: number): string {
    return render("scripts/ssh-host-key.sh.njk", { host, port });
}

/** Removes each directory (in the order given: deepest first) that is empty; one that still holds anything stays. */
export function removeEmptyDirs(dirs: string[]): string {
    return render("scripts/empty-dirs-remove.sh.njk", { dirs });
}
