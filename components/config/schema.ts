// The config shape, one for both entry points: the stack config (`gateway`, `services`, `tokens`) and
// the component args (GatewayArgs, ServiceArgs hold the same fields). Cross-field checks: checks.ts.
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { backends, type BackendGatewayArgs, type BackendPlacementArgs } from "../backends";
import { maxReplicas, portSlots } from "../naming";
import { routerFor, routerTypes, type RouterSettings } from "../routers";
import { certificateSchema, type CertificateArgs } from "./certificate";
import type { KeyAliases } from "./errors";
import { dnsLabel, domain, exactVersion, httpUrl, imageName, keySourceFields, noNul, nonEmpty, oneLine, orOutput, port, token } from "./fields";

/** Old spellings still accepted: `rate_limits` was the documented key before `rateLimits`. */
export const keyAliases: KeyAliases = { rateLimits: "rate_limits" };

const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

const routerType = z.string({ invalid_type_error: "expected a router type" }).superRefine((type, ctx) => {
    if (!routerTypes().includes(type)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a router type: ${routerTypes().join(", ")}` });
    }
});

/** One router process per service, or two (a crash of one loses no request: nginx fails over to the other). */
const routerProcesses = z.union([z.literal(1), z.literal(2)], { errorMap: () => ({ message: "expected 1 or 2 router processes per service" }) });

const routerObject = z
    .object({
        type: routerType,
        policy: z.string({ invalid_type_error: "expected a policy name" }).optional(),
        processes: routerProcesses.optional(),
        version: exactVersion.optional(),
        indexUrl: httpUrl.optional(),
    })
    .strict();

/** `router: sglang` is shorthand for `router: {type: sglang}`; policy and version default to the router's own. */
const routerSchema = z
    .union([routerType, routerObject], {
        errorMap: (issue, ctx) =>
            issue.code === "invalid_union"
                ? { message: `expected a router type (${routerTypes().join(", ")}) or {type, policy, version, indexUrl}` }
                : { message: ctx.defaultError },
    })
    .transform((r): RouterSettings => {
        const given = typeof r === "string" ? { type: r } : r;
        const router = routerFor(given.type);
        return {
            type: given.type,
            policy: given.policy ?? router.defaultPolicy,
            version: given.version ?? router.defaultVersion,
            ...(given.indexUrl ? { indexUrl: given.indexUrl } : {}),
            ...("processes" in given && given.processes ? { processes: given.processes } : {}),
        };
    });

const tlsSchema = z
    .object({
        certificate: orOutput(nonEmpty),
        privateKey: orOutput(nonEmpty),
    })
    .strict();

/** The name the model endpoint takes when `endpoint` gives none. */
export const defaultEndpointName = "api";

/** One host name for every service's model: `<name>.<domain>`, routed by the request's `model`. */
const endpointSchema = z.object({ name: dnsLabel.default(defaultEndpointName) }).strict();

const gatewayCommon = {
    domain: orOutput(domain),
    router: routerSchema.optional(),
    tls: tlsSchema.optional(),
    certificate: certificateSchema.optional(),
    endpoint: endpointSchema.optional(),
    ...keySourceFields,
};

function gatewayUnion(extra: z.ZodRawShape) {
    const options = Object.entries(backends).map(([name, backend]) =>
        z.object({ ...extra, ...gatewayCommon, backend: z.literal(name), ...backend.gatewayFields }).strict(),
    );
    return z.discriminatedUnion("backend", options as unknown as [z.AnyZodObject, z.AnyZodObject], {
        errorMap: (issue, ctx) =>
            issue.code === "invalid_union_discriminator"
                ? { message: `expected a backend: ${Object.keys(backends).join(" or ")}` }
                : { message: ctx.defaultError },
    });
}

export interface RouterArgs {
    /** Router implementation; `sglang` is the SGLang router. */
    type: string;
    /** Load-balancing policy; default: the router's (cache_aware for sglang). */
    policy?: string;
    /** Exact router package version; default: the router's pinned default. */
    version?: string;
    /** Package index the gateway installs from (for gateways without internet); default PyPI. */
    indexUrl?: string;
    /** Router processes per service: 2 keeps serving through a crash of one; default 1. */
    processes?: 1 | 2;
}

export interface EndpointArgs {
    /** Host name label of the endpoint, served at `<name>.<domain>`; default `api`. No service may have it. */
    name?: string;
}

export interface TlsArgs {
    /** PEM certificate chain valid for `*.<domain>`. */
    certificate: pulumi.Input<string>;
    /** PEM private key of that certificate (secret). */
    privateKey: pulumi.Input<string>;
}

interface GatewayCommonArgs {
    /** Services are served at `<service>.<domain>`. */
    domain: pulumi.Input<string>;
    /** A router per service (`"sglang"` or {type, policy, version, indexUrl}); absent means a plain gateway. */
    router?: string | RouterArgs;
    /** Serve HTTPS with this certificate of your own and redirect HTTP to it; not with `certificate`. */
    tls?: TlsArgs;
    /**
     * Where the HTTPS certificates come from without `tls`: `letsencrypt`, `none` (HTTP only), or `{acme: {server,
     * email, eab, caBundle, indexUrl}}`; one per service name, renewed on the gateway. Default: letsencrypt for a
     * public domain, none for a reserved one (`.test`, `.internal`, `example.com`, …) or one known only at deploy time.
     */
    certificate?: CertificateArgs;
    /** One endpoint for every service's model at `<name>.<domain>` (routed by the request's `model`); absent means none. */
    endpoint?: EndpointArgs;
    /** SSH key of the gateway (secret); aws: its public half becomes the EC2 key pair. */
    privateKey?: pulumi.Input<string>;
    /** A file holding that key, read at deploy time (`~` allowed); instead of privateKey. */
    privateKeyPath?: string;
}

/** A gateway's settings: where it runs (`backend` and that backend's fields), its domain, router and TLS. */
export type GatewayArgs = GatewayCommonArgs & BackendGatewayArgs;
/** Gateway settings once parsed: defaults filled in, the router's too. */
export type GatewaySettings = Omit<GatewayArgs, "router" | "endpoint"> & { router?: RouterSettings; endpoint?: { name: string } };
/** The stack config's `gateway` key. */
export type GatewayConfig = GatewaySettings & { type: "gateway"; name: string };

export const gatewaySettingsSchema = gatewayUnion({}) as unknown as z.ZodType<GatewaySettings, z.ZodTypeDef, unknown>;

const rateLimitKey = z.union(
    [z.literal("ip"), z.object({ header: z.string().regex(/^[A-Za-z0-9-]+$/, { message: "expected an HTTP header name" }) }).strict()],
    { errorMap: () => ({ message: "expected 'ip' or {header: NAME}" }) },
);

const rateLimit = z
    .object({
        prefix: z
            .string({ invalid_type_error: "expected a path prefix" })
            .regex(/^\/[^\s{};]*$/, { message: "expected a path prefix starting with '/' without spaces, braces or ';'" })
            .default("/"),
        rps: z
            .number({ invalid_type_error: "expected a number of requests per second" })
            .positive("expected rps > 0")
            .max(1_000_000, "expected rps <= 1000000"),
        burst: z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number").min(0, "expected burst >= 0").default(0),
        key: rateLimitKey.default("ip"),
    })
    .strict();

export interface RateLimitArgs {
    /** Requests whose path starts with this are limited; default `/`. */
    prefix?: string;
    /** Requests per second (fractions allowed, e.g. 0.5). */
    rps: number;
    /** Requests allowed above the rate before 429; default 0. */
    burst?: number;
    /** What a client is: its IP (default) or the value of a header. */
    key?: "ip" | { header: string };
}
export type RateLimit = Required<RateLimitArgs>;

const envList = z.union(
    [
        z.record(z.string().regex(envNamePattern, { message: "expected an environment variable name" }), orOutput(noNul)),
        z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/s, { message: "expected NAME or NAME=VALUE" })),
    ],
    { errorMap: () => ({ message: "expected a map of NAME: VALUE or a list of NAME=VALUE / NAME" }) },
);

const placementFields: z.ZodRawShape = Object.assign({}, ...Object.values(backends).map((b) => b.placementFields));
const wholeReplicas = `expected a whole number from 0 to ${maxReplicas}`;
const slotRange = `expected a slot from 0 to ${portSlots - 1}`;

const commands = z.array(noNul.min(1, "expected a non-empty string"), { invalid_type_error: "expected a list of shell commands" });
const replicaCount = z.number({ invalid_type_error: wholeReplicas }).int(wholeReplicas).min(0, wholeReplicas).max(maxReplicas, wholeReplicas);
const policyName = z.string({ invalid_type_error: "expected a policy name" });

/** What a PD role may set for itself; unset fields come from the service (env is merged, the role's winning). */
const roleFields = {
    replicas: replicaCount.default(1),
    port: port.optional(),
    commands: commands.optional(),
    image: imageName.optional(),
    env: envList.optional(),
    policy: policyName.optional(),
    ...placementFields,
};

const pdSchema = z
    .object({
        // SGLang's own default bootstrap port: a prefill started without --disaggregation-bootstrap-port listens there.
        prefill: z.object({ ...roleFields, bootstrapPort: port.default(8998) }).strict(),
        decode: z.object(roleFields).strict(),
    })
    .strict();

const serviceCommon = {
    port,
    model: oneLine,
    commands: commands.optional(),
    image: imageName.optional(),
    env: envList.optional(),
    // No default here: a PD service must not set it (its replicas are per role); others default to 1 below.
    replicas: replicaCount.optional(),
    pd: pdSchema.optional(),
    auth: z.boolean({ invalid_type_error: "expected true or false" }).default(true),
    rateLimits: z.array(rateLimit, { invalid_type_error: "expected a list of {prefix, rps, burst, key}" }).default([]),
    router: z.object({ policy: policyName.optional(), processes: routerProcesses.optional() }).strict().optional(),
    portSlot: z
        .number({ invalid_type_error: slotRange })
        .int(slotRange)
        .min(0, slotRange)
        .max(portSlots - 1, slotRange)
        .optional(),
    readinessTimeoutSeconds: z.number().int("expected a whole number of seconds").min(1).max(7200).default(600),
    ...placementFields,
};

/** Renames an alias to its documented key, unless both are given (then the alias is an unknown key). */
function withAliases(input: unknown): unknown {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
        return input;
    }
    const out: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    for (const [documented, alias] of Object.entries(keyAliases)) {
        if (alias in out && !(documented in out)) {
            out[documented] = out[alias];
            delete out[alias];
        }
    }
    return out;
}

function serviceObject(extra: z.ZodRawShape) {
    return z.preprocess(
        withAliases,
        z
            .object({ ...extra, ...serviceCommon })
            .strict()
            .superRefine((s, ctx) => {
                if (s.pd) {
                    // 0 is what parsing fills in (parsed settings parse again, as the stack program hands them to components).
                    if (s.replicas !== undefined && s.replicas !== 0) {
                        ctx.addIssue({
                            code: z.ZodIssueCode.custom,
                            path: ["replicas"],
                            message: "a PD service counts its replicas per role: set pd.prefill.replicas and pd.decode.replicas instead",
                        });
                    }
                    for (const role of replicaRoles) {
                        if (!s.pd[role].commands && !s.pd[role].image && !s.commands && !s.image) {
                            ctx.addIssue({
                                code: z.ZodIssueCode.custom,
                                path: ["pd", role, "commands"],
                                message: `expected commands or image for the ${role} role (on the role or the service): nothing says how to start its model servers`,
                            });
                        }
                    }
                } else if (!s.commands && !s.image) {
                    ctx.addIssue({
                        code: z.ZodIssueCode.custom,
                        path: ["commands"],
                        message: "expected commands, image, or both: nothing says how to start the model server",
                    });
                }
            })
            // A PD service has no replicas of its own: each role has its count.
            .transform((s) => ({ ...s, replicas: s.pd ? 0 : (s.replicas ?? 1) })),
    );
}

type ServiceCommonArgs = {
    /** Port the model server listens on (replicas sharing a host get port, port+1, ...), `$PORT`. */
    port: number;
    /** Model name (`$MODEL` in the replicas' environment). */
    model: string;
    /** Shell commands that start the model server; they run in order, the last one serves. */
    commands?: string[];
    /** Container image to run the commands in (docker on the replica host). */
    image?: string;
    /** Environment of the model server: {NAME: value}, or [NAME=value, NAME] (a bare NAME from the deploying environment). */
    env?: Record<string, pulumi.Input<string>> | string[];
    /** Number of replicas, 0 to 64; default 1. 0 keeps the endpoint and answers 503. Not with `pd`. */
    replicas?: number;
    /** Prefill/decode disaggregation: replicas per role instead of `replicas` (needs a router that can run PD). */
    pd?: PdArgs;
    /** Require a bearer token; default true. */
    auth?: boolean;
    /** nginx rate limits; over the limit answers 429. */
    rateLimits?: RateLimitArgs[];
    /** Router settings of this service; default: the gateway's policy and process count. */
    router?: { policy?: string; processes?: 1 | 2 };
    /** Pins the service's port slot (0-299) when two service names map to the same one. */
    portSlot?: number;
    /** How long a new replica may take to become healthy; default 600. */
    readinessTimeoutSeconds?: number;
};

/** The two roles of a PD service. */
export const replicaRoles = ["prefill", "decode"] as const;
export type ReplicaRole = (typeof replicaRoles)[number];

/** One role of a PD service: its own count, and whatever it starts or places differently from the service. */
export type PdRoleArgs = {
    /** Replicas of this role, 0 to 64; default 1. 0 keeps the endpoint, which answers 503 naming the role. */
    replicas?: number;
    /** Port of this role's model servers; default the service's port. */
    port?: number;
    /** Commands that start this role's model server; default the service's. */
    commands?: string[];
    /** Container image of this role; default the service's. */
    image?: string;
    /** Environment added to the service's (this role's values win). */
    env?: Record<string, pulumi.Input<string>> | string[];
    /** Router policy for this role (`--prefill-policy` / `--decode-policy`); default the service's. */
    policy?: string;
} & BackendPlacementArgs;

export interface PdArgs {
    /** Prefill servers: they compute the prompt's KV cache and hand it to a decode server. */
    prefill: PdRoleArgs & {
        /** Port of the prefill's bootstrap server, where decode servers reach it directly; default 8998 (SGLang's). */
        bootstrapPort?: number;
    };
    /** Decode servers: they generate the answer the client gets. */
    decode: PdRoleArgs;
}

export type PdRoleSettings = Omit<PdRoleArgs, "replicas"> & { replicas: number };
export interface PdSettings {
    prefill: PdRoleSettings & { bootstrapPort: number };
    decode: PdRoleSettings;
}

/** A service's settings: the model server, how many replicas, where they run, and the endpoint's auth and limits. */
export type ServiceSettingsArgs = ServiceCommonArgs & BackendPlacementArgs;
/** Service settings once parsed: defaults filled in. */
export type ServiceSettings = Omit<ServiceSettingsArgs, "replicas" | "auth" | "rateLimits" | "readinessTimeoutSeconds" | "pd"> & {
    /** Replicas without a role; 0 for a PD service (its counts are in `pd`). */
    replicas: number;
    pd?: PdSettings;
    auth: boolean;
    rateLimits: RateLimit[];
    readinessTimeoutSeconds: number;
};
/** One entry of the stack config's `services` list. */
export type ServiceConfig = ServiceSettings & { type: "service"; name: string };

export const serviceSettingsSchema = serviceObject({}) as unknown as z.ZodType<ServiceSettings, z.ZodTypeDef, unknown>;

export interface StackConfig {
    gateway: GatewayConfig;
    services: ServiceConfig[];
    /** Bearer tokens per service name. */
    tokens: Record<string, string[]>;
}

export const stackSchema = z
    .object({
        gateway: gatewayUnion({ type: z.literal("gateway", { errorMap: () => ({ message: "expected 'gateway'" }) }), name: dnsLabel }),
        services: z
            .array(serviceObject({ type: z.literal("service", { errorMap: () => ({ message: "expected 'service'" }) }), name: dnsLabel }), {
                invalid_type_error: "expected a list of services",
            })
            .default([]),
        tokens: z.record(z.array(token, { invalid_type_error: "expected a list of bearer tokens" }).min(1, "expected at least one token")).default({}),
    })
    .strict() as unknown as z.ZodType<StackConfig, z.ZodTypeDef, unknown>;

/** Bearer tokens as component args give them: checked when known, passed as they are when Outputs. */
export const tokensSchema = orOutput(z.array(orOutput(token), { invalid_type_error: "expected a list of bearer tokens" }));
