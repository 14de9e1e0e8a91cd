// The aws backend: the gateway on an EC2 instance with an elastic IP and a wildcard DNS record;
// each replica on an instance of its own in the same subnet, reached over its private address.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { nonEmpty, orOutput } from "../config/fields";
import type { ResolvedSshConnection } from "../host-script";
import type { Backend, GatewayHost, GatewayHostSettings, ReplicaHost, ReplicaHostRequest } from "./types";

/** Canonical's account: the owner of the official Ubuntu AMIs. */
const canonicalOwner = "099720109477";
const ubuntuNamePattern = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*";

export interface AwsGatewayArgs {
    /** AWS region; default: the provider's (aws:region). */
    region?: string;
    /** Gateway instance type; default t3.small. */
    instanceType?: pulumi.Input<string>;
    /** VPC for the security groups; default: the default VPC. */
    vpcId?: pulumi.Input<string>;
    /** Subnet for the gateway and the replicas; default: one of the default VPC's. */
    subnetId?: pulumi.Input<string>;
    /** Route53 hosted zone of the domain; when set, `*.<domain>` points at the gateway. */
    zoneId?: pulumi.Input<string>;
    /** AMI for gateway and replicas; default: the newest Ubuntu 24.04 from Canonical. */
    ami?: pulumi.Input<string>;
    /** Login user of the AMI; default ubuntu. */
    user?: pulumi.Input<string>;
}

export interface AwsPlacementArgs {
    /** Instance type of each replica's instance; default g5.xlarge. */
    instanceType?: string;
}

/** The OpenSSH public key of a private key, for the EC2 key pair. */
export function publicKeyOf(privateKey: string): string {
    const { utils } = require("ssh2") as typeof import("ssh2");
    const parsed = utils.parseKey(privateKey);
    if (parsed instanceof Error) {
        throw new Error(`aws backend: privateKey is not a usable SSH private key: ${parsed.message}`);
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    return `${key.type} ${key.getPublicSSH().toString("base64")} sglang-gateway`;
}

function awsGatewayHost(name: string, args: GatewayHostSettings & AwsGatewayArgs, parent: pulumi.ComponentResource): GatewayHost {
    // Loaded only when used: @pulumi/aws adds seconds to every program start.
    const aws = require("@pulumi/aws") as typeof import("@pulumi/aws");
    const domain = args.domain;
    const provider = args.region ? new aws.Provider(`${name}-aws`, { region: args.region as import("@pulumi/aws").Region }, { parent }) : undefined;
    const opts = { parent, provider };
    const ami =
        args.ami ??
        aws.ec2.getAmiOutput({ mostRecent: true, owners: [canonicalOwner], filters: [{ name: "name", values: [ubuntuNamePattern] }] }, { parent, provider }).id;
    // The looked-up AMI moves when Canonical publishes an image; that must not replace running hosts.
    // An AMI the user names is honoured, changes included.
    const amiDrift = args.ami ? [] : ["ami"];
    const keyPair = new aws.ec2.KeyPair(`${name}-key`, { publicKey: pulumi.output(args.privateKey).apply(publicKeyOf) }, opts);
    const gatewayGroup = new aws.ec2.SecurityGroup(
        `${name}-gateway`,
        {
            description: `sglang-gateway ${name}: SSH, HTTP and HTTPS`,
            vpcId: args.vpcId,
            ingress: [22, 80, 443].map((port) => ({ protocol: "tcp", fromPort: port, toPort: port, cidrBlocks: ["0.0.0.0/0"] })),
            egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
        },
        opts,
    );
    const instance = new aws.ec2.Instance(
        `${name}-gateway`,
        {
            ami,
            instanceType: args.instanceType ?? "t3.small",
            subnetId: args.subnetId,
            vpcSecurityGroupIds: [gatewayGroup.id],
            keyName: keyPair.keyName,
            tags: { Name: `${name}-gateway`, "sglang-gateway": name },
        },
        { ...opts, ignoreChanges: amiDrift },
    );
    const eip = new aws.ec2.Eip(`${name}-gateway`, { instance: instance.id, domain: "vpc", tags: { Name: `${name}-gateway` } }, opts);
    if (args.zoneId) {
        new aws.route53.Record(
            `${name}-wildcard`,
            { zoneId: args.zoneId, name: pulumi.interpolate`*.${domain}`, type: "A", ttl: 300, records: [eip.publicIp] },
            opts,
        );
    }
    const user = args.user ?? "ubuntu";
    const connection = pulumi.secret(
        pulumi.output({ host: eip.publicIp, port: 22, user, privateKey: args.privateKey }),
    ) as pulumi.Output<ResolvedSshConnection>;
    // Replicas accept SSH and the model port only from the gateway.
    const replicaGroup = new aws.ec2.SecurityGroup(
        `${name}-replicas`,
        {
            description: `sglang-gateway ${name}: replicas, reachable from the gateway only`,
            vpcId: args.vpcId,
            ingress: [{ protocol: "tcp", fromPort: 0, toPort: 65535, securityGroups: [gatewayGroup.id] }],
            egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
        },
        opts,
    );

    return {
        connection,
        address: eip.publicIp,
        replicaHost(request: ReplicaHostRequest, placement: AwsPlacementArgs): ReplicaHost {
            const replica = new aws.ec2.Instance(
                `${request.service}-replica-${request.index}`,
                {
                    ami,
                    instanceType: placement.instanceType ?? "g5.xlarge",
                    subnetId: args.subnetId,
                    vpcSecurityGroupIds: [replicaGroup.id],
                    keyName: keyPair.keyName,
                    tags: { Name: `${name}-${request.service}-replica-${request.index}`, "sglang-gateway": name },
                },
                { parent: request.parent, provider, ignoreChanges: amiDrift },
            );
            return {
                // Replicas have no public SSH: the gateway is the bastion.
                connection: { host: replica.privateIp, port: 22, user, privateKey: args.privateKey, proxy: connection },
                reach: { mode: "direct", address: replica.privateIp },
                portOffset: 0,
            };
        },
    };
}

export const awsBackend: Backend<AwsGatewayArgs, AwsPlacementArgs> = {
    gatewayFields: {
        region: z
            .string({ invalid_type_error: "expected an AWS region" })
            .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: "expected an AWS region such as eu-west-1" })
            .optional(),
        instanceType: orOutput(nonEmpty.default("t3.small")),
        vpcId: orOutput(nonEmpty).optional(),
        subnetId: orOutput(nonEmpty).optional(),
        zoneId: orOutput(nonEmpty).optional(),
        ami: orOutput(nonEmpty).optional(),
        user: orOutput(nonEmpty.default("ubuntu")),
    },
    placementFields: {
        instanceType: nonEmpty.optional(),
    },
    placementProblems: () => [],
    createGatewayHost: awsGatewayHost,
};
