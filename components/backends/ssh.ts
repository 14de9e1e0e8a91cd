// The ssh backend: an existing gateway host, and existing replica hosts, reached over SSH.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { host, keySourceFields, loginUser, orOutput, port, sshHostKey } from "../config/fields";
import type { ResolvedSshConnection } from "../host-script";
import { replicaPortOffset } from "../naming";
import type { Backend, ReplicaHost, ReplicaHostRequest } from "./types";

export interface SshGatewayArgs {
    /** Address of the gateway host. */
    host: pulumi.Input<string>;
    /** SSH port; default 22. */
    port?: pulumi.Input<number>;
    /** Login user; default root (others need passwordless sudo). */
    user?: pulumi.Input<string>;
    /** The gateway's SSH host key (`ssh-ed25519 AAAA…`); default: pinned at first contact. */
    hostKey?: pulumi.Input<string>;
}

/** One replica host. */
export interface SshHostArgs {
    host: pulumi.Input<string>;
    /** SSH port; default 22. */
    port?: pulumi.Input<number>;
    /** Login user; default root. */
    user?: pulumi.Input<string>;
    /** PEM/OpenSSH private key (secret); default: the gateway's. */
    privateKey?: pulumi.Input<string>;
    /** A file holding the key, read at deploy time (`~` allowed); instead of privateKey. */
    privateKeyPath?: string;
    /** The host's SSH host key (`ssh-ed25519 AAAA…`); default: pinned at first contact. */
    hostKey?: pulumi.Input<string>;
}

export interface SshPlacementArgs {
    /** Hosts the replicas run on, replica i on hosts[i % n]; the gateway must reach each host's sshd. */
    hosts?: SshHostArgs[];
    /** The hosts have NVIDIA GPUs: containers (image) run with `--gpus all`; default true. */
    gpus?: boolean;
}

const sshHost = z
    .object({
        host: orOutput(host),
        port: orOutput(port.default(22)),
        user: orOutput(loginUser.default("root")),
        hostKey: orOutput(sshHostKey).optional(),
        ...keySourceFields,
    })
    .strict();

export const sshBackend: Backend<SshGatewayArgs, SshPlacementArgs> = {
    gatewayFields: {
        host: orOutput(host),
        port: orOutput(port.default(22)),
        user: orOutput(loginUser.default("root")),
        hostKey: orOutput(sshHostKey).optional(),
    },
    placementFields: {
        hosts: z.array(sshHost, { invalid_type_error: "expected a list of {host, port, user, privateKey}" }).min(1, "expected at least one host").optional(),
        gpus: z.boolean({ invalid_type_error: "expected true or false" }).optional(),
    },

    placementProblems(service) {
        return service.replicas > 0 && !service.hosts
            ? [{ path: ["hosts"], message: "expected a list of SSH hosts for the replicas (the gateway backend is ssh)" }]
            : [];
    },

    placedOn(placement, index) {
        const hosts = placement.hosts ?? [];
        const chosen = hosts[index % Math.max(hosts.length, 1)];
        // Hosts given as Outputs are unknown until deploy: not compared.
        return chosen && typeof chosen.host === "string" ? { key: chosen.host, offset: replicaPortOffset(index, hosts.length) } : undefined;
    },

    createGatewayHost(_name, settings) {
        const connection = pulumi.secret(
            pulumi.output({
                host: settings.host,
                port: settings.port ?? 22,
                user: settings.user ?? "root",
                privateKey: settings.privateKey,
                ...(settings.hostKey === undefined ? {} : { hostKey: settings.hostKey }),
            }),
        ) as pulumi.Output<ResolvedSshConnection>;
        return {
            connection,
            address: pulumi.output(settings.host),
            replicaHost(request: ReplicaHostRequest, placement: SshPlacementArgs): ReplicaHost {
                const hosts = placement.hosts ?? [];
                if (hosts.length === 0) {
                    throw new Error(`service ${request.service}: the ssh backend needs hosts for its replicas (hosts)`);
                }
                const chosen = hosts[request.index % hosts.length];
                const privateKey = chosen.privateKey ?? settings.privateKey;
                const user = chosen.user ?? "root";
                const port = chosen.port ?? 22;
                const hostKey = chosen.hostKey === undefined ? {} : { hostKey: chosen.hostKey };
                return {
                    connection: { host: chosen.host, port, user, privateKey, ...hostKey },
                    reach: { mode: "tunnel", host: chosen.host, port, user, privateKey, ...hostKey },
                    address: chosen.host,
                    portOffset: replicaPortOffset(request.index, hosts.length),
                    // Default true: what every ssh stack ran before the setting existed.
                    gpus: placement.gpus ?? true,
                    reportsStartup: false,
                };
            },
        };
    },
};
