// What the figures were measured on: this machine, the versions on the path, and who else was running.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { sandboxState } from "../test/helpers/sandbox";

export interface Machine {
    cpu: string;
    cores: number;
    memory: string;
    kernel: string;
    node: string;
    pulumi: string;
}

export function describeMachine(pulumiBin: string): Machine {
    const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
    const models = [...cpuinfo.matchAll(/^model name\s*:\s*(.*)$/gm)].map((m) => m[1].trim());
    const memKb = Number(/^MemTotal:\s*(\d+) kB/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1] ?? NaN);
    let pulumi = "?";
    try {
        pulumi = execFileSync(path.join(pulumiBin, "pulumi"), ["version"], { encoding: "utf8" }).trim();
    } catch {
        /* reported as ? */
    }
    return {
        cpu: models[0] ?? "?",
        cores: models.length,
        memory: `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
        kernel: os.release(),
        node: process.version,
        pulumi,
    };
}

/** The other sandboxes on this machine right now (their claims), by cache directory. */
export function otherSandboxes(): string[] {
    const registry = "/run/sglang-gateway-sandbox";
    const mine = sandboxState().id;
    if (!fs.existsSync(registry)) return [];
    return (
        fs
            .readdirSync(registry)
            // Claims are named by the 6 hex digits of a cache path's hash (sandbox.sh); the rest is its lock.
            .filter((id) => /^[0-9a-f]{6}$/.test(id) && id !== mine)
            .map((id) => /^cache=(.*)$/m.exec(fs.readFileSync(path.join(registry, id), "utf8"))?.[1] ?? id)
    );
}

/** The 1-minute load average: how busy the machine was. */
export function loadAverage(): number {
    return os.loadavg()[0];
}
