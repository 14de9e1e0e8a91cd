// Which machine image an instance boots: CPU architecture and accelerator from the instance type name,
// and the AMI lookup (owner + name pattern) for the gateway (plain Ubuntu) and the replicas (NVIDIA DLAMI).
// Sources: docs/aws.md (AWS CDK's architecture rule; the DLAMI release notes for families and names).

export type Architecture = "x86_64" | "arm64";
export type Accelerator = "nvidia" | "neuron" | "other" | "none";

/** Canonical's account: the owner of the official Ubuntu AMIs. */
export const canonicalOwner = "099720109477";
/** The AWS Deep Learning AMI account (DLAMI): NVIDIA driver, container toolkit and Docker preinstalled. */
export const dlamiOwner = "898082745236";

/** The family of an instance type: the part before the first dot (g5.xlarge → g5). */
const familyOf = (instanceType: string) => instanceType.trim().toLowerCase().split(".")[0];

/**
 * arm64 or x86_64, from the name alone: family "a1", the Grace superchips (p6e-gb200), and an attribute
 * letter "g" (t4g, g5g, c7gn) are Graviton/arm64; the rest x86_64. Undefined when the name has no such shape.
 */
export function architectureOf(instanceType: string): Architecture | undefined {
    const family = familyOf(instanceType);
    if (family === "a1" || /^p6e-gb\d+$/.test(family)) {
        return "arm64";
    }
    // series letters, generation digits, attribute letters; a dashed suffix (m7i-flex, p6-b200) is not an attribute.
    const parts = /^([a-z]+)(\d+)([a-z]*)(?:-[a-z0-9]+)?$/.exec(family);
    if (!parts || !/\.[a-z0-9]+$/.test(instanceType.trim())) {
        return undefined;
    }
    return parts[3].includes("g") ? "arm64" : "x86_64";
}

/** NVIDIA families the current Base OSS DLAMIs support; g4ad is AMD, p2/g3/p3 are too old for their driver. */
const nvidiaFamily = /^(g4dn|g5g?|g6e?|gr6|g7e?|p4de?|p5(e|en)?|p6-b\d+|p6e-gb\d+)$/;
const neuronFamily = /^(inf\d|trn\d)[a-z]*$/;
/** Accelerated families outside the DLAMI: AMD (g4ad), old NVIDIA (g3, p2, p3), Gaudi (dl1), AI100 (dl2q), FPGAs, vt1. */
const otherAcceleratorFamily = /^(g\d|gr\d|p\d|dl\d|f\d|vt\d)/;

export function acceleratorOf(instanceType: string): Accelerator {
    const family = familyOf(instanceType);
    if (nvidiaFamily.test(family)) return "nvidia";
    if (neuronFamily.test(family)) return "neuron";
    if (otherAcceleratorFamily.test(family)) return "other";
    return "none";
}

export interface AmiQuery {
    owner: string;
    namePattern: string;
    architecture: Architecture;
}

/** The gateway's image: Canonical's Ubuntu 24.04 for the instance type's architecture. */
export function ubuntuImage(architecture: Architecture): AmiQuery {
    const arch = architecture === "arm64" ? "arm64" : "amd64";
    return { owner: canonicalOwner, namePattern: `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${arch}-server-*`, architecture };
}

/** The replicas' image: the Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04); `????????` is its date. */
export function gpuImage(architecture: Architecture): AmiQuery {
    const arm = architecture === "arm64" ? "ARM64 " : "";
    return { owner: dlamiOwner, namePattern: `Deep Learning ${arm}Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) ????????`, architecture };
}

/** What a replica on this instance type needs, or why it can't run there; `path` names the config field. */
export function replicaTypeProblem(instanceType: string, hasImage: boolean, hasAmi: boolean): string | undefined {
    if (!architectureOf(instanceType)) {
        return `expected an EC2 instance type such as g5.xlarge or g6e.xlarge (family, generation, size)`;
    }
    const accelerator = acceleratorOf(instanceType);
    if (accelerator === "neuron" || accelerator === "other") {
        const what = accelerator === "neuron" ? "AWS Neuron (Inferentia/Trainium)" : "a non-NVIDIA or unsupported accelerator";
        if (hasImage) {
            return `${instanceType} has ${what}; containers (image) run with --gpus all, which needs an NVIDIA type such as g5.xlarge, g6.xlarge, g6e.xlarge or p5.48xlarge`;
        }
        if (!hasAmi) {
            return `${instanceType} has ${what}, which the default NVIDIA image can't drive; use an NVIDIA type (g5, g6, g6e, p4d, p5) or set ami to an image with its drivers`;
        }
    }
    return undefined;
}
