// Where the instances live: the VPC (given, or the one the subnet is in), and the two security groups.
import * as pulumi from "@pulumi/pulumi";

type Aws = typeof import("@pulumi/aws");

export interface NetworkArgs {
    region?: string;
    vpcId?: pulumi.Input<string>;
    subnetId?: pulumi.Input<string>;
    sshSourceCidrs: pulumi.Input<string>[];
    tags: Record<string, pulumi.Input<string>>;
}

/**
 * The VPC the security groups belong in. An instance and its groups must share a VPC ("Security group ...
 * and subnet ... belong to different networks"), so a subnet without a vpcId names the VPC itself.
 * Neither given: the default VPC, where both the groups and a subnet-less instance land.
 */
export function vpcOf(aws: Aws, args: NetworkArgs, opts: pulumi.InvokeOutputOptions): pulumi.Input<string> | undefined {
    if (args.vpcId !== undefined || args.subnetId === undefined) {
        return args.vpcId;
    }
    return aws.ec2.getSubnetOutput({ id: args.subnetId, region: args.region }, opts).vpcId;
}

/** The gateway's group (SSH from sshSourceCidrs; HTTP and HTTPS from anywhere) and the replicas' (from the gateway only). */
export function securityGroups(aws: Aws, name: string, args: NetworkArgs, vpcId: pulumi.Input<string> | undefined, opts: pulumi.CustomResourceOptions) {
    const egress = [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }];
    const gateway = new aws.ec2.SecurityGroup(
        `${name}-gateway`,
        {
            description: `sglang-gateway ${name}: SSH, HTTP and HTTPS`,
            vpcId,
            region: args.region,
            ingress: [
                { protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: args.sshSourceCidrs },
                ...[80, 443].map((port) => ({ protocol: "tcp", fromPort: port, toPort: port, cidrBlocks: ["0.0.0.0/0"] })),
            ],
            egress,
            tags: { ...args.tags, Name: `${name}-gateway` },
        },
        opts,
    );
    const replicas = new aws.ec2.SecurityGroup(
        `${name}-replicas`,
        {
            description: `sglang-gateway ${name}: replicas, reachable from the gateway only`,
            vpcId,
            region: args.region,
            ingress: [{ protocol: "tcp", fromPort: 0, toPort: 65535, securityGroups: [gateway.id] }],
            egress,
            tags: { ...args.tags, Name: `${name}-replicas` },
        },
        opts,
    );
    return { gateway, replicas };
}

/**
 * The replicas of one PD service reach each other on every TCP port: a decode server dials its prefill's
 * bootstrap port, and the KV cache transfer picks its own ports. Nothing else is let in.
 */
export function pdPeerGroup(aws: Aws, name: string, args: NetworkArgs, vpcId: pulumi.Input<string> | undefined, opts: pulumi.CustomResourceOptions) {
    return new aws.ec2.SecurityGroup(
        name,
        {
            description: `sglang-gateway ${name}: prefill and decode replicas of one service, to each other`,
            vpcId,
            region: args.region,
            ingress: [{ protocol: "tcp", fromPort: 0, toPort: 65535, self: true }],
            egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
            tags: { ...args.tags, Name: name },
        },
        opts,
    );
}
