// The host interface: where the gateway and the replicas run, and how to reach them.
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import type { Problem } from "../config/errors";
import type { ResolvedSshConnection, SshConnection } from "../host-script";

/** How the gateway's bridge reaches a replica. */
export type ReplicaReach =
    /** An SSH tunnel from the gateway ends in a unix socket on the gateway. */
    | {
          mode: "tunnel";
          host: pulumi.Input<string>;
          port: pulumi.Input<number>;
          user: pulumi.Input<string>;
          privateKey: pulumi.Input<string>;
          /** The host's SSH key when given in config; else the tunnel pins what the process step learned. */
          hostKey?: pulumi.Input<string>;
      }
    /** The gateway connects to the replica's private address (same network). */
    | { mode: "direct"; address: pulumi.Input<string> };

export interface ReplicaHost {
    /** SSH access to the host the replica runs on. */
    connection: SshConnection;
    reach: ReplicaReach;
    /** The host's address on the network its peers share: where the router and decode replicas reach a prefill. */
    address: pulumi.Input<string>;
    /** Added to the service port: replicas sharing a host need ports of their own. */
    portOffset: number;
    /** The host has NVIDIA GPUs for containers (`docker run --gpus all`). */
    gpus: boolean;
    /**
     * The process step waits until the model server's port answers and shows the end of its journal if it
     * never does (the router's own timeout can't see the replica's log). Off on ssh: existing stacks keep their scripts.
     */
    reportsStartup: boolean;
}

export interface ReplicaHostRequest {
    service: string;
    /** Index within the replica's role (or the service, without roles). */
    index: number;
    /** The replica's PD role; undefined for a service without roles. */
    role?: "prefill" | "decode";
    /** The Replica component: anything the backend creates for this replica is its child. */
    parent: pulumi.ComponentResource;
}

export interface GatewayHost {
    /** SSH access to the gateway (secret: it carries the key). */
    connection: pulumi.Output<ResolvedSshConnection>;
    /** The public address clients reach. */
    address: pulumi.Output<string>;
    /** What makes `*.<domain>` resolve to the gateway, when the backend creates it (aws with zoneId): ACME validation waits for it. */
    dnsRecords?: pulumi.Resource[];
    /** Where replica `request.index` of a service runs; `placement` holds the service's settings of this backend. */
    replicaHost(request: ReplicaHostRequest, placement: Record<string, unknown>): ReplicaHost;
}

/** What every backend gets of the gateway's settings besides its own fields. */
export interface GatewayHostSettings {
    domain: pulumi.Input<string>;
    /** The gateway's SSH key, read already (privateKeyPath resolved). */
    privateKey: pulumi.Input<string>;
}

/**
 * A host backend. `G` is the type of its gateway fields, `P` of its fields on a service. Both sets of
 * fields are zod shapes: the stack config and the component args are checked with them.
 */
export interface Backend<G extends object = object, P extends object = object> {
    /** Fields of the gateway settings this backend reads, beside `backend: <name>`. */
    readonly gatewayFields: z.ZodRawShape;
    /** Fields of a service's settings this backend reads (where its replicas run). */
    readonly placementFields: z.ZodRawShape;
    /** Problems of the gateway's own backend fields across fields or beyond their shape; paths relative to the gateway. */
    gatewayProblems?(gateway: G & { privateKey?: unknown }): Problem[];
    /** Problems of a service's placement on this backend; paths relative to the service. */
    placementProblems(service: { replicas: number } & P): Problem[];
    createGatewayHost(name: string, settings: GatewayHostSettings & G, parent: pulumi.ComponentResource): GatewayHost;
    /**
     * The host replica `index` runs on, when the config alone tells and other replicas may share it (a key
     * equal for one host), and its port offset there; undefined: a host of its own. Used to check port overlaps.
     */
    placedOn?(placement: P, index: number): { key: string; offset: number } | undefined;
}
