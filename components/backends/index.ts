// Picks the host backend named in the gateway's args.
import * as pulumi from "@pulumi/pulumi";
import { awsGatewayHost, type AwsBackendArgs } from "./aws";
import { sshGatewayHost, type SshBackendArgs } from "./ssh";
import type { GatewayHost } from "./types";

export type BackendArgs = AwsBackendArgs | SshBackendArgs;
export type { AwsBackendArgs, SshBackendArgs };
export type { GatewayHost, ReplicaHost, ReplicaPlacement, ReplicaReach } from "./types";

export function createGatewayHost(name: string, domain: pulumi.Input<string>, args: BackendArgs, parent: pulumi.ComponentResource): GatewayHost {
    switch (args.type) {
        case "aws":
            return awsGatewayHost(name, domain, args, parent);
        case "ssh":
            return sshGatewayHost(args);
    }
}
