// SSH keys given as files (privateKeyPath): read at deploy time, before any resource needs them.
import * as fs from "fs";
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";

/** The text of the key file `path` names (`~` is the home directory); `where` names the setting in errors. */
export function readKeyFile(path: string, where: string): string {
    const file = path.replace(/^~(?=\/|$)/, os.homedir());
    try {
        return fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new ConfigError([`${where}: cannot read ${file}: ${(err as Error).message} (got "${path}")`]);
    }
}

/**
 * Every `privateKeyPath` in a settings tree (the gateway's, each replica host's) replaced by the file's
 * text as a secret `privateKey`. Problems name where, as `<where>.hosts[0].privateKeyPath`.
 */
export function readKeyFiles<T>(value: T, where: string): { value: T; problems: string[] } {
    const problems: string[] = [];
    const walk = (node: unknown, path: string): unknown => {
        if (node === null || typeof node !== "object" || pulumi.Output.isInstance(node)) {
            return node;
        }
        if (Array.isArray(node)) {
            return node.map((child, i) => walk(child, `${path}[${i}]`));
        }
        const record = node as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const [key, child] of Object.entries(record)) {
            if (key !== "privateKeyPath") {
                out[key] = walk(child, path ? `${path}.${key}` : key);
            }
        }
        if (typeof record.privateKeyPath === "string") {
            try {
                out.privateKey = pulumi.secret(readKeyFile(record.privateKeyPath, `${path ? `${path}.` : ""}privateKeyPath`));
            } catch (err) {
                problems.push(...(err instanceof ConfigError ? err.problems : [String(err)]));
            }
        }
        return out;
    };
    return { value: walk(value, where) as T, problems };
}

/** `readKeyFiles` for a component's settings: a problem throws a ConfigError labelled with the component. */
export function readKeyFilesOrThrow<T>(value: T, label: string): T {
    const { value: read, problems } = readKeyFiles(value, "");
    if (problems.length > 0) {
        throw new ConfigError(problems.map((p) => `${label}: ${p}`));
    }
    return read;
}
