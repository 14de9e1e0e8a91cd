// Field schemas shared by the stack config, the component args, the backends and the routers.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";

export const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const hostPattern = /^[A-Za-z0-9.:_-]{1,253}$/;

export const dnsLabel = z.string({ invalid_type_error: "expected a string" }).regex(dnsLabelPattern, {
    message: "expected a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'",
});
export const nonEmpty = z.string({ invalid_type_error: "expected a string" }).min(1, "expected a non-empty string");
export const port = z
    .number({ invalid_type_error: "expected a port number" })
    .int("expected a whole port number")
    .min(1, "expected a port from 1 to 65535")
    .max(65535, "expected a port from 1 to 65535");
export const host = z.string({ invalid_type_error: "expected a host name or IP address" }).regex(hostPattern, {
    message: "expected a host name or IP address",
});
export const domain = z.string({ invalid_type_error: "expected a domain name" }).regex(domainPattern, {
    message: "expected a domain name such as example.com (lowercase labels separated by dots)",
});
export const exactVersion = z.string({ invalid_type_error: "expected a version string" }).regex(/^\d+\.\d+\.\d+$/, {
    message: "expected an exact version such as 1.2.3 (the install is pinned)",
});
export const httpUrl = z
    .string({ invalid_type_error: "expected a URL" })
    .url("expected an http(s) URL")
    .regex(/^https?:\/\//, { message: "expected an http(s) URL" });
/* eslint-disable no-control-regex -- these patterns exist to find control characters */
/** Free text that lands in files on hosts (a unit's comment, an env file): one line, no control characters. */
export const oneLine = nonEmpty.regex(/^[^\x00-\x1f\x7f]+$/, { message: "expected one line of text without control characters" });
/** A container image reference: no whitespace or control characters. */
export const imageName = nonEmpty.regex(/^[^\s\x00-\x1f\x7f]+$/, { message: "expected a container image reference without spaces or control characters" });
/** A login name on a host: it lands in SSH command lines and systemd units. */
export const loginUser = z
    .string({ invalid_type_error: "expected a login name" })
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: "expected a login name: up to 32 lowercase letters, digits, '_' or '-', not starting with a digit or '-'" });
/** Text passed through verbatim (shell commands, env values): anything but a NUL byte, which no file or argument can hold. */
export const noNul = z.string({ invalid_type_error: "expected a string" }).regex(/^[^\x00]*$/, { message: "expected text without NUL bytes" });
/* eslint-enable no-control-regex */

export const token = z.string({ invalid_type_error: "expected a token string" }).regex(/^[A-Za-z0-9._~+/=-]{8,512}$/, {
    message: "expected a bearer token of 8-512 characters from A-Z a-z 0-9 . _ ~ + / = -",
});

type Out<T extends z.ZodTypeAny> = z.output<T> | pulumi.Output<NonNullable<z.output<T>>>;
type In<T extends z.ZodTypeAny> = z.input<T> | pulumi.Output<NonNullable<z.output<T>>>;

/**
 * A field a component user may give as an Output (a VPC id, a secret). Plain values are checked by
 * `schema` (with its messages and defaults); Outputs are known only at deploy time and pass as they are.
 */
export function orOutput<T extends z.ZodTypeAny>(schema: T): z.ZodType<Out<T>, z.ZodTypeDef, In<T>> {
    return z.any().transform((value, ctx) => {
        if (pulumi.Output.isInstance(value)) {
            return value as pulumi.Output<NonNullable<z.output<T>>>;
        }
        const result = schema.safeParse(value);
        if (!result.success) {
            for (const issue of result.error.issues) {
                ctx.addIssue(issue);
            }
            return z.NEVER;
        }
        return result.data as z.output<T>;
    }) as unknown as z.ZodType<Out<T>, z.ZodTypeDef, In<T>>;
}

/** An SSH host key as `ssh-keyscan` prints it after the host: `ssh-ed25519 AAAA…` (a comment may follow). */
export const sshHostKey = z
    .string({ invalid_type_error: "expected an SSH host key" })
    .regex(
        /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$/,
        {
            message: "expected an SSH host key line such as `ssh-ed25519 AAAAC3Nza…` (the part of `ssh-keyscan HOST` after the host)",
        },
    );

/** An SSH key given inline (a secret) or as a file read at deploy time (`~` allowed); cross-checked after parsing. */
export const keySourceFields = {
    privateKey: orOutput(nonEmpty).optional(),
    privateKeyPath: nonEmpty.optional(),
};
