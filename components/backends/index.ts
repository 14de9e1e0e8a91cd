// Picks the host backend named in the gateway's args.
import * as pulumi from "@pulumi/pulumi";
import type { AwsBackendArgs } from "./aws";
import { sshGatewayHost, type SshBackendArgs } from "./ssh";
import type { GatewayHost } from "./types";

export type BackendArgs = AwsBackendArgs | SshBackendArgs;
export type { AwsBackendArgs, SshBackendArgs };
export type { GatewayHost, ReplicaHost, ReplicaPlacement, ReplicaReach } from "./types";

export function createGatewayHost(name: string, domain: pulumi.Input<string>, args: BackendArgs, parent: pulumi.ComponentResource): GatewayHost {
    switch (args.type) {
        case "aws": {
            // Loaded only when used: @pulumi/aws adds seconds to every program start.
            const { awsGatewayHost } = require("./aws") as typeof import("./aws");
            return awsGatewayHost(name, domain, args, parent);
        }
        case "ssh":
            return sshGatewayHost(args);
    }
}
