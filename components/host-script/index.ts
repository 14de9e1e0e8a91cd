// Remote steps: files a host owns, written and activated over SSH, removed again on delete.
import * as pulumi from "@pulumi/pulumi";
import { applyScript, removeScript, type HostFile, type HostStepPhases } from "./phases";
import { HostScript, type SshConnection } from "./provider";

export { applyScript, removeScript, type HostFile, type HostStepPhases } from "./phases";
export {
    HostScript,
    hostScriptProvider,
    learnedHostKeyMarker,
    type HostScriptInputs,
    type ResolvedSshConnection,
    type SshConnection,
    type StepSummary,
} from "./provider";

/** A HostFile whose content may be known only at deploy time (a secret, an address). */
export type HostFileInput = Omit<HostFile, "content"> & { content: pulumi.Input<string> };

export interface HostStepArgs extends Omit<HostStepPhases, "write" | "activate"> {
    connection: pulumi.Input<SshConnection>;
    write: HostFileInput[];
    /** Shell lines run after the files are written; a line may be known only at deploy time (it names the domain). */
    activate: pulumi.Input<string>[];
    /** What a preview shows of this step (its host, ports, worker URL): the scripts themselves are secret. */
    summary?: pulumi.Input<Record<string, pulumi.Input<string | number>>>;
    /** A rolling restart: scripts on another host around an update (see HostScriptInputs). */
    aroundUpdate?: pulumi.Input<{ connection: pulumi.Input<SshConnection>; before: pulumi.Input<string>; after: pulumi.Input<string> }>;
    /** Another SSH server the step's files trust: its key is learned on the step's host (see HostScriptInputs). */
    learnHostKey?: pulumi.Input<{ target: pulumi.Input<string>; script: pulumi.Input<string> }>;
}

/** One remote step: its create script writes and activates, its delete script undoes it. */
export function hostStep(name: string, args: HostStepArgs, opts: pulumi.CustomResourceOptions): HostScript {
    const contents = pulumi.all(args.write.map((f) => f.content));
    const create = pulumi
        .all([contents, pulumi.all(args.activate)])
        .apply(([texts, activate]) => applyScript({ ...args, activate, write: args.write.map((f, i) => ({ ...f, content: texts[i] })) }));
    return new HostScript(
        name,
        {
            connection: args.connection,
            description: args.description,
            create,
            delete: removeScript(args),
            summary: args.summary,
            aroundUpdate: args.aroundUpdate,
            ...(args.learnHostKey ? { learnHostKey: args.learnHostKey } : {}),
        },
        opts,
    );
}
