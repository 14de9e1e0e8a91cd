// The stack program's entry point: stack config → one Gateway and its Services. `pulumi up` runs
// `buildStack(readStackConfig())` (index.ts); the bad-config tests run exactly that too.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseStackConfig, type GatewayArgs, type StackConfig } from "./config";
import { resolveEnv } from "./env";
import { Gateway } from "./gateway";
import { readKeyFiles } from "./keys";
import { ModelEndpoint } from "./model-endpoint";
import { Service } from "./service";

/**
 * Reads the current stack's config of this project (`gateway`, `services`, `tokens`) as the engine hands
 * it over, secrets decrypted. Other keys of the project are passed along too, so a misspelt key
 * (`pulumi config set gatway ...`) is reported instead of ignored.
 */
export function readStackConfig(): Record<string, unknown> {
    const prefix = `${pulumi.getProject()}:`;
    const config: Record<string, unknown> = {};
    for (const [fullKey, text] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(prefix)) {
            continue;
        }
        // The raw text: the whole config is validated here, and secret parts are made secret below.
        try {
            config[fullKey.slice(prefix.length)] = JSON.parse(text);
        } catch {
            config[fullKey.slice(prefix.length)] = text;
        }
    }
    return config;
}

/** Key files named by privateKeyPath, read now: a missing file stops the run before any resource. */
function withKeysRead(config: StackConfig): StackConfig {
    const gateway = readKeyFiles(config.gateway, "gateway");
    const services = config.services.map((s, i) => readKeyFiles(s, `services[${i}]`));
    const problems = [...gateway.problems, ...services.flatMap((s) => s.problems)];
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return { ...config, gateway: gateway.value, services: services.map((s) => s.value) };
}

/** Keys, certificates and an ACME account's HMAC key in the stack config become secrets before they reach any resource. */
function secretsMarked(config: StackConfig): StackConfig {
    const secret = (v: pulumi.Input<string> | undefined) => (v === undefined ? undefined : pulumi.secret(v));
    const gateway = { ...config.gateway, privateKey: secret(config.gateway.privateKey) };
    if (config.gateway.tls) {
        gateway.tls = { ...config.gateway.tls, privateKey: secret(config.gateway.tls.privateKey) as pulumi.Output<string> };
    }
    const certificate = config.gateway.certificate;
    if (typeof certificate === "object" && certificate.acme.eab) {
        const eab = certificate.acme.eab;
        gateway.certificate = { acme: { ...certificate.acme, eab: { ...eab, hmacKey: secret(eab.hmacKey) as pulumi.Output<string> } } };
    }
    const services = config.services.map((s) => (s.hosts ? { ...s, hosts: s.hosts.map((h) => ({ ...h, privateKey: secret(h.privateKey) })) } : s));
    return { ...config, gateway, services };
}

/** Validates everything first (a ConfigError lists every problem), then registers the resources. */
export function buildStack(
    raw: unknown,
    environment: NodeJS.ProcessEnv = process.env,
): { gateway: Gateway; services: Service[]; endpoint: ModelEndpoint | undefined } {
    const parsed = parseStackConfig(raw);
    const envs = parsed.services.map((s, i) => resolveEnvOrProblems(s.env, environment, `services[${i}].env`));
    const problems = envs.flatMap((e) => (e instanceof ConfigError ? e.problems : []));
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    const config = secretsMarked(withKeysRead(parsed));
    const { type: _gatewayType, name: gatewayName, ...gatewaySettings } = config.gateway;
    const gateway = new Gateway(gatewayName, gatewaySettings as GatewayArgs);
    const services = config.services.map(({ type: _serviceType, name, ...settings }, i) => {
        const env = envs[i] as Record<string, pulumi.Input<string>>;
        return new Service(name, { ...settings, env, gateway, tokens: pulumi.secret(config.tokens[name] ?? []) });
    });
    const endpoint = config.gateway.endpoint ? new ModelEndpoint(config.gateway.endpoint.name, { gateway, services }) : undefined;
    return { gateway, services, endpoint };
}

function resolveEnvOrProblems(env: Record<string, pulumi.Input<string>> | string[] | undefined, environment: NodeJS.ProcessEnv, where: string) {
    try {
        return resolveEnv(env, environment, where);
    } catch (err) {
        if (err instanceof ConfigError) {
            return err;
        }
        throw err;
    }
}
