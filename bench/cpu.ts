// CPU time of the processes on the data path, read on this machine from /proc: the sandbox hosts are
// containers whose processes this machine sees, each in the systemd unit it runs under. Reading here
// costs the hosts nothing (no SSH inside a measurement).
import { execFileSync } from "child_process";
import * as fs from "fs";
import { sandboxState, type SandboxHost } from "../test/helpers/sandbox";

/** What a process is on the data path. */
export type PathProcess = "nginx" | "router" | "ssh" | "sshd" | "worker" | "journald";
/** journald: what the processes on the path log (the router logs every request) costs it too. */
export const pathProcesses: readonly PathProcess[] = ["nginx", "router", "ssh", "sshd", "worker", "journald"];

/** The data-path role of a process from its host, its unit's cgroup path and its command line; undefined for the rest. */
export function classify(host: SandboxHost, cgroup: string, cmdline: string): PathProcess | undefined {
    const unit = cgroup.split("/").pop() ?? "";
    if (unit === "systemd-journald.service") return "journald";
    if (host === "gw") {
        if (unit === "nginx.service") return "nginx";
        // The routers, not their worker reconcile (`…-router-<service>_reconcile`: `_` is in no service name), a loop beside them.
        if (/^sglang-gateway-router2?-[^_]+\.service$/.test(unit)) return "router";
        if (/^sglang-gateway-tunnel-.*\.service$/.test(unit)) return "ssh";
        return undefined;
    }
    if (/^sglang-gateway-.*-replica-\d+\.service$/.test(unit)) return "worker";
    // The tunnel's end on the replica host, the process that carries its channels: "sshd: root" for a session
    // without a command (`ssh -N`), "sshd: root@pts/0" for ours (a pty session); not "sshd: root@notty", the
    // benchmark's own command sessions (the load generator's), nor "sshd: root [priv]", the monitor.
    if (cgroup.includes("/user.slice/") && /^sshd: [^\s@]+(@pts\/\d+)?$/.test(cmdline.trim())) return "sshd";
    return undefined;
}

/** utime + stime (clock ticks) of a /proc/<pid>/stat line; the command name may hold spaces and parentheses. */
export function cpuTicks(stat: string): number {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    return Number(fields[11]) + Number(fields[12]);
}

export type CpuSample = Map<number, { process: PathProcess; ticks: number }>;

const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** Every data-path process of this cache's sandbox, with its CPU so far. */
export function sampleCpu(): CpuSample {
    const state = sandboxState();
    const machines = new Map<string, SandboxHost>(Object.entries(state.netns).map(([host, name]) => [name, host as SandboxHost]));
    const sample: CpuSample = new Map();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const line = fs
                .readFileSync(`/proc/${entry}/cgroup`, "utf8")
                .split("\n")
                .find((l) => l.includes(":name=systemd:") || l.startsWith("0::"));
            const cgroup = line?.split(":").slice(2).join(":") ?? "";
            const machine = cgroup.split("/")[1] ?? "";
            const host = machines.get(machine);
            if (!host) continue;
            const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
            const role = classify(host, cgroup, cmdline);
            if (role) {
                sample.set(Number(entry), { process: role, ticks: cpuTicks(fs.readFileSync(`/proc/${entry}/stat`, "utf8")) });
            }
        } catch {
            // The process ended while we looked.
        }
    }
    return sample;
}

/** CPU per process kind between two samples, microseconds; a process started in between counts from zero. */
export function cpuBetween(before: CpuSample, after: CpuSample): Record<PathProcess, number> {
    const total = Object.fromEntries(pathProcesses.map((p) => [p, 0])) as Record<PathProcess, number>;
    for (const [pid, now] of after) {
        const then = before.get(pid);
        const ticks = then && then.process === now.process ? now.ticks - then.ticks : now.ticks;
        total[now.process] += (ticks * 1e6) / ticksPerSecond;
    }
    return total;
}

/** Bytes the gateway's logs hold: the router's own log files, and nginx's (the access log of each service). */
export interface LogBytes {
    router: number;
    nginx: number;
}

function bytesUnder(dir: string): number {
    if (!fs.existsSync(dir)) return 0;
    return fs.readdirSync(dir, { withFileTypes: true }).reduce((total, entry) => {
        const full = `${dir}/${entry.name}`;
        return total + (entry.isDirectory() ? bytesUnder(full) : entry.isFile() ? fs.statSync(full).size : 0);
    }, 0);
}

/** Read on this machine: each sandbox host's filesystem is a directory of the cache (sandbox.sh). */
export function gatewayLogBytes(): LogBytes {
    const root = `${sandboxState().cache}/sandbox/hosts/gw/root`;
    return { router: bytesUnder(`${root}/var/log/sglang-gateway`), nginx: bytesUnder(`${root}/var/log/nginx`) };
}
