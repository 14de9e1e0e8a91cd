// Config: one shape (schema.ts), checks across fields (checks.ts), one way to parse and report (errors.ts).
import { gatewayProblems, serviceProblems, stackProblems } from "./checks";
import { parseOrThrow } from "./errors";
import { gatewaySettingsSchema, keyAliases, serviceSettingsSchema, stackSchema, type GatewaySettings, type ServiceSettings, type StackConfig } from "./schema";

export { ConfigError, formatIssues, parseOrThrow, type Problem } from "./errors";
export { endpointModelProblem, endpointNameProblem, portSlotProblem } from "./checks";
export { defaultEndpointName, replicaRoles, tokensSchema } from "./schema";
export { roleSettings, type RoleSettings } from "./roles";
export {
    certificateSource,
    isPublicDomain,
    letsEncryptDirectory,
    reservedSuffixOf,
    undecidedDefault,
    type AcmeArgs,
    type AcmeSettings,
    type CertificateArgs,
    type CertificateSource,
} from "./certificate";
export type {
    EndpointArgs,
    GatewayArgs,
    GatewayConfig,
    GatewaySettings,
    PdArgs,
    PdRoleArgs,
    RateLimit,
    ReplicaRole,
    RateLimitArgs,
    RouterArgs,
    ServiceConfig,
    ServiceSettings,
    ServiceSettingsArgs,
    StackConfig,
    TlsArgs,
} from "./schema";

/** The stack config (`gateway`, `services`, `tokens`) with every problem at once, or a ConfigError listing them. */
export function parseStackConfig(input: unknown): StackConfig {
    return parseOrThrow(stackSchema, input, { aliases: keyAliases, check: stackProblems });
}

/** A Gateway's args: the same fields as the stack config's `gateway`, checked the same way. */
export function parseGatewaySettings(name: string, input: unknown): GatewaySettings {
    return parseOrThrow(gatewaySettingsSchema, input, { label: `Gateway ${name}`, aliases: keyAliases, check: gatewayProblems });
}

/** A Service's args: the same fields as a stack config `services` entry, checked against its gateway. */
export function parseServiceSettings(name: string, input: unknown, gateway: Pick<GatewaySettings, "backend" | "router">): ServiceSettings {
    return parseOrThrow(serviceSettingsSchema, input, { label: `Service ${name}`, aliases: keyAliases, check: (s) => serviceProblems(s, gateway) });
}
