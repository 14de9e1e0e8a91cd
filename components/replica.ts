// Replica: one model server, the gateway's way to it (tunnel + bridge), and its router registration.
// Created in that order and deleted in reverse, so the router stops sending to it before it goes.
import * as pulumi from "@pulumi/pulumi";
import type { ReplicaPlacement } from "./backends";
import type { Gateway } from "./gateway";
import { bridgePort, bridgeUpstreamName, replicaPaths, servicePaths } from "./naming";
import { hostFiles, HostScript } from "./remote";
import type { RouterWorkerResource } from "./routers";
import { render } from "./templates";

export const replicaType = "sglang-gateway:index:Replica";

export interface ReplicaArgs {
    gateway: Gateway;
    service: string;
    /** Replica identity: ports and names derive from it; scale-down removes the highest. */
    index: number;
    /** The service's port slot. */
    slot: number;
    /** The service's model server port (before per-host offsets). */
    port: number;
    model: string;
    commands: string[];
    image?: string;
    env: Record<string, pulumi.Input<string>>;
    placement: ReplicaPlacement;
    /** The service router's port on the gateway; unused without a router. */
    routerPort: number;
    /** Where the router records workers for restarts; unused without a router. */
    workersDir: string;
    readinessTimeoutSeconds: number;
}

export class Replica extends pulumi.ComponentResource {
    readonly index: number;
    /** Port of the model server on its host. */
    readonly port: number;
    /** Port of this replica's bridge on the gateway's loopback. */
    readonly bridgePort: number;
    readonly reachMode: "tunnel" | "direct";
    /** What the gateway's nginx connects to: `unix:<socket>` (tunnel) or `<address>:<port>` (direct). */
    readonly target: pulumi.Output<string>;
    readonly process: HostScript;
    readonly tunnel: HostScript | undefined;
    /** The gateway's loopback listener the router sends to; only with a router. */
    readonly bridge: HostScript | undefined;
    readonly worker: RouterWorkerResource | undefined;

    constructor(name: string, args: ReplicaArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(replicaType, name, {}, opts);
        const { service, index, gateway } = args;
        const paths = replicaPaths(service, index);
        const host = gateway.host.replicaHost({ service, index, parent: this }, args.placement);
        this.index = index;
        this.port = args.port + host.portOffset;
        this.bridgePort = bridgePort(args.slot, index);
        this.reachMode = host.reach.mode;

        const envFile = `${paths.processDir}/env`;
        const containerName = `sglang-gateway-${service}-${index}`;
        const runScript = `${paths.processDir}/run.sh`;
        const env = pulumi.all(args.env).apply((values) =>
            render("systemd/replica.env.njk", {
                service,
                index,
                env: { ...values, SERVICE_NAME: service, REPLICA_INDEX: String(index), MODEL: args.model, PORT: String(this.port) },
            }),
        );
        this.process = hostFiles(
            `${name}-process`,
            {
                connection: host.connection,
                description: `${service} replica ${index} process`,
                files: [
                    {
                        path: runScript,
                        mode: "0755",
                        content: render("scripts/replica-run.sh.njk", {
                            service,
                            index,
                            port: this.port,
                            image: args.image ?? "",
                            containerName,
                            envNames: [...Object.keys(args.env), "SERVICE_NAME", "REPLICA_INDEX", "MODEL", "PORT"],
                            // Tunnels end on the replica's loopback; direct mode dials its private address.
                            publishAddress: host.reach.mode === "tunnel" ? "127.0.0.1" : "0.0.0.0",
                            commands: args.commands,
                            commandsText: args.commands.join("\n"),
                        }),
                    },
                    { path: envFile, mode: "0600", content: Object.keys(args.env).length > 0 ? pulumi.secret(env) : env },
                    {
                        path: `/etc/systemd/system/${paths.processUnit}`,
                        mode: "0644",
                        content: render("systemd/replica.service.njk", { service, index, model: args.model, envFile, workDir: paths.processDir, runScript }),
                    },
                ],
                activate: ["systemctl daemon-reload", `systemctl enable ${paths.processUnit}`, `systemctl restart ${paths.processUnit}`],
                rollback: ["systemctl daemon-reload"],
                // docker run's client may die before its container does; the container goes explicitly.
                deactivate: [`systemctl disable --now ${paths.processUnit}`, ...(args.image ? [`docker rm -f ${containerName}`] : [])],
                // The service's and the library's directories go with their last replica on this host.
                afterRemove: ["systemctl daemon-reload", `rmdir --ignore-fail-on-non-empty ${paths.processDir.replace(/\/[^/]+$/, "")} /opt/sglang-gateway`],
                removePaths: [paths.processDir],
            },
            { parent: this },
        );

        const reach = host.reach;
        if (reach.mode === "tunnel") {
            const knownHostsFile = `${paths.tunnelKey}.known_hosts`;
            this.tunnel = hostFiles(
                `${name}-tunnel`,
                {
                    connection: gateway.connection,
                    description: `tunnel to ${service} replica ${index}`,
                    files: [
                        { path: paths.tunnelKey, mode: "0600", content: pulumi.secret(pulumi.output(reach.privateKey).apply((k) => k.trim() + "\n")) },
                        {
                            path: `/etc/systemd/system/${paths.tunnelUnit}`,
                            mode: "0644",
                            content: pulumi.all([reach.host, reach.port, reach.user]).apply(([host, port, user]) =>
                                render("systemd/tunnel.service.njk", {
                                    service,
                                    index,
                                    host,
                                    port,
                                    user,
                                    remotePort: this.port,
                                    keyFile: paths.tunnelKey,
                                    knownHostsFile,
                                    socket: paths.socket,
                                    socketDir: servicePaths(service).socketDir,
                                }),
                            ),
                        },
                    ],
                    activate: [
                        "systemctl daemon-reload",
                        `systemctl enable ${paths.tunnelUnit}`,
                        `systemctl restart ${paths.tunnelUnit}`,
                        render("scripts/wait-socket.sh.njk", { socket: paths.socket, seconds: 30, what: `tunnel to ${service} replica ${index}`, unit: paths.tunnelUnit }),
                    ],
                    rollback: ["systemctl daemon-reload"],
                    // Without a router the server block's reload retired nginx workers earlier; let them finish first.
                    // (With a router, the bridge's own drain has already waited for its requests.)
                    waitFirst: gateway.router ? [] : [render("scripts/nginx-drain-retired.sh.njk", { seconds: 120 })],
                    deactivate: [`systemctl disable --now ${paths.tunnelUnit}`],
                    afterRemove: ["systemctl daemon-reload"],
                    removePaths: [paths.socket, knownHostsFile],
                },
                { parent: this, dependsOn: [this.process] },
            );
            this.target = pulumi.output(`unix:${paths.socket}`);
        } else {
            this.tunnel = undefined;
            this.target = pulumi.interpolate`${reach.address}:${this.port}`;
        }

        const drainPids = `/run/sglang-gateway/drain-${service}-replica-${index}.pids`;
        // Without a router, the service's own upstream lists the replicas: no bridge needed.
        this.bridge = gateway.router && hostFiles(
            `${name}-bridge`,
            {
                connection: gateway.connection,
                description: `bridge for ${service} replica ${index}`,
                files: [
                    {
                        path: paths.bridgeFile,
                        mode: "0644",
                        content: this.target.apply((target) =>
                            render("nginx/bridge.conf.njk", {
                                service,
                                index,
                                bridgePort: this.bridgePort,
                                target,
                                upstreamName: bridgeUpstreamName(service, index),
                                readTimeoutSeconds: 3600,
                            }),
                        ),
                    },
                ],
                activate: ["nginx -t", "systemctl reload nginx"],
                // In-flight requests through this bridge finish before the tunnel and the process go.
                deactivate: [render("scripts/nginx-workers.sh.njk", { pidsFile: drainPids })],
                // No reload, no retired workers: then there is nothing to wait for.
                afterRemove: [`nginx -t && systemctl reload nginx || rm -f ${drainPids}`],
                drain: [render("scripts/nginx-drain.sh.njk", { seconds: 120, pidsFile: drainPids })],
            },
            { parent: this, dependsOn: [this.tunnel ?? this.process] },
        );

        this.worker = this.bridge && gateway.router?.worker(
            `${name}-worker`,
            {
                gateway: gateway.connection,
                routerPort: args.routerPort,
                workerUrl: `http://127.0.0.1:${this.bridgePort}`,
                workersDir: args.workersDir,
                readinessTimeoutSeconds: args.readinessTimeoutSeconds,
            },
            { parent: this, dependsOn: [this.bridge] },
        );

        this.registerOutputs({ port: this.port, bridgePort: this.bridgePort, target: this.target });
    }
}
