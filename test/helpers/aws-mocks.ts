// Pulumi mocks that answer like AWS would and record what AWS (or the AWS provider) would refuse.
// Violations are recorded, never thrown: a throw in newResource leaves the resource's outputs unresolved
// and a throw in call() rejects with an empty message, so tests assert `violations()` is empty instead.
import * as pulumi from "@pulumi/pulumi";
import { acceleratorOf, architectureOf, canonicalOwner, dlamiOwner } from "../../components/backends/aws/images";
import { awsInputSchemas } from "./aws-input-names";
import { plain, RecordingMocks, type Registered } from "./mocks";

/** An AMI the mock's getAmi found: what the instance checks compare against. */
interface FoundAmi {
    gpuDrivers: boolean;
    architecture: string;
    snapshotGiB: number;
}

export interface AwsMockOptions {
    /** VPC of each subnet id the stack names (subnets created in the program are read from their resource). */
    subnets?: Record<string, string>;
    /** Region every regional resource and invoke must carry; undefined: none may carry one. */
    region?: string;
    /** Names of pulumi:providers:aws resources the test program itself creates (the library must create none). */
    userProviders?: string[];
}

/** The VPC a security group without vpcId, or an instance without subnetId, lands in. */
const defaultVpc = "vpc-default";
/** Resource types the library creates and must tag and place in the region. */
const ownTypes = ["aws:ec2/instance:Instance", "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/eip:Eip", "aws:ec2/keyPair:KeyPair"];

export class AwsMocks extends RecordingMocks {
    readonly calls: { token: string; inputs: Record<string, unknown>; provider: string }[] = [];
    private readonly found = new Map<string, FoundAmi>();
    private readonly recorded: string[] = [];

    constructor(private readonly options: AwsMockOptions = {}) {
        super();
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const result = super.newResource(args);
        const inputs = plain(args.inputs) as Record<string, unknown>;
        for (const path of awsInputSchemas().unknownInputPaths(args.type, inputs)) {
            this.recorded.push(`${args.type} ${args.name}: unknown input ${path}`);
        }
        if (args.type === "pulumi:providers:aws" && !(this.options.userProviders ?? []).includes(args.name)) {
            this.recorded.push(`pulumi:providers:aws ${args.name}: an explicit provider ignores the stack's aws:* config (profile, assumeRoles, defaultTags)`);
        }
        return result;
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        const inputs = plain(args.inputs) as Record<string, unknown>;
        this.calls.push({ token: args.token, inputs, provider: args.provider ?? "" });
        for (const path of awsInputSchemas().unknownInputPaths(args.token, inputs)) {
            this.recorded.push(`${args.token}: unknown argument ${path}`);
        }
        this.checkRegion(`${args.token}`, inputs);
        if (args.token === "aws:ec2/getAmi:getAmi") {
            return this.getAmi(inputs);
        }
        if (args.token === "aws:ec2/getSubnet:getSubnet") {
            return { id: inputs.id, vpcId: this.vpcOfSubnet(String(inputs.id)) };
        }
        return args.inputs;
    }

    /** Everything AWS would have refused, with its words where it has them. */
    violations(): string[] {
        const problems = [...this.recorded];
        for (const r of this.resources.filter((r) => ownTypes.includes(r.type))) {
            this.checkRegion(`${r.type} ${r.name}`, r.inputs, problems);
            const tags = (r.inputs.tags ?? {}) as Record<string, unknown>;
            if (!tags.Name || !tags["sglang-gateway"]) {
                problems.push(`${r.type} ${r.name}: tags lack Name or sglang-gateway (got ${JSON.stringify(tags)})`);
            }
        }
        for (const instance of this.ofType("aws:ec2/instance:Instance")) {
            problems.push(...this.instanceProblems(instance));
        }
        return problems;
    }

    private getAmi(inputs: Record<string, unknown>): Record<string, unknown> {
        const owners = (inputs.owners ?? []) as string[];
        const filters = (inputs.filters ?? []) as { name: string; values: string[] }[];
        const name = filters.find((f) => f.name === "name")?.values[0] ?? "";
        const architecture = filters.find((f) => f.name === "architecture")?.values[0];
        const noResults = { id: "", architecture: "" };
        if (owners.length === 0) {
            this.recorded.push(
                `getAmi ${name}: no owners; the provider refuses mostRecent without owners (allowUnsafeFilter), and anyone may publish an image by that name`,
            );
            return noResults;
        }
        const ubuntu = /^ubuntu\/images\/hvm-ssd-gp3\/ubuntu-noble-24\.04-(amd64|arm64)-server-\*$/.exec(name);
        const dlami = /^Deep Learning (ARM64 )?Base OSS Nvidia Driver GPU AMI \(Ubuntu 24\.04\) \?{8}$/.exec(name);
        const owner = owners[0];
        const found: FoundAmi | undefined =
            ubuntu && owner === canonicalOwner
                ? { gpuDrivers: false, architecture: ubuntu[1] === "arm64" ? "arm64" : "x86_64", snapshotGiB: 8 }
                : dlami && owner === dlamiOwner
                  ? { gpuDrivers: true, architecture: dlami[1] ? "arm64" : "x86_64", snapshotGiB: 75 }
                  : undefined;
        if (!found) {
            this.recorded.push(
                `getAmi owners=${owners.join(",")} name=${name}: Your query returned no results. Please change your search criteria and try again.`,
            );
            return noResults;
        }
        if (architecture !== undefined && architecture !== found.architecture) {
            this.recorded.push(`getAmi ${name} with architecture=${architecture}: Your query returned no results.`);
            return noResults;
        }
        const id = `ami-${found.gpuDrivers ? "dlami" : "ubuntu"}-${found.architecture}`;
        this.found.set(id, found);
        return {
            id,
            architecture: found.architecture,
            rootDeviceName: "/dev/sda1",
            blockDeviceMappings: [{ deviceName: "/dev/sda1", ebs: { volume_size: String(found.snapshotGiB), volume_type: "gp3" } }],
        };
    }

    private vpcOfSubnet(subnetId: string): string {
        const created = this.ofType("aws:ec2/subnet:Subnet").find((s) => `${s.name}-id` === subnetId);
        return String(created?.inputs.vpcId ?? this.options.subnets?.[subnetId] ?? `vpc-unknown-for-${subnetId}`);
    }

    private checkRegion(what: string, inputs: Record<string, unknown>, into: string[] = this.recorded): void {
        if (what.startsWith("aws:route53/")) {
            return;
        }
        if (inputs.region !== this.options.region) {
            into.push(
                `${what}: region ${JSON.stringify(inputs.region)}, expected ${JSON.stringify(this.options.region)} (the backend's region goes on every regional resource and invoke)`,
            );
        }
    }

    private instanceProblems(instance: Registered): string[] {
        const problems: string[] = [];
        const at = `aws:ec2/instance:Instance ${instance.name}`;
        const inputs = instance.inputs;
        const metadata = (inputs.metadataOptions ?? {}) as { httpTokens?: string; httpPutResponseHopLimit?: number };
        if (metadata.httpTokens !== "required") {
            problems.push(`${at}: metadataOptions.httpTokens is ${JSON.stringify(metadata.httpTokens)}; IMDSv2 must be required`);
        }
        const hops = metadata.httpPutResponseHopLimit;
        if (hops === undefined || hops < 1 || hops > 64) {
            problems.push(`${at}: metadataOptions.httpPutResponseHopLimit ${hops} outside 1-64`);
        }
        const instanceType = String(inputs.instanceType);
        const ami = this.found.get(String(inputs.ami));
        const root = inputs.rootBlockDevice as { volumeSize?: number; volumeType?: string; encrypted?: boolean } | undefined;
        if (!root || root.encrypted !== true || root.volumeType !== "gp3") {
            problems.push(`${at}: rootBlockDevice ${JSON.stringify(root)}; expected gp3 and encrypted`);
        } else if (!Number.isInteger(root.volumeSize) || (root.volumeSize ?? 0) < 1 || (root.volumeSize ?? 0) > 16384) {
            problems.push(`${at}: rootBlockDevice.volumeSize ${root.volumeSize} outside 1-16384 GiB`);
        } else if (ami && (root.volumeSize ?? 0) < ami.snapshotGiB) {
            problems.push(
                `${at}: InvalidBlockDeviceMapping: Volume of size ${root.volumeSize}GB is smaller than snapshot, expect size >= ${ami.snapshotGiB}GB`,
            );
        }
        if (ami) {
            const typeArch = architectureOf(instanceType);
            if (typeArch !== ami.architecture) {
                problems.push(
                    `${at}: The architecture '${typeArch}' of the specified instance type does not match the architecture '${ami.architecture}' of the specified AMI`,
                );
            }
            if (acceleratorOf(instanceType) === "nvidia" && !ami.gpuDrivers) {
                problems.push(`${at}: GPU instance type ${instanceType} on an image without NVIDIA drivers (${inputs.ami})`);
            }
        }
        const subnetVpc = inputs.subnetId === undefined ? defaultVpc : this.vpcOfSubnet(String(inputs.subnetId));
        for (const groupId of (inputs.vpcSecurityGroupIds ?? []) as string[]) {
            const group = this.ofType("aws:ec2/securityGroup:SecurityGroup").find((g) => `${g.name}-id` === groupId);
            const groupVpc = String(group?.inputs.vpcId ?? defaultVpc);
            if (group && groupVpc !== subnetVpc) {
                problems.push(
                    `${at}: InvalidParameter: Security group ${groupId} (${groupVpc}) and subnet ${inputs.subnetId ?? "(default)"} (${subnetVpc}) belong to different networks`,
                );
            }
        }
        return problems;
    }
}
