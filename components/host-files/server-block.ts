// Decides what a service's nginx server block contains: locations, rate-limit zones, upstream.
import type { RateLimit } from "../config";
import type { HostFile } from "../host-script/phases";
import { gatewayPaths, servicePaths } from "../naming";
import type { NoWorkerAnswer, PathAllowList } from "../routers";
import { render } from "../templates";

export type { PathAllowList } from "../routers";

export interface RateLimitZone {
    zone: string;
    key: string;
    rate: string;
    burst: number;
    prefix: string;
}

export interface PlannedLocation {
    /** The nginx location argument, e.g. `= /generate` or `/v1/`. */
    match: string;
    /** Zones whose prefix covers every request this location matches. */
    zones: RateLimitZone[];
}

/** Everything goes to the upstream: a plain gateway without a router. */
export const allowEverything: PathAllowList = { exact: [], prefix: ["/"] };

/** nginx rates are whole requests per second or per minute; fractions go per minute. */
export function nginxRate(rps: number): string {
    return Number.isInteger(rps) ? `${rps}r/s` : `${Math.max(1, Math.round(rps * 60))}r/m`;
}

/** nginx's variable for a request header: lowercase, dashes become underscores (`X-Api-Key` → `$http_x_api_key`). */
export function headerVariable(header: string, prefix = "$http_"): string {
    return `${prefix}${header.toLowerCase().replace(/-/g, "_")}`;
}

/** CORS is the gateway's decision: whatever a router sends by default (0.3.2: `*` on everything) is dropped. */
export const corsResponseHeaders = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-expose-headers",
    "access-control-max-age",
];

/** Names one request in nginx's access log, the router's log and the answer: nginx's `$request_id`. */
export const requestIdHeader = "x-request-id";

export function rateLimitZones(service: string, limits: RateLimit[]): RateLimitZone[] {
    return limits.map((limit, i) => ({
        zone: `sgw_${service}_${i}`,
        key: limit.key === "ip" ? "$binary_remote_addr" : headerVariable(limit.key.header),
        rate: nginxRate(limit.rps),
        burst: limit.burst,
        prefix: limit.prefix,
    }));
}

/**
 * One location per allowed path, plus one per rate-limit prefix that is narrower than an allowed
 * prefix, so a limit on `/v1/chat/` applies even though `/v1/` is the allowed location
 * (nginx picks the longest prefix, so a narrower limit needs a location of its own).
 * Limits on prefixes outside the allow-list are not planned: those paths answer 403 anyway.
 */
export function planLocations(allow: PathAllowList, zones: RateLimitZone[]): PlannedLocation[] {
    const isAllowed = (p: string) => allow.prefix.some((a) => p.startsWith(a));
    const prefixes = new Set(allow.prefix);
    for (const z of zones) {
        if (isAllowed(z.prefix)) {
            prefixes.add(z.prefix);
        }
    }
    const covering = (path: string) => zones.filter((z) => path.startsWith(z.prefix));
    const exact = allow.exact.map((p) => ({ match: `= ${p}`, zones: covering(p) }));
    const byPrefix = [...prefixes].sort().map((p) => ({ match: p, zones: covering(p) }));
    return [...exact, ...byPrefix];
}

/**
 * HTTPS with this certificate. `httpElsewhere`: the gateway's port-80 server answers HTTP for the name (ACME
 * challenges, then the redirect), so the block listens on HTTPS only; else it redirects HTTP itself.
 */
export interface ServerTls {
    certificatePath: string;
    privateKeyPath: string;
    httpElsewhere?: boolean;
}

/** What a template receives of a `ServerTls`: every field given, or false for plain HTTP. */
export function tlsContext(tls: ServerTls | undefined): (ServerTls & { httpElsewhere: boolean }) | false {
    return tls ? { ...tls, httpElsewhere: tls.httpElsewhere ?? false } : false;
}

export interface ServerBlockInput {
    service: string;
    /** `<service>.<domain>` */
    serverName: string;
    auth: boolean;
    tokens: string[];
    /** nginx upstream servers: the router, or the replicas themselves; empty answers 503. */
    upstreamServers: string[];
    /** Paths passed upstream; undefined passes everything (no router). */
    allow?: PathAllowList;
    rateLimits: RateLimit[];
    tls?: ServerTls;
    /** Response headers of the router that never reach a client (worker addresses, internal error codes). */
    internalResponseHeaders?: readonly string[];
    /** The router's answer for "no worker", turned into the gateway's 503. */
    noWorkerAnswer?: NoWorkerAnswer;
    /** The model the service serves, named in that 503 (a router answers it too for a request naming another model). */
    servedModel?: string;
    /** A PD service's replica counts: the 503 for "no worker" names the role that has none. */
    pdReplicas?: { prefill: number; decode: number };
    /**
     * The upstream servers are the service's router processes, each able to serve any request: a request
     * that failed against one (it crashed: refused, reset before an answer) goes to the other.
     */
    failover?: boolean;
    /** Longest a request may take, streaming included. */
    readTimeoutSeconds?: number;
    /** Where the access log goes; default the service's on the gateway (tests point it elsewhere). */
    accessLog?: string;
    /** Public ports; default 80 and 443. */
    httpPort?: number;
    httpsPort?: number;
}

/** The 503 body for a router's "no worker for this model": either cause, and the model this service serves. */
export function noWorkerMessage(service: string, model: string | undefined): string {
    // Shown inside an nginx string: `$` would start a variable, so only plain characters of the name.
    const served = model ? ` model '${model.replace(/[^A-Za-z0-9._/:@+-]/g, "?")}'` : "";
    const message = `service ${service} has no replica ready to serve${served} (scaled to zero, starting, or unhealthy), or the request names another model`;
    return `${JSON.stringify({ error: { message, type: "service_unavailable", code: 503 } })}\n`;
}

/**
 * The 503 body of a PD service whose router lacks a prefill or a decode worker. nginx cannot read which
 * from the router's answer, so a role scaled to zero is named from the config; otherwise both are suspects.
 */
export function pdNoWorkerMessage(service: string, replicas: { prefill: number; decode: number }): string {
    const missing = (["prefill", "decode"] as const).filter((role) => replicas[role] === 0);
    const message =
        missing.length > 0
            ? `service ${service} has no ${missing.join(" and no ")} replica (pd.${missing[0]}.replicas is 0); each request needs a prefill and a decode replica`
            : `service ${service} has no prefill or no decode replica ready (starting or unhealthy); each request needs one of each`;
    return `${JSON.stringify({ error: { message, type: "service_unavailable", code: 503 } })}\n`;
}

/**
 * The nginx regex (a `map` key) that accepts exactly this bearer token: the token case-sensitive, the
 * scheme in any case and followed by one or more spaces (RFC 7235).
 */
export function tokenPattern(token: string): string {
    return `~^[Bb][Ee][Aa][Rr][Ee][Rr] +${token.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`;
}

/**
 * How a service's requests are proxied: its token check, zones, log, upstream, hidden headers and error
 * answers. Its own server block and its locations in the model endpoint render from this one context.
 */
export function serviceProxyContext(input: ServerBlockInput) {
    const names = servicePaths(input.service);
    return {
        service: input.service,
        auth: input.auth,
        authVariable: `$${names.variablePrefix}_authorized`,
        accessLog: input.accessLog ?? names.accessLog,
        accessLogFormat: names.accessLogFormat,
        upstreamName: names.upstreamName,
        upstreamServers: input.upstreamServers,
        zones: rateLimitZones(input.service, input.rateLimits),
        // The router's echo of the request id: nginx adds its own on every answer.
        hideHeaders: [...corsResponseHeaders, requestIdHeader, ...(input.internalResponseHeaders ?? [])],
        noWorkerAnswer: input.noWorkerAnswer
            ? { ...input.noWorkerAnswer, variable: headerVariable(input.noWorkerAnswer.header, "$upstream_http_") }
            : (false as const),
        noWorkerMessage: input.pdReplicas ? pdNoWorkerMessage(input.service, input.pdReplicas) : noWorkerMessage(input.service, input.servedModel),
        readTimeoutSeconds: input.readTimeoutSeconds ?? 3600,
        failover: input.failover ?? false,
        // With two routers: what nginx hands the other one (a router's no-worker answer too: its workers come after it listens).
        nextUpstream: [
            "error",
            "timeout",
            "non_idempotent",
            "http_503",
            ...(input.noWorkerAnswer && input.noWorkerAnswer.status !== 503 ? [`http_${input.noWorkerAnswer.status}`] : []),
        ].join(" "),
    };
}

/** The nginx text of a service: `http` context (zones, token map, upstream) and its server block. */
export function serverBlockText(input: ServerBlockInput): string {
    if (input.auth && input.tokens.length === 0) {
        throw new Error(`service ${input.service}: auth is on but no token was given (tokens)`);
    }
    const proxy = serviceProxyContext(input);
    const allow = input.allow ?? allowEverything;
    return render("nginx/service.conf.njk", {
        ...proxy,
        serverName: input.serverName,
        tokenPatterns: input.tokens.map(tokenPattern),
        locations: planLocations(allow, proxy.zones),
        denyOtherPaths: !allow.prefix.includes("/"),
        tls: tlsContext(input.tls),
        httpPort: input.httpPort ?? 80,
        httpsPort: input.httpsPort ?? 443,
    });
}

/** The service's server block file on the gateway (0640: it holds the tokens). */
export function serverBlockFile(input: ServerBlockInput): HostFile {
    return { path: servicePaths(input.service).serverBlock, mode: "0640", content: serverBlockText(input) };
}

/** Where the gateway keeps the TLS files nginx reads. */
export const tlsPaths = gatewayPaths.tls;
