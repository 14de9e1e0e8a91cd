// Config problems as one readable line each (path, the value found, what is allowed), and the one
// parse-or-throw helper every entry point uses: the stack program and each component's args.
import * as pulumi from "@pulumi/pulumi";
import type { z, ZodIssue } from "zod";

export type PathPart = string | number;

/** A problem found after parsing, by a cross-field check. */
export interface Problem {
    path: PathPart[];
    message: string;
}

/**
 * Thrown with one line per problem; each line names the path, the value and what is allowed. A RunError:
 * `pulumi up` shows the message alone, not a stack trace, whether the stack program or a user's own
 * program constructed the component.
 */
/**
 * Invalid config or component args, every problem at once. A RunError, so `pulumi up` prints it without a
 * stack trace; it also carries what Pulumi's InputPropertiesError carries (the property path as the user wrote
 * it, and the reason), so a component provider (docs/multi-language.md) reports each as an input error.
 */
export class ConfigError extends pulumi.RunError {
    /** Per problem: the argument's path (`tokens[0]`, `pd.prefill.bootstrapPort`) and what is wrong there. */
    readonly errors: { propertyPath: string; reason: string }[];
    /** @internal Pulumi's brand for InputPropertiesError (its isInstance checks it, across SDK copies). */
    readonly __pulumiInputPropertiesError = true;

    constructor(readonly problems: string[]) {
        super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
        this.errors = problems.map((problem) => {
            // "Service chat: tokens[0]: expected ..." → the component's label goes, the path stays.
            const unlabelled = problem.replace(/^(Gateway|Service) [^:]+: /, "");
            const at = unlabelled.indexOf(": ");
            return at > 0 ? { propertyPath: unlabelled.slice(0, at), reason: unlabelled.slice(at + 2) } : { propertyPath: "", reason: unlabelled };
        });
    }
}

/**
 * Values under these keys are never echoed back: keys, the user's certificate (`tls`), tokens, env (which holds
 * HF_TOKEN and the like) and an ACME account's HMAC key. (`certificate` is the ACME choice: nothing secret.)
 */
const secretKeys = new Set(["privateKey", "tokens", "tls", "env", "hmacKey"]);

/** `["services", 1, "replicas"]` → `services[1].replicas`. */
export function formatPath(path: PathPart[]): string {
    return path.reduce<string>((out, part) => (typeof part === "number" ? `${out}[${part}]` : out ? `${out}.${part}` : part), "") || "(top level)";
}

/** Old spellings users already write, accepted beside the documented one: `{documented: alias}`. */
export type KeyAliases = Record<string, string>;

function childOf(current: unknown, part: PathPart, aliases: KeyAliases): { found: boolean; key: PathPart; value?: unknown } {
    if (current === null || typeof current !== "object") {
        return { found: false, key: part };
    }
    const record = current as Record<PathPart, unknown>;
    if (part in record) {
        return { found: true, key: part, value: record[part] };
    }
    const alias = typeof part === "string" ? aliases[part] : undefined;
    if (alias !== undefined && alias in record) {
        return { found: true, key: alias, value: record[alias] };
    }
    return { found: false, key: part };
}

/** The path as the user wrote it (an alias where they used one), and the value found there. */
function locate(input: unknown, path: PathPart[], aliases: KeyAliases): { written: PathPart[]; found: boolean; value?: unknown } {
    let current: unknown = input;
    const written: PathPart[] = [];
    let found = true;
    for (const part of path) {
        const child: { found: boolean; key: PathPart; value?: unknown } = found ? childOf(current, part, aliases) : { found: false, key: part };
        written.push(child.key);
        found = child.found;
        current = child.value;
    }
    return { written, found, value: found ? current : undefined };
}

function describeValue(located: { written: PathPart[]; found: boolean; value?: unknown }, at: PathPart[]): string {
    if (!located.found || located.value === undefined) {
        return "missing";
    }
    if ([...at, ...located.written].some((p) => typeof p === "string" && secretKeys.has(p))) {
        return "got a secret value";
    }
    if (isOutputLike(located.value)) {
        return "got a value known only at deploy time";
    }
    const text = JSON.stringify(located.value) ?? String(located.value);
    return `got ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

function isOutputLike(value: unknown): boolean {
    return value !== null && typeof value === "object" && (value as Record<string, unknown>).__pulumiOutput === true;
}

export interface FormatOptions {
    /** Prepended to every path, e.g. `["services", 0]`. */
    at?: PathPart[];
    aliases?: KeyAliases;
}

/** zod issues and check problems → one line each. */
export function formatIssues(issues: (ZodIssue | Problem)[], input: unknown, options: FormatOptions = {}): string[] {
    const at = options.at ?? [];
    const aliases = options.aliases ?? {};
    const lines: string[] = [];
    for (const issue of issues) {
        const zodIssue = issue as ZodIssue;
        if (zodIssue.code === "unrecognized_keys") {
            for (const key of zodIssue.keys) {
                lines.push(
                    `${formatPath([...at, ...locate(input, issue.path, aliases).written, key])}: unknown key; remove it or check its spelling against the config reference`,
                );
            }
            continue;
        }
        if (zodIssue.code === "invalid_union" && zodIssue.unionErrors.length > 0) {
            // A union of an object shape and something else: report the branch that got furthest.
            const deepest = zodIssue.unionErrors
                .flatMap((e) => e.issues)
                .filter((i) => i.path.length > issue.path.length)
                .sort((a, b) => b.path.length - a.path.length);
            if (deepest.length > 0) {
                lines.push(...formatIssues([deepest[0]], input, options));
                continue;
            }
        }
        const path = zodIssue.code === "invalid_union_discriminator" && issue.path.length === 0 ? ["backend"] : issue.path;
        const located = locate(input, path, aliases);
        const where = formatPath([...at, ...located.written]);
        lines.push(issue.message === "Required" ? `${where}: required but missing` : `${where}: ${issue.message} (${describeValue(located, at)})`);
    }
    return [...new Set(lines)];
}

export interface ParseOptions<T> extends FormatOptions {
    /** Prefix of every line, e.g. `Service chat` for component args. */
    label?: string;
    /** Cross-field checks on the parsed value; they run only once the shape is valid. */
    check?: (parsed: T) => Problem[];
}

/** Parses `input` with `schema`, runs the checks, and throws one ConfigError listing every problem. */
export function parseOrThrow<S extends z.ZodTypeAny>(schema: S, input: unknown, options: ParseOptions<z.output<S>> = {}): z.output<S> {
    const result = schema.safeParse(input);
    const problems = result.success ? (options.check?.(result.data) ?? []) : result.error.issues;
    if (problems.length > 0) {
        const lines = formatIssues(problems, input, options);
        throw new ConfigError(options.label ? lines.map((line) => `${options.label}: ${line}`) : lines);
    }
    return result.data;
}
