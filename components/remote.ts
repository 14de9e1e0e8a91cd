// Files on a host, written and activated by one remote command, removed again on delete.
import * as pulumi from "@pulumi/pulumi";
import { openSsh, runScript, type SshTarget } from "./ssh-session";
import { render } from "./templates";

/** How to reach a host over SSH. */
export interface SshConnection {
    host: pulumi.Input<string>;
    port?: pulumi.Input<number>;
    user?: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** A bastion to connect through (e.g. the gateway, for replicas without a public address). */
    proxy?: pulumi.Input<{ host: pulumi.Input<string>; port?: pulumi.Input<number>; user?: pulumi.Input<string>; privateKey: pulumi.Input<string> }>;
}

/** An SSH connection with every value known. */
export type ResolvedSshConnection = pulumi.Unwrap<SshConnection>;

export interface HostFile {
    path: string;
    content: pulumi.Input<string>;
    /** Octal mode, e.g. "0644". */
    mode?: string;
}

export interface HostFilesArgs {
    connection: pulumi.Input<SshConnection>;
    /** What the files are, for logs and error messages, e.g. "bridge for chat replica 1". */
    description: string;
    files: HostFile[];
    /** Shell lines run after the files are written; any failure restores the previous files. */
    activate: string[];
    /** Shell lines run after a failed activation restored the files. */
    rollback?: string[];
    /** Shell lines run on delete before the files go (stop a unit, drain). */
    deactivate?: string[];
    /** Shell lines run on delete after the files are gone (reload). */
    afterRemove?: string[];
    /** Extra paths removed on delete besides the files. */
    removePaths?: string[];
    /** Shell lines run last on delete, without the host lock (bounded waits, e.g. request drain). */
    drain?: string[];
    /** Shell lines run first on delete, before taking the host lock (bounded waits). */
    waitFirst?: string[];
}

/** A heredoc delimiter that cannot occur in the content: it carries the content's hash. */
function heredocDelimiter(content: string): string {
    const crypto: typeof import("crypto") = require("crypto");
    return `SGLANG_GATEWAY_FILE_${crypto.createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
}

function withFinalNewline(text: string): string {
    return text.endsWith("\n") ? text : `${text}\n`;
}

/** The create/update script: pure, so tests can render and run it. */
export function applyScript(args: Omit<HostFilesArgs, "files" | "connection"> & { files: { path: string; content: string; mode?: string }[] }): string {
    return render("scripts/apply.sh.njk", {
        description: args.description,
        files: args.files.map((f) => ({ path: f.path, mode: f.mode ?? "0644", content: withFinalNewline(f.content), delimiter: heredocDelimiter(f.content) })),
        activate: args.activate,
        rollback: args.rollback ?? [],
    });
}

export function removeScript(args: Pick<HostFilesArgs, "description" | "deactivate" | "afterRemove" | "removePaths" | "drain" | "waitFirst"> & { files: { path: string }[] }): string {
    return render("scripts/remove.sh.njk", {
        description: args.description,
        before: args.deactivate ?? [],
        paths: [...args.files.map((f) => f.path), ...(args.removePaths ?? [])],
        after: args.afterRemove ?? [],
        drain: args.drain ?? [],
        waitFirst: args.waitFirst ?? [],
    });
}

/** Provider inputs as stored in the state. */
export interface HostScriptInputs {
    connection: SshTarget;
    description: string;
    /** Runs on create, and again on update when it changed (it is idempotent). */
    create: string;
    /** Runs on delete, as it was when the resource was last created or updated. */
    delete: string;
}

async function runOnHost(connection: SshTarget, script: string, what: string): Promise<void> {
    const client = await openSsh(connection);
    try {
        const result = await runScript(client, connection.user, script);
        if (result.code !== 0) {
            const tail = (text: string, n: number) => (text.length > n ? `...${text.slice(-n)}` : text);
            throw new Error(
                `${what} on ${connection.host} failed (exit ${result.code})\n${tail(result.stderr.trim(), 3000)}${result.stdout.trim() ? `\n${tail(result.stdout.trim(), 1000)}` : ""}`,
            );
        }
    } finally {
        client.end();
    }
}

/** The dynamic provider behind HostScript; exported so tests call its methods directly. */
export const hostScriptProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: HostScriptInputs) {
        await runOnHost(inputs.connection, inputs.create, inputs.description);
        const crypto: typeof import("crypto") = require("crypto");
        return { id: crypto.randomUUID(), outs: inputs };
    },

    async diff(_id: string, olds: HostScriptInputs, news: HostScriptInputs) {
        // Another host is another resource. The old one is cleaned first: when both names reach the same
        // machine (an IP and its DNS name), deleting second would remove what the create just wrote.
        // (Host and port name the machine: one IP may front several through port forwarding.)
        // A new login user for the same machine is an update in place.
        const machine = (c: SshTarget) => `${c.host}:${c.port ?? 22}`;
        const replaces = machine(olds.connection) !== machine(news.connection) ? ["connection"] : [];
        const changes =
            replaces.length > 0 ||
            olds.create !== news.create ||
            olds.delete !== news.delete ||
            olds.description !== news.description ||
            JSON.stringify(olds.connection) !== JSON.stringify(news.connection);
        return { changes, replaces, deleteBeforeReplace: true };
    },

    async update(_id: string, olds: HostScriptInputs, news: HostScriptInputs) {
        if (olds.create !== news.create) {
            await runOnHost(news.connection, news.create, news.description);
        }
        return { outs: news };
    },

    async delete(_id: string, props: HostScriptInputs) {
        await runOnHost(props.connection, props.delete, `removing ${props.description}`);
    },
};

/** A script run on a host over SSH on create and update, and its counterpart on delete. */
export class HostScript extends pulumi.dynamic.Resource {
    declare readonly create: pulumi.Output<string>;
    declare readonly connection: pulumi.Output<SshTarget>;

    constructor(name: string, args: { connection: pulumi.Input<SshConnection>; description: string; create: pulumi.Input<string>; delete: pulumi.Input<string> }, opts: pulumi.CustomResourceOptions) {
        const connection = pulumi.secret(
            pulumi.output(args.connection).apply((c) => ({
                host: c.host,
                port: c.port ?? 22,
                user: c.user ?? "root",
                privateKey: c.privateKey,
                ...(c.proxy ? { proxy: { host: c.proxy.host, port: c.proxy.port ?? 22, user: c.proxy.user ?? "root", privateKey: c.proxy.privateKey } } : {}),
            })),
        );
        super(hostScriptProvider, name, { connection, description: args.description, create: args.create, delete: args.delete }, { ...opts, additionalSecretOutputs: ["connection"] }, "sglang-gateway", "HostScript");
    }
}

/** Files a host owns: written and activated on create/update, removed again on delete. */
export function hostFiles(name: string, args: HostFilesArgs, opts: pulumi.CustomResourceOptions): HostScript {
    const contents = pulumi.all(args.files.map((f) => f.content));
    const create = contents.apply((texts) => applyScript({ ...args, files: args.files.map((f, i) => ({ path: f.path, mode: f.mode, content: texts[i] })) }));
    return new HostScript(name, { connection: args.connection, description: args.description, create, delete: removeScript(args) }, opts);
}
