// The host interface: where the gateway and the replicas run, and how to reach them.
import * as pulumi from "@pulumi/pulumi";
import type { ResolvedSshConnection, SshConnection } from "../remote";

/** How the gateway's bridge reaches a replica. */
export type ReplicaReach =
    /** An SSH tunnel from the gateway ends in a unix socket on the gateway. */
    | { mode: "tunnel"; host: pulumi.Input<string>; port: pulumi.Input<number>; user: pulumi.Input<string>; privateKey: pulumi.Input<string> }
    /** The gateway connects to the replica's private address (same network). */
    | { mode: "direct"; address: pulumi.Input<string> };

export interface ReplicaHost {
    /** SSH access to the host the replica runs on. */
    connection: SshConnection;
    reach: ReplicaReach;
    /** Added to the service port: replicas sharing a host need ports of their own. */
    portOffset: number;
}

export interface ReplicaHostRequest {
    service: string;
    index: number;
    /** The Replica component: anything the backend creates for this replica is its child. */
    parent: pulumi.ComponentResource;
}

export interface GatewayHost {
    /** SSH access to the gateway (secret: it carries the key). */
    connection: pulumi.Output<ResolvedSshConnection>;
    /** The public address clients reach. */
    address: pulumi.Output<string>;
    /** Where the replicas of a service run. */
    replicaHost(request: ReplicaHostRequest, placement: ReplicaPlacement): ReplicaHost;
}

/** Per-service placement settings; each backend reads its own. */
export interface ReplicaPlacement {
    /** ssh backend: the hosts replicas are spread over, replica i on hosts[i % n]. */
    hosts?: SshConnection[];
    /** aws backend: the instance type of each replica's instance. */
    instanceType?: string;
}
