// HostScript: a dynamic resource that runs a script on a host over SSH on create and update, and its
// counterpart on delete. The provider object is serialized into the state: modules are `require`d inside.
import * as pulumi from "@pulumi/pulumi";
import { openSsh, runScript, type SshTarget } from "./ssh";

/** How to reach a host over SSH. */
export interface SshConnection {
    host: pulumi.Input<string>;
    port?: pulumi.Input<number>;
    user?: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** What the machine is beyond its address (an EC2 instance id): a new one behind the same address is a new host. Absent: the address is the identity. */
    hostId?: pulumi.Input<string>;
    /** The SSH host key the host must present (`ssh-ed25519 AAAA…`); absent: pinned at first contact. */
    hostKey?: pulumi.Input<string | undefined>;
    /** A bastion to connect through (e.g. the gateway, for replicas without a public address). */
    proxy?: pulumi.Input<{
        host: pulumi.Input<string>;
        port?: pulumi.Input<number>;
        user?: pulumi.Input<string>;
        privateKey: pulumi.Input<string>;
        hostKey?: pulumi.Input<string | undefined>;
    }>;
}

/** An SSH connection with every value known. */
export type ResolvedSshConnection = pulumi.Unwrap<SshConnection>;

// Where a create script takes the host key its step learned (`learnHostKey`): replaced before the script runs.
// The provider's functions read this module-local name, never the export: the serializer would capture the
// module's whole exports object, the provider among them, and store it unassigned.
const learnedKeyMarker = "@SGLANG_GATEWAY_LEARNED_HOST_KEY@";
/** Where a create script takes the host key its step learned (`learnHostKey`): replaced before the script runs. */
export const learnedHostKeyMarker = learnedKeyMarker;

/** What a reviewer reads in a preview instead of the scripts: the step's facts (host, ports, worker URL). */
export type StepSummary = Record<string, string | number>;

/** Provider inputs as stored in the state. */
export interface HostScriptInputs {
    connection: SshTarget;
    description: string;
    /** Shown in previews; derived, so a change here alone is no change to the host. */
    summary?: StepSummary;
    /** sha256 (12 hex digits) of the create script: which scripts changed, without their text (`--show-secrets` shows it). */
    scriptDigest?: string;
    /** Runs on create, and again on update when it changed (it is idempotent). */
    create: string;
    /** Runs on delete, as it was when the resource was last created or updated. */
    delete: string;
    /**
     * A rolling restart: scripts run on another host (the gateway) around an update of this step. `before`
     * takes the replica out of service; `after` (given `applied` or `restored`) puts it back.
     */
    aroundUpdate?: { connection: SshTarget; before: string; after: string };
    /** Output: the host key the host presented, pinned at first contact; later connections must see it again. */
    hostKey?: string;
    /**
     * Another SSH server this step's script makes its host trust (a tunnel's replica host, as the gateway
     * reaches it). At create, and whenever `target` changes, `script` runs on this step's host and prints
     * the key that server presents there (`<type> <base64>`); from then on the key takes the place of
     * `learnedHostKeyMarker` in the create script. Kept in this step's own state: no other step reads it,
     * so a preview never shows a change it could not know.
     */
    learnHostKey?: { target: string; script: string };
    /** Output: the key learned for `learnHostKey.target`. */
    learnedHostKey?: { target: string; key: string };
}

/** The key a connection must see: the one given (config, or another step's pin), else this step's own pin. */
function pinned(connection: SshTarget, learned: string | undefined): SshTarget {
    const hostKey = connection.hostKey ?? learned;
    return hostKey === undefined ? connection : { ...connection, hostKey };
}

/** Runs the script; returns the host key the host presented. */
async function runOnHost(connection: SshTarget, script: string, what: string, args: string[] = []): Promise<string | undefined> {
    const client = await openSsh(connection);
    try {
        const result = await runScript(client, connection.user, script, args);
        if (result.code !== 0) {
            const tail = (text: string, n: number) => (text.length > n ? `...${text.slice(-n)}` : text);
            throw new Error(
                `${what} on ${connection.host} failed (exit ${result.code})\n${tail(result.stderr.trim(), 3000)}${result.stdout.trim() ? `\n${tail(result.stdout.trim(), 1000)}` : ""}`,
            );
        }
        return client.presentedHostKey;
    } finally {
        client.end();
    }
}

/** The key `learn.script` prints on the step's host: the one `learnedHostKeyMarker` stands for. */
async function learnHostKey(connection: SshTarget, learn: { target: string; script: string }): Promise<{ target: string; key: string }> {
    const client = await openSsh(connection);
    try {
        const result = await runScript(client, connection.user, learn.script);
        const key = result.stdout.trim();
        if (result.code !== 0 || !/^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}$/.test(key)) {
            throw new Error(
                `${connection.host} could not read the SSH host key of ${learn.target} (exit ${result.code}): ${(result.stderr.trim() || key).slice(-1000)}`,
            );
        }
        return { target: learn.target, key };
    } finally {
        client.end();
    }
}

function takesLearnedKey(script: string): boolean {
    return script.includes(learnedKeyMarker);
}

/** The script as it runs: the learned key in place of its marker. */
function withLearnedKey(script: string, learned: { key: string } | undefined): string {
    const marker = learnedKeyMarker;
    if (!takesLearnedKey(script)) {
        return script;
    }
    if (!learned) {
        throw new Error("a script takes a learned host key, but its step has no learnHostKey");
    }
    return script.split(marker).join(learned.key);
}

/** The dynamic provider behind HostScript; exported so tests call its methods directly. */
export const hostScriptProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: HostScriptInputs) {
        const learned = inputs.learnHostKey && takesLearnedKey(inputs.create) ? await learnHostKey(inputs.connection, inputs.learnHostKey) : undefined;
        const hostKey = await runOnHost(inputs.connection, withLearnedKey(inputs.create, learned), inputs.description);
        const crypto: typeof import("crypto") = require("crypto");
        return { id: crypto.randomUUID(), outs: { ...inputs, ...(hostKey ? { hostKey } : {}), ...(learned ? { learnedHostKey: learned } : {}) } };
    },

    async diff(_id: string, olds: HostScriptInputs, news: HostScriptInputs) {
        // Another host is another resource. The old one is cleaned first: when both names reach the same
        // machine (an IP and its DNS name), deleting second would remove what the create just wrote.
        // (Host and port name the machine: one IP may front several through port forwarding.)
        // A new login user for the same machine is an update in place. A new hostId behind the same
        // address (a replaced instance keeping its elastic IP) is a blank machine: set it up again.
        // A hostId appearing (state from before hostIds) replaces too: the instance behind it may be new.
        const machine = (c: SshTarget) => `${c.host}:${c.port ?? 22}${c.hostId === undefined ? "" : `#${c.hostId}`}`;
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
        const connection = pinned(news.connection, olds.hostKey);
        // A pin is learned at create; a step from before pins (older state) keeps none, so no step that
        // uses the pin (a tunnel) changes behind a preview that could not show it.
        const pins = { ...news, ...(connection.hostKey === undefined ? {} : { hostKey: connection.hostKey }) };
        // The key learned for the same server stays; another server (or a step from before learning) learns now.
        const kept = news.learnHostKey && olds.learnedHostKey?.target === news.learnHostKey.target ? olds.learnedHostKey : undefined;
        if (olds.create === news.create) {
            return { outs: { ...pins, ...(kept ? { learnedHostKey: kept } : {}) } };
        }
        const learned = kept ?? (news.learnHostKey && takesLearnedKey(news.create) ? await learnHostKey(connection, news.learnHostKey) : undefined);
        const outs = { ...pins, ...(learned ? { learnedHostKey: learned } : {}) };
        const script = withLearnedKey(news.create, learned);
        const around = news.aroundUpdate;
        if (!around) {
            await runOnHost(connection, script, news.description);
            return { outs };
        }
        await runOnHost(around.connection, around.before, `taking ${news.description} out of service`);
        try {
            await runOnHost(connection, script, news.description);
        } catch (err) {
            // The step restored its previous files: back into service with them, and the roll stops here.
            await runOnHost(around.connection, around.after, `putting ${news.description} back into service`, ["restored"]).catch(() => undefined);
            throw err;
        }
        await runOnHost(around.connection, around.after, `putting ${news.description} back into service`, ["applied"]);
        return { outs };
    },

    async delete(_id: string, props: HostScriptInputs) {
        await runOnHost(pinned(props.connection, props.hostKey), props.delete, `removing ${props.description}`);
    },
};

/** A connection as the provider stores it: defaults filled in. */
function sshTarget(c: pulumi.Unwrap<SshConnection>): SshTarget {
    return {
        host: c.host,
        port: c.port ?? 22,
        user: c.user ?? "root",
        privateKey: c.privateKey,
        ...(c.hostId === undefined ? {} : { hostId: c.hostId }),
        ...(c.hostKey === undefined ? {} : { hostKey: c.hostKey }),
        ...(c.proxy
            ? {
                  proxy: {
                      host: c.proxy.host,
                      port: c.proxy.port ?? 22,
                      user: c.proxy.user ?? "root",
                      privateKey: c.proxy.privateKey,
                      ...(c.proxy.hostKey === undefined ? {} : { hostKey: c.proxy.hostKey }),
                  },
              }
            : {}),
    };
}

/** A script run on a host over SSH on create and update, and its counterpart on delete. */
export class HostScript extends pulumi.dynamic.Resource {
    declare readonly create: pulumi.Output<string>;
    declare readonly connection: pulumi.Output<SshTarget>;
    /** The host key the host presented at this step's first contact (`ssh-ed25519 AAAA…`): later steps pin it. */
    declare readonly hostKey: pulumi.Output<string | undefined>;
    /** The key learned for `learnHostKey` (see HostScriptInputs). */
    declare readonly learnedHostKey: pulumi.Output<{ target: string; key: string } | undefined>;

    constructor(
        name: string,
        args: {
            connection: pulumi.Input<SshConnection>;
            description: string;
            create: pulumi.Input<string>;
            delete: pulumi.Input<string>;
            summary?: pulumi.Input<Record<string, pulumi.Input<string | number>>>;
            aroundUpdate?: pulumi.Input<{ connection: pulumi.Input<SshConnection>; before: pulumi.Input<string>; after: pulumi.Input<string> }>;
            learnHostKey?: pulumi.Input<{ target: pulumi.Input<string>; script: pulumi.Input<string> }>;
        },
        opts: pulumi.CustomResourceOptions,
    ) {
        const connection = pulumi.secret(pulumi.output(args.connection).apply(sshTarget));
        super(
            hostScriptProvider,
            name,
            {
                connection,
                description: args.description,
                summary: args.summary,
                scriptDigest: pulumi.output(args.create).apply((text) => require("crypto").createHash("sha256").update(text).digest("hex").slice(0, 12)),
                // Whole scripts in a preview hide what changed: they show as [secret] (`--show-secrets` prints them).
                create: pulumi.secret(args.create),
                delete: pulumi.secret(args.delete),
                hostKey: undefined,
                // A script too: [secret] in a preview like the others, not its whole text.
                ...(args.learnHostKey ? { learnHostKey: pulumi.secret(args.learnHostKey), learnedHostKey: undefined } : {}),
                ...(args.aroundUpdate
                    ? {
                          aroundUpdate: pulumi.secret(
                              pulumi.output(args.aroundUpdate).apply((a) => ({ connection: sshTarget(a.connection), before: a.before, after: a.after })),
                          ),
                      }
                    : {}),
            },
            { ...opts, additionalSecretOutputs: ["connection", "aroundUpdate"] },
            "sglang-gateway",
            "HostScript",
        );
    }
}
