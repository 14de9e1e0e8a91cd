// Scaling cost: N→N+1 replicas for several N (fake workers spread over r1 and r2). What `pulumi preview`
// plans (must not grow with N), and the wall time of preview and up, broken down by the engine's trace.
import * as fs from "fs";
import * as path from "path";
import { maxReplicas } from "../components/naming";
import type { PulumiProject } from "../test/helpers/pulumi-cli";
import type { SandboxHost } from "../test/helpers/sandbox";
import type { HostSession } from "./hosts";
import type { BenchMode } from "./mode";
import { timedPulumi, type PulumiTiming } from "./pulumi-timing";
import { fmt, median, pct, ratio } from "./stats";
import type { Table } from "./table";
import { benchStack } from "./topology";

export type ScalingKind = "bulk up" | "preview" | "preview, transpile-only" | "up" | "down";

export interface ScalingRun {
    kind: ScalingKind;
    from: number;
    to: number;
    repetition: number;
    timing: PulumiTiming;
    /** Preview: the steps that are not `same`, by operation and resource type (`create HostScript`). */
    planned?: Record<string, number>;
    /** SSH logins the run made on each host (sshd's journal). */
    sshLogins?: Record<SandboxHost, number>;
    /** Up: the size of the stack's state file afterwards (the engine rewrites it as steps complete), and of the dynamic providers' serialized code in it. */
    stateBytes?: number;
    stateProviderBytes?: number;
}

export interface ScalingResult {
    runs: ScalingRun[];
    /** Why the largest N was not reached, if it was not. */
    stoppedAt?: string;
}

/** The N→N+1 step measured for N: at the maximum (64 replicas a service) it is N-1→N. */
export function scalingStep(n: number): { from: number; to: number } {
    const from = Math.min(n, maxReplicas - 1);
    return { from, to: from + 1 };
}

/** Steps of `pulumi preview --json` that change something, by operation and type. */
export function plannedChanges(previewJson: string): Record<string, number> {
    const parsed = JSON.parse(previewJson) as { steps?: { op: string; newState?: { type: string }; oldState?: { type: string } }[] };
    const planned: Record<string, number> = {};
    for (const s of parsed.steps ?? []) {
        if (s.op === "same") continue;
        const type = (s.newState?.type ?? s.oldState?.type ?? "?").split(/[:/]/).pop() ?? "?";
        const key = `${s.op} ${type}`;
        planned[key] = (planned[key] ?? 0) + 1;
    }
    return planned;
}

/** The bytes of every dynamic resource's serialized provider (`__provider`, in its inputs and its outputs) in a state file. */
export function providerBytes(stateText: string): number {
    const state = JSON.parse(stateText) as {
        checkpoint?: { latest?: { resources?: { inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } };
    };
    let bytes = 0;
    for (const resource of state.checkpoint?.latest?.resources ?? []) {
        for (const props of [resource.inputs, resource.outputs]) {
            const provider = props?.__provider;
            bytes += provider === undefined ? 0 : JSON.stringify(provider).length;
        }
    }
    return bytes;
}

/** The stack's checkpoint in the project's local backend: its size, and what the serialized providers take of it. */
function stateSize(project: PulumiProject): { stateBytes: number; stateProviderBytes: number } {
    const find = (dir: string): string | undefined => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) {
                const found = find(full);
                if (found) return found;
            } else if (entry.name === `${project.stack}.json` && full.includes(`${path.sep}stacks${path.sep}`)) {
                return full;
            }
        }
        return undefined;
    };
    const file = find(project.stateDir);
    if (!file) return { stateBytes: NaN, stateProviderBytes: NaN };
    const text = fs.readFileSync(file, "utf8");
    return { stateBytes: Buffer.byteLength(text), stateProviderBytes: providerBytes(text) };
}

async function sshLogins(sessions: Record<SandboxHost, HostSession>): Promise<Record<SandboxHost, number>> {
    const count = async (s: HostSession) => Number((await s.run("journalctl -u ssh -o cat --no-pager | grep -c '^Accepted publickey' || true")).trim());
    const [gw, r1, r2] = await Promise.all([count(sessions.gw), count(sessions.r1), count(sessions.r2)]);
    return { gw, r1, r2 };
}

export async function measureScaling(
    project: PulumiProject,
    sessions: Record<SandboxHost, HostSession>,
    mode: BenchMode,
    deployed: number,
): Promise<ScalingResult> {
    const runs: ScalingRun[] = [];
    let current = deployed;
    const up = async (kind: ScalingKind, to: number, repetition: number) => {
        const from = current;
        project.setConfig(benchStack(to));
        const before = await sshLogins(sessions);
        const { timing } = await timedPulumi(project, ["up", "--yes", "--skip-preview"]);
        const after = await sshLogins(sessions);
        current = to;
        const logins = { gw: after.gw - before.gw, r1: after.r1 - before.r1, r2: after.r2 - before.r2 };
        runs.push({ kind, from, to, repetition, timing, sshLogins: logins, ...stateSize(project) });
        console.error(`bench: ${kind} ${from}→${to}: ${fmt(timing.wallSeconds, 1)} s (program load ${fmt(timing.programLoadSeconds, 1)} s)`);
    };
    try {
        for (const n of mode.scalingFrom) {
            const { from, to } = scalingStep(n);
            if (current !== from) {
                await up("bulk up", from, 0);
            }
            project.setConfig(benchStack(to));
            for (let repetition = 0; repetition < mode.scalingRepetitions; repetition++) {
                const before = await sshLogins(sessions);
                const { stdout, timing } = await timedPulumi(project, ["preview", "--json"]);
                const after = await sshLogins(sessions);
                const logins = { gw: after.gw - before.gw, r1: after.r1 - before.r1, r2: after.r2 - before.r2 };
                runs.push({ kind: "preview", from, to, repetition, timing, planned: plannedChanges(stdout), sshLogins: logins });
                console.error(`bench: preview ${from}→${to}: ${fmt(timing.wallSeconds, 1)} s, planned ${JSON.stringify(plannedChanges(stdout))}`);
            }
            for (let repetition = 0; repetition < mode.scalingRepetitions; repetition++) {
                const { timing } = await timedPulumi(project, ["preview", "--json"], { PULUMI_NODEJS_TRANSPILE_ONLY: "true" });
                runs.push({ kind: "preview, transpile-only", from, to, repetition, timing });
            }
            for (let repetition = 0; repetition < mode.scalingRepetitions; repetition++) {
                await up("up", to, repetition);
                await up("down", from, repetition);
            }
        }
        return { runs };
    } catch (err) {
        const why = `stopped at ${current} replicas: ${(err as Error).message.split("\n").slice(0, 12).join("\n")}`;
        console.error(`bench: scaling ${why}`);
        return { runs, stoppedAt: why };
    }
}

/** Per N: what the preview plans and how long preview and up take (medians), with up's breakdown. */
export function scalingTable(result: ScalingResult): Table {
    const steps = [...new Set(result.runs.filter((r) => r.kind === "preview").map((r) => `${r.from}→${r.to}`))];
    const rows = steps.map((step) => {
        const of = (kind: ScalingKind) =>
            result.runs.filter((r) => r.kind === kind && `${r.from}→${r.to}` === (kind === "down" ? step.split("→").reverse().join("→") : step));
        const m = (kind: ScalingKind, f: (t: PulumiTiming) => number, digits = 1) => fmt(median(of(kind).map((r) => f(r.timing))), digits);
        const planned = of("preview")[0]?.planned ?? {};
        const changed = Object.values(planned).reduce((a, b) => a + b, 0);
        const logins = (kind: ScalingKind) => {
            const l = of(kind)[0]?.sshLogins;
            return l ? `${l.gw}/${l.r1 + l.r2}` : "–";
        };
        return [
            step,
            `${changed} (${Object.entries(planned)
                .map(([k, v]) => `${v} ${k}`)
                .join(", ")})`,
            m("preview", (t) => t.resourcesRegistered, 0),
            m("preview", (t) => t.wallSeconds),
            m("preview", (t) => t.programLoadSeconds),
            m("preview", (t) => t.registrationSeconds),
            m("preview, transpile-only", (t) => t.wallSeconds),
            logins("preview"),
            m("up", (t) => t.wallSeconds),
            m("up", (t) => t.programLoadSeconds),
            m("up", (t) => t.providerStartSeconds),
            m("up", (t) => t.changeSeconds),
            m("up", (t) => t.wallSeconds - t.programLoadSeconds - t.providerStartSeconds - t.changeSeconds),
            fmt(median(of("up").map((r) => (r.stateBytes ?? NaN) / 1e6)), 1),
            pct(median(of("up").map((r) => ratio(r.stateProviderBytes ?? NaN, r.stateBytes ?? NaN)))),
            logins("up"),
            m("down", (t) => t.wallSeconds),
        ];
    });
    return {
        headers: [
            "N→N+1",
            "changed in preview",
            "resources",
            "preview s",
            "preview: program load s",
            "preview: registering all s",
            "preview s, transpile-only",
            "preview SSH logins gw/replicas",
            "up s",
            "up: program load s",
            "up: provider start s",
            "up: changes s",
            "up: rest s",
            "state MB",
            "of it serialized providers",
            "up SSH logins gw/replicas",
            "down N+1→N s",
        ],
        rows,
        align: ["left", "left", ...Array<"right">(15).fill("right")],
    };
}

/** The replica changes of up (N→N+1) by step, median seconds: which one waits. */
export function changeStepsTable(result: ScalingResult): Table {
    const steps = [...new Set(result.runs.filter((r) => r.kind === "up").map((r) => `${r.from}→${r.to}`))];
    const kinds = ["process", "tunnel", "bridge", "worker"];
    const rows = steps.map((step) => {
        const ups = result.runs.filter((r) => r.kind === "up" && `${r.from}→${r.to}` === step);
        const downs = result.runs.filter((r) => r.kind === "down" && `${r.to}→${r.from}` === step);
        const of = (list: ScalingRun[], kind: string) =>
            fmt(median(list.map((r) => r.timing.changes.filter((c) => c.step.endsWith(`-${kind}`)).reduce((t, c) => t + c.seconds, 0))), 2);
        return [step, ...kinds.map((k) => of(ups, k)), ...kinds.map((k) => of(downs, k))];
    });
    return {
        headers: ["N→N+1", ...kinds.map((k) => `create ${k} s`), ...kinds.map((k) => `delete ${k} s`)],
        rows,
    };
}
