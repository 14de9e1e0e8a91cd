// Service: its own router on the gateway, its nginx server block, and one Replica per replica.
import * as pulumi from "@pulumi/pulumi";
import {
    ConfigError,
    parseOrThrow,
    parseServiceSettings,
    replicaRoles,
    roleSettings,
    tokensSchema,
    type ServiceSettings,
    type ServiceSettingsArgs,
} from "./config";
import { certificateStep, serverTls } from "./certificates";
import type { Gateway } from "./gateway";
import { endpointServiceText } from "./host-files/endpoint";
import { serverBlockFile, type ServerBlockInput } from "./host-files/server-block";
import { hostStep, HostScript } from "./host-script";
import { nginxReload, removeEmptyDirs, systemdUnitSteps } from "./host-script/steps";
import { resolveEnv } from "./env";
import { readKeyFilesOrThrow } from "./keys";
import { endpointServiceLocations, servicePaths, servicePorts, systemUsers, workerUrl, type ServicePorts } from "./naming";
import type { RouterObservability, ServiceObservability } from "./observability";
import { Replica } from "./replica";

export const serviceType = "sglang-gateway:index:Service";
export type { RateLimitArgs } from "./config";

export type ServiceArgs = ServiceSettingsArgs & {
    /** The gateway that serves this service at `<name>.<domain>`. */
    gateway: Gateway;
    /** Accepted bearer tokens (secret); required when auth is on. */
    tokens?: pulumi.Input<pulumi.Input<string>[]>;
};

/** What the model servers run (not where): one config change of the service has one id, whatever replica restarts for it. */
function rolloutIdOf(
    settings: ServiceSettings,
    env: Record<string, pulumi.Input<string>>,
    roleEnvs: Record<string, Record<string, pulumi.Input<string>>>,
): pulumi.Output<string> {
    const { model, commands, image, port, pd } = settings;
    const roles = pd
        ? Object.fromEntries(
              replicaRoles.map((r) => [
                  r,
                  { commands: pd[r].commands, image: pd[r].image, port: pd[r].port, bootstrapPort: (pd[r] as { bootstrapPort?: number }).bootstrapPort },
              ]),
          )
        : {};
    return pulumi
        .all([pulumi.all(env), pulumi.all(Object.fromEntries(Object.entries(roleEnvs).map(([r, e]) => [r, pulumi.all(e)])))])
        .apply(([resolved, resolvedRoles]) => {
            const crypto: typeof import("crypto") = require("crypto");
            const text = JSON.stringify({ model, commands, image, port, roles, env: resolved, roleEnvs: resolvedRoles });
            return crypto.createHash("sha256").update(text).digest("hex").slice(0, 16);
        });
}

export class Service extends pulumi.ComponentResource {
    /** The public endpoint, e.g. `http://chat.example.com`. */
    readonly url: pulumi.Output<string>;
    /** The service's name: a DNS label, its host name under the gateway's domain. */
    readonly serviceName: string;
    readonly settings: ServiceSettings;
    readonly ports: ServicePorts;
    /** Every replica: without roles, replica i at index i; with PD roles, the prefills then the decodes. */
    readonly replicas: Replica[];
    /** A PD service's replicas by role. */
    readonly roles: { prefill: Replica[]; decode: Replica[] } | undefined;
    /** The service's router process (the first, when it runs two). */
    readonly routerProcess: HostScript | undefined;
    /** Every router process of the service: one, or two with `router.processes: 2`. */
    readonly routerProcesses: HostScript[];
    /** Beside the routers: adds back workers a router dropped; undefined for a router without one. */
    readonly routerReconcile: HostScript | undefined;
    readonly serverBlock: HostScript;
    /** The service's certificate from the gateway's ACME server; undefined when the gateway has none. */
    readonly certificate: HostScript | undefined;
    /** Where the service's access log, router logs and router metrics are on the gateway (for operators). */
    readonly observability: ServiceObservability;

    constructor(name: string, args: ServiceArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(serviceType, name, {}, opts);
        const { gateway, tokens: tokenArgs, ...settingsArgs } = args;
        const parsed = parseServiceSettings(name, settingsArgs, gateway.settings);
        // Replica hosts may name their key by file, as the stack config may: read before any child exists.
        const settings = readKeyFilesOrThrow(parsed, `Service ${name}`);
        const tokens = parseOrThrow(tokensSchema, tokenArgs ?? [], { label: `Service ${name}`, at: ["tokens"] });
        if (settings.auth && Array.isArray(tokens) && tokens.length === 0) {
            throw new ConfigError([`Service ${name}: tokens: expected at least one bearer token while auth is on; set auth: false for an open endpoint`]);
        }
        const env = resolveEnv(settings.env, process.env, `Service ${name}: env`);
        this.settings = settings;
        this.serviceName = name;
        const slot = gateway.claimPortSlot({ name, portSlot: settings.portSlot });
        gateway.claimEndpointModel({ name, model: settings.model });
        this.ports = servicePorts(slot);
        const router = gateway.router;
        const routerSettings = gateway.routerSettings;
        const serverName = pulumi.interpolate`${name}.${gateway.domain}`;

        // Before the server block that points nginx at it, so nginx never loads a configuration naming a missing file.
        this.certificate = certificateStep(gateway, {
            resourceName: `${name}-certificate`,
            certName: name,
            serverName,
            description: `certificate of service ${name}`,
            parent: this,
        });
        const tls = serverTls(gateway.certificates, name);
        const certificateFirst = this.certificate ? [this.certificate] : [];

        // With a router the upstream is the router, whatever the replica count; without one it lists the replicas.
        const makeServerBlock = (upstreamServers: pulumi.Output<string[]>, dependsOn: pulumi.Resource[]) => {
            const input = pulumi.all([gateway.domain, pulumi.output(tokens), upstreamServers]).apply(([domain, tokenValues, upstreams]): ServerBlockInput => ({
                service: name,
                serverName: `${name}.${domain}`,
                auth: settings.auth,
                tokens: tokenValues,
                upstreamServers: upstreams,
                allow: router?.inferencePaths,
                internalResponseHeaders: router && routerSettings ? router.internalResponseHeaders(routerSettings.version) : [],
                noWorkerAnswer:
                    router && routerSettings
                        ? settings.pd
                            ? router.pdNoWorkerAnswer(routerSettings.version)
                            : router.noWorkerAnswer(routerSettings.version)
                        : undefined,
                servedModel: settings.model,
                ...(settings.pd ? { pdReplicas: { prefill: settings.pd.prefill.replicas, decode: settings.pd.decode.replicas } } : {}),
                rateLimits: settings.rateLimits,
                tls,
                ...(router && processCount === 2 ? { failover: true } : {}),
            }));
            const file = input.apply(serverBlockFile);
            const content = file.apply((f) => f.content);
            return hostStep(
                `${name}-server`,
                {
                    connection: gateway.connection,
                    description: `nginx server block of service ${name}`,
                    summary: {
                        service: name,
                        serverName: pulumi.interpolate`${name}.${gateway.domain}`,
                        auth: String(settings.auth),
                        rateLimits: settings.rateLimits.length,
                    },
                    write: [
                        { path: servicePaths(name).serverBlock, content: settings.auth ? pulumi.secret(content) : content, mode: "0640" },
                        // Its locations in the model endpoint's server block use its zones, token map and upstream: written with them.
                        ...(gateway.settings.endpoint
                            ? [{ path: endpointServiceLocations(name).file, mode: "0644", content: input.apply((i) => endpointServiceText(i)) }]
                            : []),
                    ],
                    activate: nginxReload.activate,
                    afterRemove: [nginxReload.afterRemove],
                },
                { parent: this, dependsOn },
            );
        };

        let routerProcess: HostScript | undefined;
        let routerReconcile: HostScript | undefined;
        let serverBlock: HostScript | undefined;
        const routerProcesses: HostScript[] = [];
        const routerObservability: RouterObservability[] = [];
        const processCount = settings.router?.processes ?? routerSettings?.processes ?? 1;
        const extraRouterPorts = processCount === 2 ? [this.ports.secondRouterPort] : [];
        if (router && routerSettings) {
            // nginx answers for the service before the router (re)starts: an upgrade's new server block,
            // which translates the new router's answers, is in place before the new router runs.
            const upstreams = [`127.0.0.1:${this.ports.routerPort}`, ...extraRouterPorts.map((p) => `127.0.0.1:${p}`)];
            serverBlock = makeServerBlock(pulumi.output(upstreams), [gateway.setup, ...certificateFirst]);
            const policy = settings.router?.policy ?? routerSettings.policy;
            for (const instance of processCount === 2 ? ([1, 2] as const) : ([1] as const)) {
                const port = instance === 1 ? this.ports.routerPort : this.ports.secondRouterPort;
                const launch = router.launch({
                    service: name,
                    user: systemUsers.router,
                    ...(instance === 2 ? { instance } : {}),
                    version: routerSettings.version,
                    port,
                    metricsPort: instance === 1 ? this.ports.routerMetricsPort : this.ports.secondRouterMetricsPort,
                    policy,
                    ...(settings.pd ? { pd: { prefillPolicy: settings.pd.prefill.policy ?? policy, decodePolicy: settings.pd.decode.policy ?? policy } } : {}),
                    workerStartupTimeoutSeconds: settings.readinessTimeoutSeconds,
                    // A router that cannot add workers at runtime learns them at start (and restarts on a change).
                    workerUrls: router.addsWorkersAtRuntime ? [] : Array.from({ length: settings.replicas }, (_, i) => workerUrl(slot, i)),
                });
                const unit = systemdUnitSteps(launch.unitName);
                routerObservability.push({
                    unit: launch.unitName,
                    ...(launch.logDir ? { logDir: launch.logDir } : {}),
                    ...(launch.metricsUrl ? { metricsUrl: launch.metricsUrl } : {}),
                });
                routerProcesses.push(
                    hostStep(
                        instance === 1 ? `${name}-router` : `${name}-router-2`,
                        {
                            connection: gateway.connection,
                            description: instance === 1 ? `router of service ${name}` : `second router of service ${name}`,
                            summary: {
                                service: name,
                                router: `${routerSettings.type} ${routerSettings.version}`,
                                policy: settings.pd ? `prefill ${settings.pd.prefill.policy ?? policy}, decode ${settings.pd.decode.policy ?? policy}` : policy,
                                routerPort: port,
                            },
                            write: launch.files,
                            activate: [...launch.prepare, ...unit.activate, ...launch.waitReady],
                            rollBack: unit.rollBack,
                            deactivate: unit.deactivate,
                            afterRemove: [...unit.afterRemove, ...(launch.emptyDirs?.length ? [removeEmptyDirs(launch.emptyDirs)] : [])],
                            removePaths: launch.statePaths,
                        },
                        // The second starts after the first: it reads the workers the first's state directory holds.
                        { parent: this, dependsOn: [gateway.setup, serverBlock, ...routerProcesses] },
                    ),
                );
            }
            routerProcess = routerProcesses[0];
            const reconcile = router.reconcile?.({
                service: name,
                routerPorts: [this.ports.routerPort, ...extraRouterPorts],
                pausedWhile: servicePaths(name).rolloutLock,
            });
            if (reconcile) {
                const reconcileUnit = systemdUnitSteps(reconcile.unitName);
                routerReconcile = hostStep(
                    `${name}-router-reconcile`,
                    {
                        connection: gateway.connection,
                        description: `worker reconcile of service ${name}'s router`,
                        summary: { service: name, routerPorts: [this.ports.routerPort, ...extraRouterPorts].join(", ") },
                        write: reconcile.files,
                        activate: reconcileUnit.activate,
                        rollBack: reconcileUnit.rollBack,
                        deactivate: reconcileUnit.deactivate,
                        afterRemove: reconcileUnit.afterRemove,
                    },
                    { parent: this, dependsOn: routerProcesses },
                );
            }
        }
        this.routerProcess = routerProcess;
        this.routerProcesses = routerProcesses;
        this.routerReconcile = routerReconcile;
        this.observability = { accessLog: servicePaths(name).accessLog, routers: routerObservability };

        const replicaOpts = { parent: this, dependsOn: routerProcesses.length > 0 ? routerProcesses : [gateway.setup] };
        const roleEnvs = settings.pd
            ? Object.fromEntries(
                  replicaRoles.map((role) => [role, { ...env, ...resolveEnv(settings.pd?.[role].env, process.env, `Service ${name}: pd.${role}.env`) }]),
              )
            : {};
        const rolloutId = rolloutIdOf(settings, env, roleEnvs);
        this.replicas = [];
        for (let index = 0; index < settings.replicas; index++) {
            this.replicas.push(
                new Replica(
                    `${name}-replica-${index}`,
                    { gateway, service: name, index, slot, settings, env, routerPort: this.ports.routerPort, extraRouterPorts, rolloutId },
                    replicaOpts,
                ),
            );
        }
        if (settings.pd) {
            const roles = { prefill: [] as Replica[], decode: [] as Replica[] };
            for (const role of replicaRoles) {
                const own = roleSettings(settings, role);
                const roleEnv = roleEnvs[role];
                for (let index = 0; index < own.replicas; index++) {
                    const replica = new Replica(
                        `${name}-${role}-${index}`,
                        { gateway, service: name, index, slot, settings: own, env: roleEnv, routerPort: this.ports.routerPort, extraRouterPorts, rolloutId },
                        replicaOpts,
                    );
                    roles[role].push(replica);
                    this.replicas.push(replica);
                }
            }
            this.roles = roles;
        } else {
            this.roles = undefined;
        }

        // Without a router the server block lists the replicas: it comes after them.
        this.serverBlock =
            serverBlock ?? makeServerBlock(pulumi.all(this.replicas.map((r) => r.target)), [gateway.setup, ...certificateFirst, ...this.replicas]);

        this.url = pulumi.interpolate`${gateway.tls ? "https" : "http"}://${name}.${gateway.domain}`;
        this.registerOutputs({ url: this.url, replicas: this.replicas.length, routerPort: this.ports.routerPort, observability: this.observability });
    }
}
