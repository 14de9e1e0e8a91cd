// Files on a host, written and activated by one remote command, removed again on delete.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
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

export function removeScript(args: Pick<HostFilesArgs, "description" | "deactivate" | "afterRemove" | "removePaths"> & { files: { path: string }[] }): string {
    return render("scripts/remove.sh.njk", {
        description: args.description,
        before: args.deactivate ?? [],
        paths: [...args.files.map((f) => f.path), ...(args.removePaths ?? [])],
        after: args.afterRemove ?? [],
    });
}

/** Runs a script as root with bash, whatever the login user and its shell are. */
export function asRoot(script: string, user: string): string {
    const runner = user === "root" ? "bash" : "sudo -n bash";
    return `${runner} -c "$(cat <<'SGLANG_GATEWAY_SCRIPT'\n${script}\nSGLANG_GATEWAY_SCRIPT\n)"`;
}

/** A remote command that owns some files on a host; its inputs change only when the files or steps do. */
export function hostFiles(name: string, args: HostFilesArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    const connection = pulumi.output(args.connection);
    const user = connection.apply((c) => c.user ?? "root");
    const contents = pulumi.all(args.files.map((f) => f.content));
    const create = pulumi.all([contents, user]).apply(([texts, login]) =>
        asRoot(applyScript({ ...args, files: args.files.map((f, i) => ({ path: f.path, mode: f.mode, content: texts[i] })) }), login),
    );
    return new command.remote.Command(
        name,
        {
            connection: connection.apply((c) => ({
                host: c.host,
                port: c.port ?? 22,
                user: c.user ?? "root",
                privateKey: c.privateKey,
                dialErrorLimit: 20,
                perDialTimeout: 10,
                ...(c.proxy ? { proxy: { ...c.proxy, port: c.proxy.port ?? 22, user: c.proxy.user ?? "root" } } : {}),
            })),
            create,
            delete: user.apply((login) => asRoot(removeScript(args), login)),
            addPreviousOutputInEnv: false,
        },
        opts,
    );
}
