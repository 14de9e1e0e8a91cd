// The ssh backend: an existing gateway host, and existing replica hosts, reached over SSH.
import * as pulumi from "@pulumi/pulumi";
import type { ResolvedSshConnection } from "../remote";
import { replicaPortOffset } from "../naming";
import type { GatewayHost, ReplicaHost, ReplicaHostRequest, ReplicaPlacement } from "./types";

export interface SshBackendArgs {
    type: "ssh";
    /** Address of the gateway host. */
    host: pulumi.Input<string>;
    /** SSH port; default 22. */
    port?: pulumi.Input<number>;
    /** Login user; default root (others need passwordless sudo). */
    user?: pulumi.Input<string>;
    /** PEM/OpenSSH private key (secret). */
    privateKey: pulumi.Input<string>;
}

export function sshGatewayHost(args: SshBackendArgs): GatewayHost {
    const connection = pulumi.secret(
        pulumi.output({ host: args.host, port: args.port ?? 22, user: args.user ?? "root", privateKey: args.privateKey }),
    ) as pulumi.Output<ResolvedSshConnection>;
    return {
        connection,
        address: pulumi.output(args.host),
        replicaHost(request: ReplicaHostRequest, placement: ReplicaPlacement): ReplicaHost {
            const hosts = placement.hosts ?? [];
            if (hosts.length === 0) {
                throw new Error(`service ${request.service}: the ssh backend needs hosts for its replicas (services[].hosts)`);
            }
            const chosen = hosts[request.index % hosts.length];
            const privateKey = chosen.privateKey ?? args.privateKey;
            const user = chosen.user ?? "root";
            const port = chosen.port ?? 22;
            return {
                connection: { host: chosen.host, port, user, privateKey },
                reach: { mode: "tunnel", host: chosen.host, port, user, privateKey },
                portOffset: replicaPortOffset(request.index, hosts.length),
            };
        },
    };
}
