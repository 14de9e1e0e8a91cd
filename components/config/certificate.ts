// Where the gateway's HTTPS certificates come from: `certificate` (letsencrypt, none, or an ACME server) or
// the user's own (`tls`), the default for each domain, and the rule that tells a public domain.
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { Problem } from "./errors";
import { httpUrl, nonEmpty, orOutput } from "./fields";

/** Let's Encrypt's production directory: `certificate: letsencrypt`, and an `acme` object without `server`. */
export const letsEncryptDirectory = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt's API hosts (production and staging): both issue only for public names. */
const letsEncryptHosts = ["acme-v02.api.letsencrypt.org", "acme-staging-v02.api.letsencrypt.org"];

/**
 * Names no public CA issues for, each with why: special-use names (RFC 6761: test, example, invalid,
 * localhost; RFC 6762: local; RFC 7686: onion; RFC 9476: alt; RFC 8375: home.arpa, and the rest of .arpa,
 * the infrastructure domain), ICANN's private-use .internal (2024), and the documentation domains of
 * RFC 2606. A name under none of them counts as public (a TLD that is not delegated is the ACME server's to refuse).
 */
const reservedSuffixes: Record<string, string> = {
    test: "RFC 6761",
    example: "RFC 6761",
    invalid: "RFC 6761",
    localhost: "RFC 6761",
    local: "RFC 6762, multicast DNS",
    onion: "RFC 7686",
    alt: "RFC 9476",
    internal: "ICANN, private use",
    arpa: "RFC 3172, infrastructure",
    "example.com": "RFC 2606, documentation",
    "example.net": "RFC 2606, documentation",
    "example.org": "RFC 2606, documentation",
};

/** The reserved name `domain` is under (`test`, `example.com`), with its source; undefined for a public domain. */
export function reservedSuffixOf(domain: string): { suffix: string; source: string } | undefined {
    const name = domain.toLowerCase().replace(/\.$/, "");
    const suffix = Object.keys(reservedSuffixes).find((s) => name === s || name.endsWith(`.${s}`));
    return suffix === undefined ? undefined : { suffix, source: reservedSuffixes[suffix] };
}

/** A domain a public CA can issue for: a DNS name (never an IP address) under no reserved name. */
export function isPublicDomain(domain: string): boolean {
    return !/^[\d.]+$/.test(domain) && !domain.includes(":") && reservedSuffixOf(domain) === undefined;
}

const httpsUrl = httpUrl.refine((url) => url.startsWith("https://"), { message: "expected the ACME server's directory URL (https://…)" });
const email = z
    .string({ invalid_type_error: "expected an email address" })
    .regex(/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/, { message: "expected an email address such as ops@example.com" });
const eabKeyId = nonEmpty.regex(/^[\x21-\x7e]+$/, { message: "expected the key id the CA gave, without spaces" });
const eabHmacKey = nonEmpty.regex(/^[A-Za-z0-9_-]+={0,2}$/, { message: "expected the HMAC key the CA gave, base64url-encoded" });
const pemCertificates = nonEmpty.regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, {
    message: "expected PEM certificates (-----BEGIN CERTIFICATE----- …)",
});

const acmeObject = z
    .object({
        server: httpsUrl.default(letsEncryptDirectory),
        email: email.optional(),
        eab: z
            .object({ kid: eabKeyId, hmacKey: orOutput(eabHmacKey) })
            .strict()
            .optional(),
        caBundle: orOutput(pemCertificates).optional(),
        indexUrl: httpUrl.optional(),
    })
    .strict();

const certificateChoices = "'letsencrypt', 'none' or {acme: {server, email, eab, caBundle, indexUrl}}";

/** `gateway.certificate`: `letsencrypt`, `none`, or `{acme: {...}}`. */
export const certificateSchema = z.union([z.literal("letsencrypt"), z.literal("none"), z.object({ acme: acmeObject }).strict()], {
    errorMap: (issue, ctx) => (issue.code === "invalid_union" ? { message: `expected ${certificateChoices}` } : { message: ctx.defaultError }),
});

export interface AcmeArgs {
    /** The ACME server's directory URL; default Let's Encrypt's production directory. */
    server?: string;
    /** Contact address of the gateway's ACME account (expiry and policy notices); default none. */
    email?: string;
    /** External account binding, for CAs that require one (ZeroSSL, Google, many private CAs): its key id and HMAC key (secret). */
    eab?: { kid: string; hmacKey: pulumi.Input<string> };
    /** PEM of the CA(s) the ACME server's own HTTPS certificate chains to (a private ACME server); default the client's public roots. */
    caBundle?: pulumi.Input<string>;
    /** Package index the gateway installs the ACME client (certbot) from; default PyPI. */
    indexUrl?: string;
}

/** Where the HTTPS certificates come from. */
export type CertificateArgs = "letsencrypt" | "none" | { acme: AcmeArgs };

/** An ACME server once parsed: its directory always named. */
export type AcmeSettings = AcmeArgs & { server: string };

/** What the gateway does for HTTPS, defaults resolved: nothing, the user's certificate, or certificates from an ACME server. */
export type CertificateSource = { source: "none" } | { source: "tls" } | { source: "acme"; acme: AcmeSettings };

/**
 * The certificate source of a gateway: `tls` is the user's own; `certificate` chooses; neither: Let's Encrypt
 * for a public domain, none for a reserved one, or for a domain known only at deploy time (an Output), which
 * cannot be judged (`undecidedDefault` tells that case, for a warning).
 */
export function certificateSource(gateway: { domain: unknown; tls?: unknown; certificate?: CertificateArgs }): CertificateSource {
    const chosen = gateway.certificate;
    if (gateway.tls !== undefined) {
        return { source: "tls" };
    }
    if (chosen === undefined) {
        return typeof gateway.domain === "string" && isPublicDomain(gateway.domain)
            ? { source: "acme", acme: { server: letsEncryptDirectory } }
            : { source: "none" };
    }
    if (chosen === "none") {
        return { source: "none" };
    }
    if (chosen === "letsencrypt") {
        return { source: "acme", acme: { server: letsEncryptDirectory } };
    }
    return { source: "acme", acme: { ...chosen.acme, server: chosen.acme.server ?? letsEncryptDirectory } };
}

/** Neither `tls` nor `certificate`, and a domain known only at deploy time: HTTP only, by default rather than by choice. */
export function undecidedDefault(gateway: { domain: unknown; tls?: unknown; certificate?: CertificateArgs }): boolean {
    return gateway.tls === undefined && gateway.certificate === undefined && typeof gateway.domain !== "string";
}

/** `certificate` beside `tls`, and Let's Encrypt for a name it never issues for. Paths relative to the gateway. */
export function certificateProblems(gateway: { domain: unknown; tls?: unknown; certificate?: CertificateArgs }): Problem[] {
    if (gateway.certificate !== undefined && gateway.tls !== undefined) {
        return [
            {
                path: ["certificate"],
                message: "give tls (your own certificate) or certificate (letsencrypt, none, or an ACME server), not both",
            },
        ];
    }
    const chosen = certificateSource(gateway);
    const reserved = typeof gateway.domain === "string" ? reservedSuffixOf(gateway.domain) : undefined;
    if (chosen.source === "acme" && reserved && letsEncryptHosts.includes(new URL(chosen.acme.server).hostname)) {
        return [
            {
                path: ["certificate"],
                message:
                    `Let's Encrypt issues only for public names, and ${String(gateway.domain)} is under .${reserved.suffix} (${reserved.source}): ` +
                    "use certificate: none, your own tls, or {acme: {server}} of an ACME server that issues for it",
            },
        ];
    }
    return [];
}
