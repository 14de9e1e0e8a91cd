// Decides what a service's nginx server block contains: locations, rate-limit zones, upstream.
import type { RateLimitConfig } from "./config";
import { serviceUpstreamName } from "./naming";
import { render } from "./templates";

export interface PathAllowList {
    /** Paths matched exactly (`location = /generate`). */
    exact: string[];
    /** Path prefixes (`location /v1/`). */
    prefix: string[];
}

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

export function rateLimitZones(service: string, limits: RateLimitConfig[]): RateLimitZone[] {
    return limits.map((limit, i) => ({
        zone: `sgw_${service}_${i}`,
        key: limit.key === "ip" ? "$binary_remote_addr" : `$http_${limit.key.header.toLowerCase().replace(/-/g, "_")}`,
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
    rateLimits: RateLimitConfig[];
    tls?: { certificatePath: string; privateKeyPath: string };
    /** Longest a request may take, streaming included. */
    readTimeoutSeconds?: number;
    /** Public ports; default 80 and 443. */
    httpPort?: number;
    httpsPort?: number;
}

/** The nginx text of a service: `http` context (zones, token map, upstream) and its server block. */
export function serverBlockText(input: ServerBlockInput): string {
    if (input.auth && input.tokens.length === 0) {
        throw new Error(`service ${input.service}: auth is on but no token was given (tokens)`);
    }
    const zones = rateLimitZones(input.service, input.rateLimits);
    const allow = input.allow ?? allowEverything;
    const variableName = input.service.replace(/-/g, "_");
    return render("nginx/service.conf.njk", {
        service: input.service,
        serverName: input.serverName,
        auth: input.auth,
        tokenPatterns: input.tokens.map((t) => `~^Bearer ${t.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`),
        authVariable: `$sgw_${variableName}_authorized`,
        upstreamName: serviceUpstreamName(input.service),
        upstreamServers: input.upstreamServers,
        zones,
        locations: planLocations(allow, zones),
        denyOtherPaths: !allow.prefix.includes("/"),
        tls: input.tls ?? false,
        readTimeoutSeconds: input.readTimeoutSeconds ?? 3600,
        httpPort: input.httpPort ?? 80,
        httpsPort: input.httpsPort ?? 443,
    });
}
