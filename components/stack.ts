// From validated stack config to components: what the stack program (index.ts) runs.
import * as fs from "fs";
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseStackConfig, portSlots, type ServiceConfig, type StackConfig } from "./config";
import { portSlot } from "./naming";
import { routerFor } from "./routers";
import { Gateway, type GatewayArgs } from "./gateway";
import { Service } from "./service";

/** Reads `gateway`, `services` and `tokens` of the current stack's config, secrets decrypted. */
export function readStackConfig(): unknown {
    const project = pulumi.getProject();
    const read = (key: string): unknown => {
        // The raw accessor: the whole config is validated here, and secret parts stay secret below.
        const text = pulumi.runtime.getConfig(`${project}:${key}`);
        if (text === undefined) {
            return undefined;
        }
        try {
            return JSON.parse(text);
        } catch {
            return text;
        }
    };
    return { gateway: read("gateway"), services: read("services"), tokens: read("tokens") };
}

/** `[NAME, NAME=VALUE]` or `{NAME: VALUE}`; a bare NAME takes its value from the deploying environment. */
export function resolveEnv(services: ServiceConfig[], environment: NodeJS.ProcessEnv): Record<string, string>[] {
    const problems: string[] = [];
    const resolved = services.map((service, i) => {
        const env = service.env ?? {};
        if (!Array.isArray(env)) {
            return env;
        }
        const out: Record<string, string> = {};
        env.forEach((entry, j) => {
            const eq = entry.indexOf("=");
            if (eq >= 0) {
                out[entry.slice(0, eq)] = entry.slice(eq + 1);
            } else if (environment[entry] !== undefined) {
                out[entry] = environment[entry] as string;
            } else {
                problems.push(`services[${i}].env[${j}]: ${entry} has no value here: set it in the environment of \`pulumi up\`, or write ${entry}=VALUE (got "${entry}")`);
            }
        });
        return out;
    });
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return resolved;
}

/** Two services on one gateway must not share router and bridge ports. */
export function checkPortSlots(services: ServiceConfig[]): void {
    const owner = new Map<number, number>();
    const problems: string[] = [];
    services.forEach((s, i) => {
        const slot = portSlot(s.name, s.portSlot);
        const first = owner.get(slot);
        if (first === undefined) {
            owner.set(slot, i);
        } else {
            problems.push(
                `services[${i}].portSlot: '${s.name}' gets port slot ${slot}, already taken by services[${first}] '${services[first].name}'; ` +
                    `set portSlot to a free slot from 0 to ${portSlots - 1} (got ${s.portSlot === undefined ? "none" : s.portSlot})`,
            );
        }
    });
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
}

/** The key text of `privateKey`, or of the file `privateKeyPath` names (`~` is the home directory). */
export function readKey(holder: { privateKey?: string; privateKeyPath?: string }, where: string): string | undefined {
    if (holder.privateKey || !holder.privateKeyPath) {
        return holder.privateKey;
    }
    const file = holder.privateKeyPath.replace(/^~(?=\/|$)/, os.homedir());
    try {
        return fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new ConfigError([`${where}.privateKeyPath: cannot read ${file}: ${(err as Error).message} (got "${holder.privateKeyPath}")`]);
    }
}

/** Policies the configured router cannot run, reported with their config path. */
export function checkRouterPolicies(config: StackConfig): void {
    const router = config.gateway.router;
    if (!router) {
        return;
    }
    const problems: string[] = [];
    const gatewayProblem = routerFor(router.type).policyProblem(router.policy);
    if (gatewayProblem && config.services.some((s) => !s.router)) {
        problems.push(`gateway.router.policy: ${gatewayProblem} (got "${router.policy}")`);
    }
    config.services.forEach((s, i) => {
        const problem = s.router && routerFor(router.type).policyProblem(s.router.policy);
        if (problem) {
            problems.push(`services[${i}].router.policy: ${problem} (got "${s.router?.policy}")`);
        }
    });
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
}

function gatewayArgs(config: StackConfig, gatewayKey: string): GatewayArgs {
    const g = config.gateway;
    const privateKey = pulumi.secret(gatewayKey);
    const backend: GatewayArgs["backend"] =
        g.backend === "aws"
            ? { type: "aws", region: g.region, instanceType: g.instanceType, vpcId: g.vpcId, subnetId: g.subnetId, zoneId: g.zoneId, ami: g.ami, privateKey, user: g.user }
            : { type: "ssh", host: g.host, port: g.port, user: g.user, privateKey };
    return {
        domain: g.domain,
        backend,
        router: g.router,
        tls: g.tls ? { certificate: g.tls.certificate, privateKey: pulumi.secret(g.tls.privateKey) } : undefined,
    };
}

/** Validates everything first (throws ConfigError listing every problem), then registers the resources. */
export function fromStackConfig(raw: unknown, environment: NodeJS.ProcessEnv = process.env): { gateway: Gateway; services: Service[] } {
    const config = parseStackConfig(raw);
    checkPortSlots(config.services);
    checkRouterPolicies(config);
    const envs = resolveEnv(config.services, environment);
    // Keys are read before any resource is registered: a missing file stops the run untouched.
    const gatewayKey = readKey(config.gateway, "gateway") as string;
    const hostKeys = config.services.map((s, i) => (s.hosts ?? []).map((h, j) => readKey(h, `services[${i}].hosts[${j}]`) ?? gatewayKey));
    const gateway = new Gateway(config.gateway.name, gatewayArgs(config, gatewayKey));
    const services = config.services.map(
        (s, i) =>
            new Service(s.name, {
                gateway,
                port: s.port,
                model: s.model,
                commands: s.commands,
                image: s.image,
                env: envs[i],
                replicas: s.replicas,
                auth: s.auth,
                tokens: pulumi.secret(config.tokens[s.name] ?? []),
                rateLimits: s.rate_limits,
                routerPolicy: s.router?.policy,
                hosts: s.hosts?.map((h, j) => ({
                    host: h.host,
                    port: h.port,
                    user: h.user,
                    privateKey: pulumi.secret(hostKeys[i][j]),
                })),
                instanceType: s.instanceType,
                portSlot: s.portSlot,
                readinessTimeoutSeconds: s.readinessTimeoutSeconds,
            }),
    );
    return { gateway, services };
}
