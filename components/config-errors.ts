// Turns zod issues into one readable line each: path, the value found, and what is allowed.
import type { ZodIssue } from "zod";

type PathPart = string | number;

/** Values under these keys are never echoed back: keys, certificates, tokens, and env (which holds HF_TOKEN and the like). */
const secretKeys = new Set(["privateKey", "certificate", "tokens", "tls", "env"]);

/** `["services", 1, "replicas"]` → `services[1].replicas`. */
export function formatPath(path: PathPart[]): string {
    return path.reduce<string>((out, part) => (typeof part === "number" ? `${out}[${part}]` : out ? `${out}.${part}` : part), "") || "(top level)";
}

function valueAt(input: unknown, path: PathPart[]): { found: boolean; value?: unknown } {
    let current: unknown = input;
    for (const part of path) {
        if (current === null || typeof current !== "object" || !(part in (current as object))) {
            return { found: false };
        }
        current = (current as Record<PathPart, unknown>)[part];
    }
    return { found: true, value: current };
}

function describeValue(path: PathPart[], input: unknown): string {
    const { found, value } = valueAt(input, path);
    if (!found || value === undefined) {
        return "missing";
    }
    if (path.some((p) => typeof p === "string" && secretKeys.has(p))) {
        return "got a secret value";
    }
    const text = JSON.stringify(value) ?? String(value);
    return `got ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

export function formatIssues(issues: ZodIssue[], input: unknown, pathPrefix: PathPart[]): string[] {
    const lines: string[] = [];
    for (const issue of issues) {
        if (issue.code === "unrecognized_keys") {
            for (const key of issue.keys) {
                lines.push(`${formatPath([...pathPrefix, ...issue.path, key])}: unknown key; remove it or check its spelling against the config reference`);
            }
            continue;
        }
        if (issue.code === "invalid_union" && issue.unionErrors.length > 0) {
            // A union of an object shape and something else: report the branch that got furthest.
            const deepest = issue.unionErrors
                .flatMap((e) => e.issues)
                .filter((i) => i.path.length > issue.path.length)
                .sort((a, b) => b.path.length - a.path.length);
            if (deepest.length > 0) {
                lines.push(...formatIssues([deepest[0]], input, pathPrefix));
                continue;
            }
        }
        const path = issue.code === "invalid_union_discriminator" && issue.path.length === 0 ? ["backend"] : issue.path;
        const where = formatPath([...pathPrefix, ...path]);
        lines.push(issue.message === "Required" ? `${where}: required but missing` : `${where}: ${issue.message} (${describeValue(path, input)})`);
    }
    return [...new Set(lines)];
}
