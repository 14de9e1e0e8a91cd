// The host files of one replica, as pure functions of plain values: its process (run script,
// environment, unit) on its host, and on the gateway its tunnel unit and its bridge.
import type { HostFile } from "../host-script/phases";
import { learnedHostKeyMarker } from "../host-script/provider";
import { hostPaths, replicaPaths, servicePaths, systemUsers, unitFile } from "../naming";
import { render } from "../templates";

export interface ReplicaProcessInput {
    service: string;
    index: number;
    /** The port the model server listens on, on its host. */
    port: number;
    model: string;
    commands: string[];
    /** Run the commands in this container image (docker); absent runs them on the host. */
    image?: string;
    /** Give the container the host's NVIDIA GPUs (`--gpus all`); default true. */
    gpus?: boolean;
    /** The user's environment, values known. */
    env: Record<string, string>;
    /** How the gateway reaches the model server: a tunnel to its loopback, or its private address. */
    reachMode: "tunnel" | "direct";
    /** A PD replica's role: `$ROLE`, and a prefill's `$BOOTSTRAP_PORT`. */
    role?: "prefill" | "decode";
    /** A prefill's bootstrap port on its host. */
    bootstrapPort?: number;
}

/** Variables every replica gets beside the user's. */
export const replicaVariables = ["SERVICE_NAME", "REPLICA_INDEX", "MODEL", "PORT"];

/** The variables of a PD replica beside those: its role, and a prefill's bootstrap port. */
function roleVariables(input: Pick<ReplicaProcessInput, "role" | "bootstrapPort">): Record<string, string> {
    if (!input.role) {
        return {};
    }
    return { ROLE: input.role, ...(input.bootstrapPort === undefined ? {} : { BOOTSTRAP_PORT: String(input.bootstrapPort) }) };
}

/** The run script, the systemd environment file and the unit of the model server. */
export function replicaProcessFiles(input: ReplicaProcessInput): { runScript: HostFile; envFile: HostFile; unit: HostFile } {
    const { service, index, role } = input;
    const paths = replicaPaths(service, index, role);
    const extra = roleVariables(input);
    return {
        runScript: {
            path: paths.runScript,
            mode: "0755",
            content: render("scripts/replica-run.sh.njk", {
                service,
                index,
                port: input.port,
                image: input.image ?? "",
                gpus: input.gpus ?? true,
                containerName: paths.containerName,
                envNames: [...Object.keys(input.env), ...replicaVariables, ...Object.keys(extra)],
                // Tunnels end on the replica's loopback; direct mode dials its private address.
                publishAddress: input.reachMode === "tunnel" ? "127.0.0.1" : "0.0.0.0",
                // PD servers reach each other on ports they pick (bootstrap, KV transfer): no port list to publish.
                hostNetwork: role !== undefined,
                role: role ?? "",
                commands: input.commands,
                commandsText: input.commands.join("\n"),
            }),
        },
        envFile: {
            path: paths.envFile,
            mode: "0600",
            content: render("systemd/replica.env.njk", {
                service,
                index,
                env: { ...input.env, SERVICE_NAME: service, REPLICA_INDEX: String(index), MODEL: input.model, PORT: String(input.port), ...extra },
            }),
        },
        unit: {
            path: unitFile(paths.processUnit),
            mode: "0644",
            content: render("systemd/replica.service.njk", {
                service,
                index,
                model: input.model,
                role: role ?? "",
                envFile: paths.envFile,
                workDir: paths.processDir,
                runScript: paths.runScript,
                // A container's `docker run` stays root (the docker socket is root's in all but name).
                user: replicaUser(input) ?? "",
                // Ports below 1024 need a capability to bind; the unit grants exactly that one, only then.
                lowPorts: [input.port, input.bootstrapPort].filter((p): p is number => p !== undefined && p < 1024),
                cacheDirectory: paths.cacheDirectory,
                cacheDir: paths.cacheDir,
            }),
        },
    };
}

/** The user a model server runs as: the unprivileged replica user, or undefined (root) for `docker run`. */
export function replicaUser(input: Pick<ReplicaProcessInput, "image">): string | undefined {
    return input.image ? undefined : systemUsers.replica;
}

/** Shell run after a replica's files are gone: its service's directory and cache go with the service's last replica on the host. */
export function replicaCleanup(service: string, index: number, role?: "prefill" | "decode"): string {
    const paths = replicaPaths(service, index, role);
    return render("scripts/replica-cleanup.sh.njk", {
        serviceDir: paths.serviceDir,
        replicasRoot: hostPaths.replicasRoot,
        cacheDir: paths.cacheDir,
        cachesRoot: hostPaths.replicaCachesRoot,
    });
}

export interface TunnelInput {
    service: string;
    index: number;
    /** The replica host's sshd. */
    host: string;
    port: number;
    user: string;
    /** The model server's port on the replica host's loopback. */
    remotePort: number;
    /**
     * The replica host's SSH key (`ssh-ed25519 AAAA…`) given in config. Absent: the key the tunnel's step
     * learns on the gateway at create (the file holds a marker until the step puts the key in its place).
     * Either way the tunnel accepts no other.
     */
    hostKey?: string;
}

const hostKeyLine =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}$/;

/** The gateway-side SSH tunnel that ends in the replica's unix socket. */
export function tunnelUnitFile(input: TunnelInput): HostFile {
    const paths = replicaPaths(input.service, input.index);
    return {
        path: unitFile(paths.tunnelUnit),
        mode: "0644",
        content: render("systemd/tunnel.service.njk", {
            service: input.service,
            index: input.index,
            host: input.host,
            port: input.port,
            user: input.user,
            remotePort: input.remotePort,
            knownHostsLine: knownHostsLine(input),
            keyFile: paths.tunnelKey,
            knownHostsFile: paths.tunnelKnownHosts,
            socket: paths.socket,
            socketDir: servicePaths(input.service).socketDir,
        }),
    };
}

/** The known_hosts line of the replica host (`[host]:port type base64`), the key given or the learned key's marker. */
function knownHostsLine(input: TunnelInput): string {
    const hostPart = input.port === 22 ? input.host : `[${input.host}]:${input.port}`;
    if (!input.hostKey) {
        return `${hostPart} ${learnedHostKeyMarker}`;
    }
    const [type, blob] = input.hostKey.trim().split(/\s+/);
    const key = `${type} ${blob ?? ""}`;
    if (!hostKeyLine.test(key)) {
        throw new Error(`tunnel to ${input.service} replica ${input.index}: ${JSON.stringify(input.hostKey.slice(0, 80))} is not an SSH host key line`);
    }
    return `${hostPart} ${key}`;
}

/** The tunnel's key on the gateway (0600, one line ending in a newline). */
export function tunnelKeyFile(service: string, index: number, privateKey: string): HostFile {
    return { path: replicaPaths(service, index).tunnelKey, mode: "0600", content: privateKey.trim() + "\n" };
}

export interface BridgeInput {
    service: string;
    index: number;
    bridgePort: number;
    /** What nginx connects to: `unix:<socket>` or `<address>:<port>`. */
    target: string;
}

/** The replica's nginx listener on the gateway's loopback: the URL the router sends it requests at. */
export function bridgeFile(input: BridgeInput): HostFile {
    const paths = replicaPaths(input.service, input.index);
    return {
        path: paths.bridgeFile,
        mode: "0644",
        content: render("nginx/bridge.conf.njk", {
            service: input.service,
            index: input.index,
            bridgePort: input.bridgePort,
            target: input.target,
            upstreamName: paths.bridgeUpstream,
            readTimeoutSeconds: 3600,
        }),
    };
}
