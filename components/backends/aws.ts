// The aws backend: the gateway on an EC2 instance with an elastic IP and a wildcard DNS record;
// each replica on an instance of its own, on the NVIDIA Deep Learning AMI, reached over its private address.
// AWS resources take the stack's default AWS provider (aws:* config intact) or the one given to the Gateway,
// with `region` per resource when set. docs/aws.md says what is created, what it costs, what is checked.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { Problem } from "../config/errors";
import { loginUser, nonEmpty, orOutput } from "../config/fields";
import type { ResolvedSshConnection } from "../host-script";
import { acceleratorOf, architectureOf, gpuImage, replicaTypeProblem, ubuntuImage, type AmiQuery } from "./aws/images";
import { keyPairProblem, publicKeyOf } from "./aws/keys";
import { pdPeerGroup, securityGroups, vpcOf } from "./aws/network";
import type { Backend, GatewayHost, GatewayHostSettings, ReplicaHost, ReplicaHostRequest } from "./types";

export const awsDefaults = { gatewayInstanceType: "t3.small", gatewayRootVolumeGiB: 20, replicaInstanceType: "g5.xlarge", replicaRootVolumeGiB: 200 };

export interface AwsGatewayArgs {
    /** AWS region; default: the provider's (aws:region). Set per resource: the provider keeps its aws:* config. */
    region?: string;
    /** Gateway instance type; default t3.small. Graviton types (t4g) get the arm64 image. */
    instanceType?: pulumi.Input<string>;
    /** VPC for the security groups; default: the subnet's VPC, or the default VPC without a subnet. */
    vpcId?: pulumi.Input<string>;
    /** Subnet of the gateway (public: its elastic IP needs an internet gateway route); default: one of the default VPC's. */
    subnetId?: pulumi.Input<string>;
    /** Subnet of the replicas, in the same VPC; default subnetId. A private subnet needs a route out (NAT) for image and model downloads. */
    replicaSubnetId?: pulumi.Input<string>;
    /** Route53 hosted zone of the domain; when set, `*.<domain>` points at the gateway. */
    zoneId?: pulumi.Input<string>;
    /** AMI of the gateway; default: the newest Ubuntu 24.04 from Canonical for the instance type's architecture. */
    ami?: pulumi.Input<string>;
    /** Login user of the AMIs; default ubuntu. */
    user?: pulumi.Input<string>;
    /** Size of the gateway's root volume (gp3, encrypted) in GiB; default 20. */
    rootVolumeGiB?: number;
    /** Where SSH to the gateway may come from (IPv4 CIDRs); default ["0.0.0.0/0"]. HTTP(S) is open to all. */
    sshSourceCidrs?: pulumi.Input<string>[];
    /** Tags for every AWS resource, besides Name and sglang-gateway. */
    tags?: Record<string, pulumi.Input<string>>;
}

export interface AwsPlacementArgs {
    /** Instance type of each replica's instance; default g5.xlarge. NVIDIA types run containers with --gpus all. */
    instanceType?: string;
    /** AMI of the replicas; default: the newest AWS Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) for the architecture. */
    ami?: pulumi.Input<string>;
    /** Size of each replica's root volume (gp3, encrypted) in GiB; default 200 (container image and weights). */
    rootVolumeGiB?: number;
}

const volumeGiB = (min: number) =>
    z
        .number({ invalid_type_error: `expected a size in GiB from ${min} to 16384` })
        .int(`expected a whole number of GiB from ${min} to 16384`)
        .min(min, `expected a size in GiB from ${min} to 16384 (no smaller than the image's snapshot)`)
        .max(16384, `expected a size in GiB from ${min} to 16384 (gp3)`);
const ipv4Cidr = z
    .string({ invalid_type_error: "expected an IPv4 CIDR" })
    .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, { message: "expected an IPv4 CIDR such as 203.0.113.0/24" });

/** The newest AMI of an owner by name pattern (owners are required: an ownerless lookup could pick anyone's image). */
function amiLookup(aws: typeof import("@pulumi/aws"), image: pulumi.Input<AmiQuery>, region: string | undefined, opts: pulumi.InvokeOutputOptions) {
    const query = pulumi.output(image);
    return aws.ec2.getAmiOutput(
        {
            mostRecent: true,
            owners: [query.owner],
            filters: [
                { name: "name", values: [query.namePattern] },
                { name: "architecture", values: [query.architecture] },
                { name: "state", values: ["available"] },
            ],
            region,
        },
        opts,
    ).id;
}

/** One instance of the backend: the gateway's or a replica's. */
interface InstanceSpec {
    instanceType: pulumi.Input<string>;
    /** The AMI to look up unless `ami` names one. */
    image: pulumi.Input<AmiQuery>;
    ami: pulumi.Input<string> | undefined;
    subnetId: pulumi.Input<string> | undefined;
    securityGroups: pulumi.Input<string>[];
    rootVolumeGiB: number;
    /** IMDSv2 response hop limit: 1 keeps tokens on the host, 2 lets containers reach it. */
    hopLimit: number;
    tagName: string;
}

function awsGatewayHost(name: string, args: GatewayHostSettings & AwsGatewayArgs, parent: pulumi.ComponentResource): GatewayHost {
    // Loaded only when used: @pulumi/aws adds seconds to every program start.
    const aws = require("@pulumi/aws") as typeof import("@pulumi/aws");
    const region = args.region;
    // A provider given to the Gateway (providers: {aws} or provider) reaches its children by inheritance;
    // replicas are children of their Service, so they get it explicitly.
    const provider = parent.getProvider("aws:ec2/instance:Instance");
    const opts = { parent, provider };
    const tags = { ...(args.tags ?? {}), "sglang-gateway": name };
    const network = { region, vpcId: args.vpcId, subnetId: args.subnetId, sshSourceCidrs: args.sshSourceCidrs ?? ["0.0.0.0/0"], tags };
    const vpcId = vpcOf(aws, network, opts);
    const groups = securityGroups(aws, name, network, vpcId, opts);
    const keyPair = new aws.ec2.KeyPair(
        `${name}-key`,
        { publicKey: pulumi.output(args.privateKey).apply(publicKeyOf), region, tags: { ...tags, Name: `${name}-key` } },
        opts,
    );

    // A looked-up AMI moves when its owner publishes an image; that must not replace running hosts.
    // An AMI the user names is honoured, changes included.
    const instance = (resourceName: string, spec: InstanceSpec, instanceOpts: pulumi.CustomResourceOptions) =>
        new aws.ec2.Instance(
            resourceName,
            {
                ami: spec.ami ?? amiLookup(aws, spec.image, region, instanceOpts),
                instanceType: spec.instanceType,
                subnetId: spec.subnetId,
                vpcSecurityGroupIds: spec.securityGroups,
                keyName: keyPair.keyName,
                region,
                rootBlockDevice: { volumeSize: spec.rootVolumeGiB, volumeType: "gp3", encrypted: true, tags: { ...tags, Name: spec.tagName } },
                // IMDSv2 only; containers sit one hop further than the host, so replicas need 2.
                metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: spec.hopLimit },
                tags: { ...tags, Name: spec.tagName },
            },
            { ...instanceOpts, ignoreChanges: spec.ami ? [] : ["ami"] },
        );

    const gatewayType = args.instanceType ?? awsDefaults.gatewayInstanceType;
    const gateway = instance(
        `${name}-gateway`,
        {
            instanceType: gatewayType,
            image: pulumi.output(gatewayType).apply((t) => ubuntuImage(architectureOf(t) ?? "x86_64")),
            ami: args.ami,
            subnetId: args.subnetId,
            securityGroups: [groups.gateway.id],
            rootVolumeGiB: args.rootVolumeGiB ?? awsDefaults.gatewayRootVolumeGiB,
            hopLimit: 1,
            tagName: `${name}-gateway`,
        },
        opts,
    );
    const eip = new aws.ec2.Eip(`${name}-gateway`, { instance: gateway.id, domain: "vpc", region, tags: { ...tags, Name: `${name}-gateway` } }, opts);
    const dnsRecords: pulumi.Resource[] = [];
    if (args.zoneId) {
        // Route53 is global: no region.
        const record = new aws.route53.Record(
            `${name}-wildcard`,
            { zoneId: args.zoneId, name: pulumi.interpolate`*.${args.domain}`, type: "A", ttl: 300, records: [eip.publicIp] },
            opts,
        );
        dnsRecords.push(record);
    }
    const user = args.user ?? "ubuntu";
    // PD services' replicas talk to each other (bootstrap, KV transfer): one group per such service, created with its first replica.
    const peerGroups = new Map<string, pulumi.Output<string>>();
    const peerGroupOf = (service: string) => {
        if (!peerGroups.has(service)) {
            // A child of the gateway: it exists while the program asks for a replica of the service's roles.
            peerGroups.set(service, pdPeerGroup(aws, `${name}-${service}-pd`, network, vpcId, opts).id);
        }
        return peerGroups.get(service) as pulumi.Output<string>;
    };
    // The instance id is part of the host's identity: a replaced instance behind the same EIP is a blank host.
    const connection = pulumi.secret(
        pulumi.output({ host: eip.publicIp, port: 22, user, privateKey: args.privateKey, hostId: gateway.id }),
    ) as pulumi.Output<ResolvedSshConnection>;

    return {
        connection,
        address: eip.publicIp,
        dnsRecords,
        replicaHost(request: ReplicaHostRequest, placement: AwsPlacementArgs): ReplicaHost {
            const instanceType = placement.instanceType ?? awsDefaults.replicaInstanceType;
            const replicaName = `${request.service}-${request.role ?? "replica"}-${request.index}`;
            const peers = request.role ? [peerGroupOf(request.service)] : [];
            const replica = instance(
                replicaName,
                {
                    instanceType,
                    image: gpuImage(architectureOf(instanceType) ?? "x86_64"),
                    ami: placement.ami,
                    subnetId: args.replicaSubnetId ?? args.subnetId,
                    securityGroups: [groups.replicas.id, ...peers],
                    rootVolumeGiB: placement.rootVolumeGiB ?? awsDefaults.replicaRootVolumeGiB,
                    hopLimit: 2,
                    tagName: `${name}-${replicaName}`,
                },
                { parent: request.parent, provider },
            );
            return {
                // Replicas have no public SSH: the gateway is the bastion.
                connection: { host: replica.privateIp, port: 22, user, privateKey: args.privateKey, proxy: connection, hostId: replica.id },
                reach: { mode: "direct", address: replica.privateIp },
                address: replica.privateIp,
                portOffset: 0,
                gpus: acceleratorOf(instanceType) === "nvidia",
                reportsStartup: true,
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
        instanceType: orOutput(nonEmpty.default(awsDefaults.gatewayInstanceType)),
        vpcId: orOutput(nonEmpty).optional(),
        subnetId: orOutput(nonEmpty).optional(),
        replicaSubnetId: orOutput(nonEmpty).optional(),
        zoneId: orOutput(nonEmpty).optional(),
        ami: orOutput(nonEmpty).optional(),
        user: orOutput(loginUser.default("ubuntu")),
        rootVolumeGiB: volumeGiB(8).default(awsDefaults.gatewayRootVolumeGiB),
        sshSourceCidrs: z
            .array(orOutput(ipv4Cidr), { invalid_type_error: "expected a list of IPv4 CIDRs" })
            .min(1, "expected at least one CIDR")
            .default(["0.0.0.0/0"]),
        tags: z
            .record(orOutput(z.string({ invalid_type_error: "expected a tag value" }).max(256, "expected a tag value of at most 256 characters")))
            .optional(),
    },
    placementFields: {
        instanceType: nonEmpty.optional(),
        ami: orOutput(nonEmpty).optional(),
        rootVolumeGiB: volumeGiB(8).optional(),
    },
    gatewayProblems(gateway) {
        const problems: Problem[] = [];
        // Without a subnet EC2 picks one of the default VPC's: security groups in another VPC would not fit it.
        for (const key of ["vpcId", "replicaSubnetId"] as const) {
            if (gateway[key] !== undefined && gateway.subnetId === undefined) {
                problems.push({ path: [key], message: `${key} needs subnetId too: without it EC2 puts the instances in a subnet of the default VPC` });
            }
        }
        if (typeof gateway.instanceType === "string" && !architectureOf(gateway.instanceType)) {
            problems.push({ path: ["instanceType"], message: "expected an EC2 instance type such as t3.small or t4g.small" });
        }
        const privateKey = (gateway as { privateKey?: unknown }).privateKey;
        const keyProblem = typeof privateKey === "string" ? keyPairProblem(privateKey) : undefined;
        if (keyProblem) {
            problems.push({ path: ["privateKey"], message: keyProblem });
        }
        return problems;
    },
    placementProblems(service) {
        const problems: Problem[] = [];
        const instanceType = service.instanceType ?? awsDefaults.replicaInstanceType;
        const typeProblem = replicaTypeProblem(instanceType, (service as { image?: string }).image !== undefined, service.ami !== undefined);
        if (typeProblem) {
            problems.push({ path: ["instanceType"], message: typeProblem });
        }
        // The default DLAMI's snapshot is about 75 GiB; the volume can't be smaller than the snapshot.
        if (service.ami === undefined && service.rootVolumeGiB !== undefined && service.rootVolumeGiB < 100) {
            problems.push({
                path: ["rootVolumeGiB"],
                message: `expected at least 100 GiB on the default Deep Learning AMI (its snapshot is about 75 GiB; image and weights need more)`,
            });
        }
        return problems;
    },
    createGatewayHost: awsGatewayHost,
};
