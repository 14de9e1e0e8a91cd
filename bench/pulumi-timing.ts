// Where the wall time of `pulumi preview` and `pulumi up` goes: the engine's own trace (--otel-traces,
// nanosecond spans of its RPCs) and event log (which resource each provider call was for).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { PulumiProject } from "../test/helpers/pulumi-cli";

export interface Span {
    service: string;
    name: string;
    start: number;
    end: number;
    /** A plugin start's kind: "language" or "resource". */
    kind?: string;
}

/** The spans of an OTLP/JSON file, one export request per line; times in seconds. */
export function parseSpans(text: string): Span[] {
    const spans: Span[] = [];
    for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        const request = JSON.parse(line) as {
            resourceSpans?: {
                resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
                scopeSpans?: {
                    spans?: {
                        name: string;
                        startTimeUnixNano: string;
                        endTimeUnixNano: string;
                        attributes?: { key: string; value: { stringValue?: string } }[];
                    }[];
                }[];
            }[];
        };
        for (const rs of request.resourceSpans ?? []) {
            const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "";
            for (const ss of rs.scopeSpans ?? []) {
                for (const s of ss.spans ?? []) {
                    spans.push({
                        service,
                        name: s.name,
                        start: Number(BigInt(s.startTimeUnixNano) / 1000n) / 1e6,
                        end: Number(BigInt(s.endTimeUnixNano) / 1000n) / 1e6,
                        kind: s.attributes?.find((a) => a.key === "kind")?.value.stringValue,
                    });
                }
            }
        }
    }
    return spans.sort((a, b) => a.start - b.start);
}

/** The resource operations of an event log, in the order the engine began them: `create chat-replica-1-process`. */
export function operationsOf(eventLog: string): { op: string; name: string; type: string }[] {
    const ops: { op: string; name: string; type: string }[] = [];
    for (const line of eventLog.split("\n")) {
        if (!line.includes('"resourcePreEvent"')) continue;
        const event = JSON.parse(line) as { resourcePreEvent?: { metadata: { op: string; urn: string; type: string } } };
        const m = event.resourcePreEvent?.metadata;
        if (m && m.type.startsWith("pulumi-nodejs:dynamic/") && ["create", "update", "delete"].includes(m.op)) {
            ops.push({ op: m.op, name: m.urn.split("::").pop() ?? m.urn, type: m.type.split(/[:/]/).pop() ?? m.type });
        }
    }
    return ops;
}

export interface PulumiTiming {
    wallSeconds: number;
    /** node started → the program registered its first resource after the stack: loading (and type-checking) the program. */
    programLoadSeconds: number;
    /** Starting the dynamic-provider plugin (a second node process that loads the providers). */
    providerStartSeconds: number;
    /** Sums over provider calls: Check and Diff (every resource, every run) and the changes. */
    checkDiffSeconds: number;
    changeSeconds: number;
    /** Each change, named: `create chat-replica-1-process` and its seconds, in the order they began. */
    changes: { step: string; seconds: number }[];
    /** From the program's first resource after the stack to its last: registering them all (and, in up, the changes they wait for). */
    registrationSeconds: number;
    resourcesRegistered: number;
}

/** The breakdown of one run from its trace and event log. */
export function timingOf(wallSeconds: number, spans: Span[], eventLog: string): PulumiTiming {
    const exec = spans.find((s) => s.name === "execNodejs");
    const registrations = spans.filter((s) => s.service === "pulumi-language-host" && s.name === "/pulumirpc.ResourceMonitor/RegisterResource");
    const cli = (method: string) => spans.filter((s) => s.service === "pulumi-cli" && s.name === `pulumirpc.ResourceProvider/${method}`);
    const sum = (list: Span[]) => list.reduce((t, s) => t + (s.end - s.start), 0);
    const providerStart = spans.filter((s) => s.service === "pulumi-cli" && s.name === "newPlugin" && s.kind === "resource");
    const changeSpans = [...cli("Create"), ...cli("Update"), ...cli("Delete")].sort((a, b) => a.start - b.start);
    const ops = operationsOf(eventLog);
    return {
        wallSeconds,
        programLoadSeconds: exec && registrations[1] ? registrations[1].start - exec.start : NaN,
        providerStartSeconds: sum(providerStart),
        checkDiffSeconds: sum(cli("Check")) + sum(cli("Diff")),
        changeSeconds: sum(changeSpans),
        changes: changeSpans.map((s, i) => ({ step: ops[i] ? `${ops[i].op} ${ops[i].name}` : `change ${i}`, seconds: s.end - s.start })),
        registrationSeconds: registrations[1] ? Math.max(...registrations.map((s) => s.end)) - registrations[1].start : NaN,
        resourcesRegistered: registrations.length,
    };
}

/** Runs `pulumi <args>` traced; resolves with its output and the breakdown. */
export async function timedPulumi(project: PulumiProject, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; timing: PulumiTiming }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-bench-trace-"));
    const trace = path.join(dir, "trace.json");
    const events = path.join(dir, "events.jsonl");
    const saved = { ...process.env };
    // --event-log is one of the CLI's debug flags.
    Object.assign(process.env, { PULUMI_DEBUG_COMMANDS: "true", ...env });
    try {
        const started = process.hrtime.bigint();
        const { stdout } = await project.run([...args, "--otel-traces", `file://${trace}`, "--event-log", events], 1800000);
        const wall = Number(process.hrtime.bigint() - started) / 1e9;
        const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
        return { stdout, timing: timingOf(wall, parseSpans(read(trace)), read(events)) };
    } finally {
        for (const key of Object.keys(process.env)) {
            if (!(key in saved)) delete process.env[key];
        }
        Object.assign(process.env, saved);
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
