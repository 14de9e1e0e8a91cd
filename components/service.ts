// Service: its own router on the gateway, its nginx server block, and one Replica per replica.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseServiceArgs, type RouterPolicy } from "./config";
import type { Gateway } from "./gateway";
import { tlsPaths } from "./gateway";
import { portSlot, servicePaths, servicePorts, type ServicePorts } from "./naming";
import { hostFiles, HostScript, type SshConnection } from "./remote";
import { Replica } from "./replica";
import { serverBlockText } from "./server-block";

export const serviceType = "sglang-gateway:index:Service";

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

export interface ServiceArgs {
    /** The gateway that serves this service at `<name>.<domain>`. */
    gateway: Gateway;
    /** Port the model server listens on (replicas sharing a host get port, port+1, ...). */
    port: number;
    /** Model name, for the replicas' environment (MODEL). */
    model: string;
    /** Shell commands that start the model server; they run in order, the last one serves. */
    commands?: string[];
    /** Container image to run the commands in (docker on the replica host). */
    image?: string;
    /** Environment of the model server. */
    env?: Record<string, pulumi.Input<string>>;
    /** Number of replicas; default 1. 0 keeps the endpoint and answers 503. */
    replicas?: number;
    /** Require a bearer token; default true. */
    auth?: boolean;
    /** Accepted bearer tokens (secret); required when auth is on. */
    tokens?: pulumi.Input<pulumi.Input<string>[]>;
    /** nginx rate limits; over the limit answers 429. */
    rateLimits?: RateLimitArgs[];
    /** Router policy for this service; default: the gateway's. */
    routerPolicy?: RouterPolicy;
    /** ssh backend: hosts the replicas run on, replica i on hosts[i % n]. */
    hosts?: SshConnection[];
    /** aws backend: instance type of each replica. */
    instanceType?: string;
    /** Pins the service's port slot (0-499) when two service names map to the same one. */
    portSlot?: number;
    /** How long a new replica may take to become healthy; default 600. */
    readinessTimeoutSeconds?: number;
}

export class Service extends pulumi.ComponentResource {
    /** The public endpoint, e.g. `http://chat.example.com`. */
    readonly url: pulumi.Output<string>;
    /** The service's name: a DNS label, its host name under the gateway's domain. */
    readonly serviceName: string;
    readonly ports: ServicePorts;
    readonly replicas: Replica[];
    readonly routerProcess: HostScript | undefined;
    readonly serverBlock: HostScript;

    constructor(name: string, args: ServiceArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(serviceType, name, {}, opts);
        const settings = parseServiceArgs(name, args);
        this.serviceName = name;
        const gateway = args.gateway;
        const slot = portSlot(name, settings.portSlot);
        this.ports = servicePorts(slot);
        const paths = servicePaths(name);
        const gatewayConnection = gateway.connection;

        let routerProcess: HostScript | undefined;
        let workersDir = "";
        if (gateway.router && gateway.routerConfig) {
            const policy = settings.router?.policy ?? gateway.routerConfig.policy;
            const problem = gateway.router.policyProblem(policy);
            if (problem) {
                throw new ConfigError([`Service ${name}: router policy ${policy}: ${problem}`]);
            }
            const launch = gateway.router.launch({
                service: name,
                version: gateway.routerConfig.version,
                port: this.ports.routerPort,
                metricsPort: this.ports.routerMetricsPort,
                policy,
                logDir: paths.routerLogDir,
                workerStartupTimeoutSeconds: settings.readinessTimeoutSeconds,
            });
            workersDir = launch.workersDir;
            routerProcess = hostFiles(
                `${name}-router`,
                {
                    connection: gatewayConnection,
                    description: `router of service ${name}`,
                    files: launch.files,
                    activate: [
                        ...launch.prepare,
                        "systemctl daemon-reload",
                        `systemctl enable ${launch.unitName}`,
                        `systemctl restart ${launch.unitName}`,
                        ...launch.waitReady,
                    ],
                    rollback: ["systemctl daemon-reload"],
                    deactivate: [`systemctl disable --now ${launch.unitName}`],
                    afterRemove: ["systemctl daemon-reload"],
                    removePaths: [launch.workersDir, paths.routerLogDir],
                },
                { parent: this, dependsOn: [gateway.setup] },
            );
        }
        this.routerProcess = routerProcess;

        const replicaCount = settings.replicas;
        this.replicas = [];
        for (let index = 0; index < replicaCount; index++) {
            this.replicas.push(
                new Replica(
                    `${name}-replica-${index}`,
                    {
                        gateway,
                        service: name,
                        index,
                        slot,
                        port: settings.port,
                        model: settings.model,
                        commands: settings.commands ?? [],
                        image: settings.image,
                        env: args.env ?? {},
                        placement: { hosts: args.hosts, instanceType: settings.instanceType },
                        routerPort: this.ports.routerPort,
                        workersDir,
                        readinessTimeoutSeconds: settings.readinessTimeoutSeconds,
                    },
                    { parent: this, dependsOn: routerProcess ? [routerProcess] : [gateway.setup] },
                ),
            );
        }

        // With a router the upstream is the router, whatever the replica count; without one it lists the replicas.
        const upstreamServers = gateway.router ? pulumi.output([`127.0.0.1:${this.ports.routerPort}`]) : pulumi.all(this.replicas.map((r) => r.target));
        const serverBlockContent = pulumi.all([gateway.domain, pulumi.output(args.tokens ?? []), upstreamServers]).apply(([domain, tokens, upstreams]) =>
            serverBlockText({
                service: name,
                serverName: `${name}.${domain}`,
                auth: settings.auth,
                tokens,
                upstreamServers: upstreams,
                allow: gateway.router?.inferencePaths,
                rateLimits: settings.rate_limits,
                tls: gateway.tls ? tlsPaths : undefined,
            }),
        );
        this.serverBlock = hostFiles(
            `${name}-server`,
            {
                connection: gatewayConnection,
                description: `nginx server block of service ${name}`,
                files: [{ path: paths.serverBlock, content: settings.auth ? pulumi.secret(serverBlockContent) : serverBlockContent, mode: "0640" }],
                activate: ["nginx -t", "systemctl reload nginx"],
                afterRemove: ["nginx -t && systemctl reload nginx"],
            },
            { parent: this, dependsOn: gateway.router ? (routerProcess ? [routerProcess] : []) : [gateway.setup, ...this.replicas] },
        );

        this.url = pulumi.interpolate`${gateway.tls ? "https" : "http"}://${name}.${gateway.domain}`;
        this.registerOutputs({ url: this.url, replicas: this.replicas.length, routerPort: this.ports.routerPort });
    }
}
