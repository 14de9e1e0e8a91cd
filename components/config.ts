// Config schemas: the YAML shape users write, validated before any resource is registered.
import { z } from "zod";
import { checkAcrossServices } from "./config-checks";
import { formatIssues } from "./config-errors";

export const routerPolicies = ["cache_aware", "round_robin", "random", "power_of_two"] as const;
export type RouterPolicy = (typeof routerPolicies)[number];
export const routerTypes = ["sglang"] as const;
export type RouterType = (typeof routerTypes)[number];

/** Highest replica index + 1 a service may have: each service owns a block of this many bridge ports. */
export const maxReplicas = 64;
/** Number of port slots; a service's slot fixes its router, metrics and bridge ports. */
export const portSlots = 300;

const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const hostPattern = /^[A-Za-z0-9.:_-]{1,253}$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

const dnsLabel = z.string({ invalid_type_error: "expected a string" }).regex(dnsLabelPattern, {
    message: "expected a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'",
});
const nonEmpty = z.string({ invalid_type_error: "expected a string" }).min(1, "expected a non-empty string");
const port = z
    .number({ invalid_type_error: "expected a port number" })
    .int("expected a whole port number")
    .min(1, "expected a port from 1 to 65535")
    .max(65535, "expected a port from 1 to 65535");
const host = z.string({ invalid_type_error: "expected a host name or IP address" }).regex(hostPattern, {
    message: "expected a host name or IP address",
});
const policy = z.enum(routerPolicies, {
    errorMap: () => ({ message: `expected one of ${routerPolicies.join(", ")}` }),
});
const routerType = z.enum(routerTypes, {
    errorMap: () => ({ message: `expected a router type: ${routerTypes.join(", ")}` }),
});
const version = z.string({ invalid_type_error: "expected a version string" }).regex(/^\d+\.\d+\.\d+$/, {
    message: "expected an exact version such as 0.3.2 (the router install is pinned)",
});
const url = z.string({ invalid_type_error: "expected a URL" }).url("expected an http(s) URL").regex(/^https?:\/\//, {
    message: "expected an http(s) URL",
});

const token = z.string({ invalid_type_error: "expected a token string" }).regex(/^[A-Za-z0-9._~+\/=-]{8,512}$/, {
    message: "expected a bearer token of 8-512 characters from A-Z a-z 0-9 . _ ~ + / = -",
});

const routerObject = z
    .object({
        type: routerType,
        policy: policy.default("cache_aware"),
        version: version.default("0.3.2"),
        indexUrl: url.optional(),
    })
    .strict();

/** `router: sglang` is shorthand for `router: {type: sglang}`. */
export const routerSchema = z.union([routerType, routerObject], {
    errorMap: (issue, ctx) =>
        issue.code === "invalid_union" ? { message: `expected a router type (${routerTypes.join(", ")}) or {type, policy, version, indexUrl}` } : { message: ctx.defaultError },
}).transform((r) => (typeof r === "string" ? routerObject.parse({ type: r }) : r));
export type RouterConfig = z.output<typeof routerObject>;

const tlsSchema = z
    .object({
        certificate: nonEmpty.describe("PEM certificate chain for *.<domain>"),
        privateKey: nonEmpty.describe("PEM private key of the certificate"),
    })
    .strict();

const gatewayCommon = {
    type: z.literal("gateway", { errorMap: () => ({ message: "expected 'gateway'" }) }),
    name: dnsLabel,
    domain: z.string({ invalid_type_error: "expected a domain name" }).regex(domainPattern, {
        message: "expected a domain name such as example.com (lowercase labels separated by dots)",
    }),
    router: routerSchema.optional(),
    tls: tlsSchema.optional(),
};

const awsGateway = z
    .object({
        ...gatewayCommon,
        backend: z.literal("aws"),
        region: z.string({ invalid_type_error: "expected an AWS region" }).regex(/^[a-z]{2}(-[a-z]+)+-\d$/, {
            message: "expected an AWS region such as eu-west-1",
        }),
        instanceType: nonEmpty.default("t3.small"),
        vpcId: nonEmpty.optional(),
        subnetId: nonEmpty.optional(),
        zoneId: nonEmpty.optional(),
        ami: nonEmpty.optional(),
        privateKey: nonEmpty.optional(),
        privateKeyPath: nonEmpty.optional(),
        user: nonEmpty.default("ubuntu"),
    })
    .strict();

const sshGateway = z
    .object({
        ...gatewayCommon,
        backend: z.literal("ssh"),
        host,
        port: port.default(22),
        user: nonEmpty.default("root"),
        privateKey: nonEmpty.optional(),
        privateKeyPath: nonEmpty.optional(),
    })
    .strict();

export const gatewaySchema = z.discriminatedUnion("backend", [awsGateway, sshGateway], {
    errorMap: (issue, ctx) =>
        issue.code === "invalid_union_discriminator" ? { message: "expected a backend: aws or ssh" } : { message: ctx.defaultError },
});
export type GatewayConfig = z.output<typeof gatewaySchema>;

const sshHost = z
    .object({
        host,
        port: port.default(22),
        user: nonEmpty.default("root"),
        privateKey: nonEmpty.optional().describe("defaults to the gateway's key"),
        privateKeyPath: nonEmpty.optional(),
    })
    .strict();

const envList = z.union(
    [
        z.record(z.string().regex(envNamePattern, { message: "expected an environment variable name" }), z.string()),
        z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/s, { message: "expected NAME or NAME=VALUE" })),
    ],
    { errorMap: () => ({ message: "expected a map of NAME: VALUE or a list of NAME=VALUE / NAME" }) },
);

const rateLimitKey = z.union([z.literal("ip"), z.object({ header: z.string().regex(/^[A-Za-z0-9-]+$/, { message: "expected an HTTP header name" }) }).strict()], {
    errorMap: () => ({ message: "expected 'ip' or {header: NAME}" }),
});

const rateLimit = z
    .object({
        prefix: z.string({ invalid_type_error: "expected a path prefix" }).regex(/^\/[^\s{};]*$/, {
            message: "expected a path prefix starting with '/' without spaces, braces or ';'",
        }).default("/"),
        rps: z.number({ invalid_type_error: "expected a number of requests per second" }).positive("expected rps > 0").max(1_000_000, "expected rps <= 1000000"),
        burst: z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number").min(0, "expected burst >= 0").default(0),
        key: rateLimitKey.default("ip"),
    })
    .strict();
export type RateLimitConfig = z.output<typeof rateLimit>;

const serviceRouter = z
    .object({ policy })
    .strict();

export const serviceSchema = z
    .object({
        type: z.literal("service", { errorMap: () => ({ message: "expected 'service'" }) }),
        name: dnsLabel,
        port,
        model: nonEmpty,
        commands: z.array(nonEmpty, { invalid_type_error: "expected a list of shell commands" }).optional(),
        image: nonEmpty.optional(),
        env: envList.optional(),
        replicas: z
            .number({ invalid_type_error: `expected a whole number from 0 to ${maxReplicas}` })
            .int(`expected a whole number from 0 to ${maxReplicas}`)
            .min(0, `expected a whole number from 0 to ${maxReplicas}`)
            .max(maxReplicas, `expected a whole number from 0 to ${maxReplicas}`)
            .default(1),
        auth: z.boolean({ invalid_type_error: "expected true or false" }).default(true),
        rate_limits: z.array(rateLimit, { invalid_type_error: "expected a list of {prefix, rps, burst, key}" }).default([]),
        router: serviceRouter.optional(),
        hosts: z.array(sshHost, { invalid_type_error: "expected a list of {host, port, user, privateKey}" }).min(1, "expected at least one host").optional(),
        instanceType: nonEmpty.optional(),
        portSlot: z.number({ invalid_type_error: `expected a slot from 0 to ${portSlots - 1}` }).int(`expected a slot from 0 to ${portSlots - 1}`).min(0, `expected a slot from 0 to ${portSlots - 1}`).max(portSlots - 1, `expected a slot from 0 to ${portSlots - 1}`).optional(),
        readinessTimeoutSeconds: z.number().int("expected a whole number of seconds").min(1).max(7200).default(600),
    })
    .strict()
    .superRefine((s, ctx) => {
        if (!s.commands && !s.image) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["commands"], message: "expected commands, image, or both: nothing says how to start the model server" });
        }
    });
export type ServiceConfig = z.output<typeof serviceSchema>;

export const stackSchema = z
    .object({
        gateway: gatewaySchema,
        services: z.array(serviceSchema, { invalid_type_error: "expected a list of services" }).default([]),
        tokens: z.record(z.array(token, { invalid_type_error: "expected a list of bearer tokens" }).min(1, "expected at least one token")).default({}),
    })
    .strict()
    .superRefine((stack, ctx) => checkAcrossServices(stack, ctx));
export type StackConfig = z.output<typeof stackSchema>;

/** Thrown with one line per problem; each line names the path, the value and what is allowed. */
export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

function parseWith<S extends z.ZodTypeAny>(schema: S, input: unknown, pathPrefix: (string | number)[]): z.output<S> {
    const result = schema.safeParse(input);
    if (!result.success) {
        throw new ConfigError(formatIssues(result.error.issues, input, pathPrefix));
    }
    return result.data;
}

export const parseStackConfig = (input: unknown): StackConfig => parseWith(stackSchema, input, []);
export const parseGatewayConfig = (input: unknown): GatewayConfig => parseWith(gatewaySchema, input, ["gateway"]);
export const parseServiceConfig = (input: unknown, index = 0): ServiceConfig => parseWith(serviceSchema, input, ["services", index]);

/** The plain (non-Input) fields of a Service's args, checked with the same rules as the stack config. */
export function parseServiceArgs(
    name: string,
    args: {
        port: number;
        model: string;
        commands?: string[];
        image?: string;
        replicas?: number;
        auth?: boolean;
        rateLimits?: z.input<typeof rateLimit>[];
        routerPolicy?: RouterPolicy;
        instanceType?: string;
        portSlot?: number;
        readinessTimeoutSeconds?: number;
    },
): ServiceConfig {
    const input = {
        type: "service",
        name,
        port: args.port,
        model: args.model,
        commands: args.commands,
        image: args.image,
        replicas: args.replicas,
        auth: args.auth,
        rate_limits: args.rateLimits,
        router: args.routerPolicy ? { policy: args.routerPolicy } : undefined,
        instanceType: args.instanceType,
        portSlot: args.portSlot,
        readinessTimeoutSeconds: args.readinessTimeoutSeconds,
    };
    const result = serviceSchema.safeParse(JSON.parse(JSON.stringify(input)));
    if (!result.success) {
        throw new ConfigError(formatIssues(result.error.issues, input, []).map((line) => `Service ${name}: ${line}`));
    }
    return result.data;
}
