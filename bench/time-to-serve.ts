// Time to serve: fresh sandbox hosts → `pulumi up` (gateway setup with the router install, the service,
// one replica and its registration) → the first successful request through the public listener, by step.
import { chat } from "../test/helpers/gateway-client";
import { PulumiProject } from "../test/helpers/pulumi-cli";
import { sandboxRun } from "../test/helpers/sandbox";
import type { BenchMode } from "./mode";
import { timedPulumi, type PulumiTiming } from "./pulumi-timing";
import { fmt, median } from "./stats";
import type { Table } from "./table";
import { benchStack } from "./topology";

export interface ServeRun {
    sandboxUpSeconds: number;
    up: PulumiTiming;
    /** From the end of `pulumi up` to the first 200 through the public listener (from this machine). */
    firstAnswerSeconds: number;
    firstAnswerAttempts: number;
}

export function sandboxCommand(command: "up" | "down"): number {
    const started = process.hrtime.bigint();
    const { status, stdout, stderr } = sandboxRun(command);
    if (status !== 0) {
        throw new Error(`bench: sandbox.sh ${command} failed (exit ${status}):\n${stdout}\n${stderr}`);
    }
    return Number(process.hrtime.bigint() - started) / 1e9;
}

async function firstAnswer(): Promise<{ seconds: number; attempts: number }> {
    const started = process.hrtime.bigint();
    const deadline = Date.now() + 120000;
    for (let attempts = 1; ; attempts++) {
        const answer = await chat().catch((err: Error) => ({ status: 0, body: err.message }));
        if (answer.status === 200) {
            return { seconds: Number(process.hrtime.bigint() - started) / 1e9, attempts };
        }
        if (Date.now() > deadline) {
            throw new Error(`bench: no successful request within 120 s of pulumi up (last: ${answer.status} ${answer.body.slice(0, 200)})`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

/**
 * `repetitions` times: hosts down and up (fresh), a new stack, up, first answer. Returns the runs and the
 * last project, deployed with one replica, for the measurements that follow.
 */
export async function measureTimeToServe(mode: BenchMode): Promise<{ runs: ServeRun[]; project: PulumiProject }> {
    const runs: ServeRun[] = [];
    let project: PulumiProject | undefined;
    for (let repetition = 0; repetition < mode.timeToServeRepetitions; repetition++) {
        project?.remove();
        sandboxCommand("down");
        const sandboxUpSeconds = sandboxCommand("up");
        project = new PulumiProject("bench");
        await project.init();
        project.setConfig(benchStack(1));
        const { timing } = await timedPulumi(project, ["up", "--yes", "--skip-preview"]);
        const first = await firstAnswer();
        runs.push({ sandboxUpSeconds, up: timing, firstAnswerSeconds: first.seconds, firstAnswerAttempts: first.attempts });
        console.error(
            `bench: time to serve ${repetition + 1}/${mode.timeToServeRepetitions}: sandbox up ${fmt(sandboxUpSeconds, 1)} s, ` +
                `pulumi up ${fmt(timing.wallSeconds, 1)} s, first answer +${fmt(first.seconds, 2)} s`,
        );
    }
    return { runs, project: project as PulumiProject };
}

/** Steps of a first deploy, each the median over the fresh sandboxes. */
export function serveTable(runs: ServeRun[]): Table {
    const m = (f: (r: ServeRun) => number, digits = 1) => fmt(median(runs.map(f)), digits);
    const change = (r: ServeRun, suffix: string) =>
        r.up.changes.filter((c) => c.step.startsWith("create ") && c.step.endsWith(suffix)).reduce((t, c) => t + c.seconds, 0);
    const steps: [string, (r: ServeRun) => number, number?][] = [
        ["(sandbox hosts up: systemd-nspawn boot, sshd answers; before the clock)", (r) => r.sandboxUpSeconds],
        ["pulumi up: node, program load (TypeScript type-check of the program)", (r) => r.up.programLoadSeconds],
        ["pulumi up: dynamic-provider plugin start", (r) => r.up.providerStartSeconds],
        ["gateway setup (nginx conf, python venv, pinned router install from the index)", (r) => change(r, "-setup")],
        ["service: router unit (started)", (r) => change(r, "-router")],
        ["service: nginx server block (reload)", (r) => change(r, "-server")],
        ["replica: model-server unit on its host (healthy)", (r) => change(r, "-process")],
        ["replica: SSH tunnel on the gateway (socket up)", (r) => change(r, "-tunnel")],
        ["replica: nginx bridge (reload)", (r) => change(r, "-bridge")],
        ["replica: router registration (healthy in the router)", (r) => change(r, "-worker")],
        [
            "pulumi up: the rest (engine, state, check/diff, waits between steps)",
            (r) => r.up.wallSeconds - r.up.programLoadSeconds - r.up.providerStartSeconds - r.up.changeSeconds,
        ],
        ["pulumi up, wall", (r) => r.up.wallSeconds],
        ["first successful request after up (from this machine)", (r) => r.firstAnswerSeconds, 2],
        ["fresh hosts → first answer", (r) => r.up.wallSeconds + r.firstAnswerSeconds],
    ];
    return {
        headers: ["step", `seconds (median of ${runs.length})`],
        rows: steps.map(([label, f, digits]) => [label, m(f, digits ?? 1)]),
    };
}
