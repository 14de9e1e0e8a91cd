// Pulumi mocks that record every resource the program registers, for assertions on the graph.
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    /** Names of the inputs that arrived as secrets. */
    secretInputs: string[];
    /** The provider reference (URN::id) the resource was registered with; "" for the default provider. */
    provider: string;
}

const secretSig = "4dabf18193072939515e22adb298388d";

/** Mocks see secrets wrapped; unwrap them, remembering which top-level inputs were secret. */
function unwrapSecrets(value: unknown, onSecret: () => void): unknown {
    if (Array.isArray(value)) {
        return value.map((v) => unwrapSecrets(v, onSecret));
    }
    if (value && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (secretSig in record) {
            onSecret();
            return unwrapSecrets(record.value, onSecret);
        }
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v, onSecret)]));
    }
    return value;
}

/** Unwraps secrets anywhere in a value (for mocks that only read values). */
export function plain(value: unknown): unknown {
    return unwrapSecrets(value, () => undefined);
}

export class RecordingMocks implements pulumi.runtime.Mocks {
    readonly resources: Registered[] = [];

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const secretInputs: string[] = [];
        const inputs = Object.fromEntries(
            Object.entries(args.inputs as Record<string, unknown>).map(([k, v]) => [k, unwrapSecrets(v, () => secretInputs.push(k))]),
        );
        this.resources.push({ type: args.type, name: args.name, inputs, secretInputs: [...new Set(secretInputs)], provider: args.provider ?? "" });
        const state: Record<string, unknown> = { ...inputs };
        if (args.type === "aws:ec2/eip:Eip") {
            state.publicIp = "203.0.113.10";
        }
        if (args.type === "aws:ec2/instance:Instance") {
            state.privateIp = `10.0.0.${10 + this.resources.length}`;
        }
        if (args.type === "aws:ec2/keyPair:KeyPair") {
            state.keyName = `${args.name}-kp`;
        }
        return { id: `${args.name}-id`, state };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        if (args.token === "aws:ec2/getAmi:getAmi") {
            return { id: "ami-0123456789abcdef0", architecture: "x86_64" };
        }
        return args.inputs;
    }

    named(name: string): Registered {
        const found = this.resources.find((r) => r.name === name);
        if (!found) {
            throw new Error(`no resource named ${name}; registered: ${this.resources.map((r) => r.name).join(", ")}`);
        }
        return found;
    }

    ofType(type: string): Registered[] {
        return this.resources.filter((r) => r.type === type);
    }
}

/** Resolves an Output in tests (mocks resolve everything, secrets included). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** Waits until every registration the program started has reached the mocks (untyped in the SDK's .d.ts). */
export async function settle(): Promise<void> {
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
}

/**
 * Records, per `type::name`, the URNs each registration depends on (explicit and through its inputs'
 * Outputs). Mocks don't see dependencies; the mock monitor's requests carry them. Call after setMocks.
 */
export function recordDependencies(): Map<string, string[]> {
    const dependencies = new Map<string, string[]>();
    type Request = { getType(): string; getName(): string; getDependenciesList(): string[] };
    const monitor = (pulumi.runtime as unknown as { getMonitor(): { registerResource(req: Request, cb: unknown): Promise<void> } }).getMonitor();
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: Request, cb: unknown) => {
        dependencies.set(`${req.getType()}::${req.getName()}`, req.getDependenciesList());
        return register(req, cb);
    };
    return dependencies;
}
