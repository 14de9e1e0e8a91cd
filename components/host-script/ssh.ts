// SSH from inside dynamic providers: connect (optionally through a bastion) and run scripts as root.
// These functions are serialized into provider state: modules are `require`d inside them.
import type { Client } from "ssh2";

/** SSH access with every value known, as dynamic providers receive it. */
export interface SshTarget {
    host: string;
    port?: number;
    user?: string;
    privateKey: string;
    /** The machine's identity beyond its address (an EC2 instance id); only diff reads it. */
    hostId?: string;
    /** The SSH host key it must present (`ssh-ed25519 AAAA…`), given in config or pinned at first contact; absent: learned now. */
    hostKey?: string;
    proxy?: { host: string; port?: number; user?: string; privateKey: string; hostKey?: string };
}

/** An open connection, and the host key the host presented (what a pin records). */
export type SshClient = Client & { presentedHostKey?: string };

/** A host key as `<type> <base64>`, whatever comment or spacing it came with. */
export function keyLine(text: string): string {
    const [type, blob] = text.trim().split(/\s+/);
    return `${type} ${blob ?? ""}`;
}

/** OpenSSH's fingerprint of a key line: `SHA256:<base64 without padding>`. */
export function hostKeyFingerprint(line: string): string {
    const crypto: typeof import("crypto") = require("crypto");
    const blob = Buffer.from(keyLine(line).split(" ")[1], "base64");
    return `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Why a presented host key is refused, or undefined when it is the expected one (or none is expected). */
export function hostKeyProblem(target: { host: string; port?: number; user?: string }, expected: string | undefined, presented: string): string | undefined {
    if (expected === undefined || keyLine(expected) === keyLine(presented)) {
        return undefined;
    }
    const where = describeTarget(target);
    return (
        `the SSH host key of ${where} changed: it presented ${keyLine(presented).split(" ")[0]} ${hostKeyFingerprint(presented)}, and this stack expects ` +
        `${hostKeyFingerprint(expected)} (pinned when it first connected, or given as hostKey). If the host was rebuilt on purpose, set its hostKey ` +
        `to the new key (\`ssh-keyscan -p ${target.port ?? 22} ${target.host}\`) and run pulumi up again; otherwise something else answers at that address`
    );
}

export interface ScriptResult {
    code: number;
    stdout: string;
    stderr: string;
}

function describeTarget(target: { host: string; port?: number; user?: string }): string {
    return `${target.user ?? "root"}@${target.host}:${target.port ?? 22}`;
}

/** Opens an SSH connection; through `proxy` when given (the bastion forwards to the target). */
export async function openSsh(target: SshTarget, attempts = 20): Promise<SshClient> {
    const ssh2 = require("ssh2") as typeof import("ssh2");
    const connect = (
        t: { host: string; port?: number; user?: string; privateKey: string; hostKey?: string },
        sock?: import("stream").Duplex,
    ): Promise<SshClient> =>
        new Promise((resolve, reject) => {
            const client: SshClient = new ssh2.Client();
            let refusedKey: string | undefined;
            client.once("ready", () => resolve(client));
            client.once("error", (err: Error & { code?: string; level?: string }) =>
                reject(
                    refusedKey
                        ? Object.assign(new Error(refusedKey), { retryable: false })
                        : Object.assign(new Error(`cannot reach ${describeTarget(t)} over SSH: ${err.message}`), {
                              retryable: Boolean(err.code) || err.level === "client-timeout",
                          }),
                ),
            );
            try {
                client.connect({
                    host: t.host,
                    port: t.port ?? 22,
                    username: t.user ?? "root",
                    privateKey: t.privateKey,
                    readyTimeout: 30000,
                    keepaliveInterval: 10000,
                    // Learn the key on first contact; refuse another one once it is pinned (or given).
                    hostVerifier: (key: Buffer) => {
                        const parsed = ssh2.utils.parseKey(key);
                        const presented =
                            parsed instanceof Error ? `unknown ${key.toString("base64")}` : `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
                        client.presentedHostKey = presented;
                        refusedKey = hostKeyProblem(t, t.hostKey, presented);
                        return refusedKey === undefined;
                    },
                    ...(sock ? { sock } : {}),
                });
            } catch (err) {
                reject(new Error(`cannot connect to ${describeTarget(t)} over SSH: ${(err as Error).message}`));
            }
        });
    // Hosts that are still booting refuse connections for a moment: retry, bounded.
    const withRetry = async (attempt: () => Promise<SshClient>): Promise<SshClient> => {
        for (let i = 1; ; i++) {
            try {
                return await attempt();
            } catch (err) {
                // Network errors (refused, timed out) may pass; a bad key or a refused login will not.
                if (i >= attempts || !(err as { retryable?: boolean }).retryable) {
                    throw err;
                }
                await new Promise((r) => setTimeout(r, 1500));
            }
        }
    };
    if (!target.proxy) {
        return withRetry(() => connect(target));
    }
    const proxy = target.proxy;
    // A new instance behind the bastion may not run sshd yet: retry the whole hop, not only the bastion.
    return withRetry(async () => {
        const bastion = await connect(proxy);
        try {
            const stream = await new Promise<import("stream").Duplex>((resolve, reject) =>
                bastion.forwardOut("127.0.0.1", 0, target.host, target.port ?? 22, (err, s) => (err ? reject(err) : resolve(s))),
            );
            const client = await connect(target, stream);
            client.once("close", () => bastion.end());
            return client;
        } catch (err) {
            bastion.end();
            // A refused login stays final; a target not answering yet (or a failed hop) may pass.
            const retryable = (err as { retryable?: boolean }).retryable ?? true;
            throw Object.assign(new Error(`cannot reach ${describeTarget(target)} through ${describeTarget(proxy)}: ${(err as Error).message}`), { retryable });
        }
    });
}

/** The shell that runs a script read from standard input as root, for a login user. */
export function rootShell(user: string | undefined): string {
    return (user ?? "root") === "root" ? "bash -s" : "sudo -n bash -s";
}

/**
 * Runs a script as root, passing it on standard input: never on a command line, where sudo's log
 * and /proc/<pid>/cmdline would show the secrets in it. Braces make bash read the whole script
 * before it runs any of it, so no command inside can swallow the rest as its input.
 */
export function runScript(client: Client, user: string | undefined, script: string, args: string[] = []): Promise<ScriptResult> {
    // Arguments are the provider's own plain words (`applied`), never user values.
    const words = args.filter((a) => /^[a-z]+$/.test(a));
    return runCommand(client, [rootShell(user), ...words].join(" "), scriptInput(script));
}

/** What `bash -s` reads: the script as one compound command. */
export function scriptInput(script: string): string {
    return `{\n${script}\n}\n`;
}

/** Runs `command` over the connection, with `input` on its standard input, and collects its output and exit code. */
export function runCommand(client: Client, command: string, input?: string): Promise<ScriptResult> {
    return new Promise((resolve, reject) =>
        client.exec(command, (err, stream) => {
            if (err) {
                return reject(err);
            }
            stream.end(input ?? "");
            let stdout = "";
            let stderr = "";
            stream.on("data", (d: Buffer) => (stdout += d.toString()));
            stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            stream.on("close", (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
        }),
    );
}
