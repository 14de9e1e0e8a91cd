// Replica: one model server, the gateway's way to it (tunnel + bridge), and its router registration.
// Created in that order and deleted in reverse, so the router stops sending to it before it goes.
import * as pulumi from "@pulumi/pulumi";
import type { RoleSettings, ServiceSettings } from "./config";
import type { Gateway } from "./gateway";
import { bridgeFile, replicaCleanup, replicaProcessFiles, replicaUser, tunnelKeyFile, tunnelUnitFile } from "./host-files/replica";
import { hostStep, HostScript } from "./host-script";
import {
    nginxDrain,
    nginxDrainRetired,
    nginxRecordWorkers,
    nginxReload,
    rolloutScripts,
    searchableDirs,
    sshHostKeyScan,
    systemdUnitSteps,
    systemUser,
    waitForModelServer,
    waitForSocket,
} from "./host-script/steps";
import { bridgePort, hostPaths, replicaPaths, servicePaths, systemUsers, workerUrl } from "./naming";
import type { RouterWorkerResource } from "./routers";

export const replicaType = "sglang-gateway:index:Replica";

export interface ReplicaArgs {
    gateway: Gateway;
    service: string;
    /** Replica identity: ports and names derive from it; scale-down removes the highest. */
    index: number;
    /** The service's port slot. */
    slot: number;
    /** The service's settings (model, commands, image, where replicas run, readiness timeout); a PD replica's role's. */
    settings: ServiceSettings | RoleSettings;
    /** The model server's environment, bare names resolved. */
    env: Record<string, pulumi.Input<string>>;
    /** The service router's port on the gateway; unused without a router. */
    routerPort: number;
    /** The service's other router processes' ports (a second router); the replica registers with each. */
    extraRouterPorts?: number[];
    /** Names one config change of the service: replicas restarting for it roll one at a time, and a failure stops the others. */
    rolloutId: pulumi.Input<string>;
}

/** A host in a URL: an IPv6 address in brackets. */
function urlHost(address: string): string {
    return address.includes(":") ? `[${address}]` : address;
}

export class Replica extends pulumi.ComponentResource {
    readonly index: number;
    /** The PD role (`prefill` or `decode`); undefined for a service without roles. */
    readonly role: "prefill" | "decode" | undefined;
    /** Port of the model server on its host. */
    readonly port: number;
    /** A prefill's bootstrap port on its host, where decode servers reach it. */
    readonly bootstrapPort: number | undefined;
    /** Port of this replica's bridge on the gateway's loopback; a prefill has none (the router reaches it directly). */
    readonly bridgePort: number | undefined;
    readonly reachMode: "tunnel" | "direct";
    /** The URL the router sends this replica's requests to. */
    readonly workerUrl: pulumi.Output<string>;
    /** What the gateway's nginx connects to: `unix:<socket>` (tunnel) or `<address>:<port>` (direct). */
    readonly target: pulumi.Output<string>;
    readonly process: HostScript;
    readonly tunnel: HostScript | undefined;
    /** The gateway's loopback listener the router sends to; only with a router. */
    readonly bridge: HostScript | undefined;
    /** The RouterWorker: this replica's registration with the service's router. */
    readonly worker: RouterWorkerResource | undefined;

    constructor(name: string, args: ReplicaArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(replicaType, name, {}, opts);
        const { service, index, gateway, settings } = args;
        const role = "role" in settings ? settings.role : undefined;
        const paths = replicaPaths(service, index, role);
        const host = gateway.host.replicaHost({ service, index, role, parent: this }, settings as unknown as Record<string, unknown>);
        const label = `${service} ${role ? `${role} ` : ""}replica ${index}`;
        this.index = index;
        this.role = role;
        this.port = settings.port + host.portOffset;
        this.bootstrapPort = role === "prefill" && "bootstrapPort" in settings ? (settings.bootstrapPort as number) + host.portOffset : undefined;
        // A prefill's URL names its host as decode servers reach it: the router hands that host to them as
        // `bootstrap_host`. So the router reaches a prefill directly, not through a bridge on the gateway.
        const direct = role === "prefill";
        this.bridgePort = direct ? undefined : bridgePort(args.slot, index);
        this.reachMode = direct ? "direct" : host.reach.mode;

        const hasEnv = Object.keys(args.env).length > 0;
        const processFiles = pulumi.all(args.env).apply((env) =>
            replicaProcessFiles({
                service,
                index,
                port: this.port,
                model: settings.model,
                commands: settings.commands ?? [],
                image: settings.image,
                gpus: host.gpus,
                env,
                reachMode: this.reachMode,
                role,
                bootstrapPort: this.bootstrapPort,
            }),
        );
        const envContent = processFiles.apply((f) => f.envFile.content);
        const unitSteps = systemdUnitSteps(paths.processUnit);
        // The URL the router knows this replica by: a prefill's own address, else its bridge on the gateway.
        const directTarget = pulumi.output(host.address).apply((address) => `${urlHost(address)}:${this.port}`);
        this.workerUrl = direct ? directTarget.apply((target) => `http://${target}`) : pulumi.output(workerUrl(args.slot, index));
        const router = gateway.router;
        const routerSettings = gateway.routerSettings;
        // With a router that adds workers at runtime, a new config restarts one replica of the service at a
        // time: out of the router, requests finished, restarted, healthy, back in (RELIABILITY.md).
        const aroundUpdate =
            router?.addsWorkersAtRuntime && routerSettings
                ? pulumi.all([this.workerUrl, args.rolloutId]).apply(([url, rolloutId]) => {
                      const { leave, join } = router.rolloutScripts({
                          service,
                          version: routerSettings.version,
                          routerPorts: [args.routerPort, ...(args.extraRouterPorts ?? [])],
                          workerUrl: url,
                          role,
                          bootstrapPort: this.bootstrapPort,
                          label,
                          readinessTimeoutSeconds: settings.readinessTimeoutSeconds,
                      });
                      const scripts = rolloutScripts({
                          service,
                          label,
                          lockDir: servicePaths(service).rolloutLock,
                          rolloutId,
                          leave,
                          join,
                          readinessTimeoutSeconds: settings.readinessTimeoutSeconds,
                      });
                      return { connection: gateway.connection, ...scripts };
                  })
                : undefined;
        // The model server runs as an unprivileged user (created here, before the unit starts), unless it is a container.
        const modelServerUser = systemUser(systemUsers.replica, "model servers", { gpus: true, whenGone: hostPaths.replicasRoot });
        const user = replicaUser({ image: settings.image });
        const processUser = user ? [modelServerUser.create, searchableDirs(user, paths.searchableDirs)] : [];
        const known = replicaProcessFiles({ service, index, port: this.port, model: settings.model, commands: [], env: {}, reachMode: this.reachMode, role });
        this.process = hostStep(
            `${name}-process`,
            {
                connection: host.connection,
                description: `${label} process`,
                summary: {
                    service,
                    ...(role ? { role } : {}),
                    replica: index,
                    host: host.connection.host,
                    modelServerPort: this.port,
                    ...(this.bootstrapPort === undefined ? {} : { bootstrapPort: this.bootstrapPort }),
                    ...(settings.image ? { image: settings.image } : {}),
                },
                write: [
                    { ...known.runScript, content: processFiles.apply((f) => f.runScript.content) },
                    { ...known.envFile, content: hasEnv ? pulumi.secret(envContent) : envContent },
                    { ...known.unit, content: processFiles.apply((f) => f.unit.content) },
                ],
                activate: [
                    ...processUser,
                    ...unitSteps.activate,
                    ...(host.reportsStartup ? [waitForModelServer(this.port, label, paths.processUnit, settings.readinessTimeoutSeconds)] : []),
                ],
                rollBack: unitSteps.rollBack,
                // docker run's client may die before its container does; the container goes explicitly.
                deactivate: [...unitSteps.deactivate, ...(settings.image ? [`docker rm -f ${paths.containerName}`] : [])],
                afterRemove: [...unitSteps.afterRemove, replicaCleanup(service, index, role), modelServerUser.remove],
                removePaths: [paths.processDir],
                aroundUpdate,
            },
            { parent: this },
        );

        const reach = host.reach;
        if (direct) {
            this.tunnel = undefined;
            this.target = directTarget;
        } else if (reach.mode === "tunnel") {
            // ssh with a pty session exits 255 when stopped: the removed unit would stay listed as failed.
            const tunnelSteps = systemdUnitSteps(paths.tunnelUnit, { stopFails: true });
            const learnsKey = reach.hostKey === undefined;
            this.tunnel = hostStep(
                `${name}-tunnel`,
                {
                    connection: gateway.connection,
                    description: `tunnel to ${service} replica ${index}`,
                    summary: { service, replica: index, replicaHost: reach.host, modelServerPort: this.port, socket: paths.socket },
                    write: [
                        {
                            ...tunnelKeyFile(service, index, ""),
                            content: pulumi.secret(pulumi.output(reach.privateKey).apply((k) => tunnelKeyFile(service, index, k).content)),
                        },
                        {
                            path: tunnelUnitFile({ service, index, host: "", port: 0, user: "", remotePort: 0 }).path,
                            mode: "0644",
                            content: pulumi
                                // The unit pins the replica host's key: the one given in config, else the one this step
                                // learns on the gateway at create and keeps in its own state. (Not the process step's pin:
                                // dynamic providers cannot keep its output known in a preview, so every process update
                                // would show this tunnel as changed.)
                                .all([reach.host, reach.port, reach.user, reach.hostKey])
                                .apply(
                                    ([host, port, user, hostKey]) =>
                                        tunnelUnitFile({ service, index, host, port, user, remotePort: this.port, ...(hostKey ? { hostKey } : {}) }).content,
                                ),
                        },
                    ],
                    ...(learnsKey
                        ? {
                              learnHostKey: pulumi
                                  .all([reach.host, reach.port])
                                  .apply(([host, port]) => ({ target: `${host}:${port}`, script: sshHostKeyScan(host, port) })),
                              // A tunnel restart (its unit changed: a new remote port, or the pin on an upgrade) rolls
                              // like a model server's: out of the router, drained, restarted, back in. Not with a key
                              // from config: such a tunnel may need its new key before the process step's roll can rejoin.
                              aroundUpdate,
                          }
                        : {}),
                    activate: [...tunnelSteps.activate, waitForSocket(paths.socket, `tunnel to ${service} replica ${index}`, paths.tunnelUnit)],
                    rollBack: tunnelSteps.rollBack,
                    // Without a router the server block's reload retired nginx workers earlier; let them finish first.
                    // (With a router, the bridge's own drain has already waited for its requests.)
                    awaitIdle: gateway.router ? [] : [nginxDrainRetired()],
                    deactivate: tunnelSteps.deactivate,
                    afterRemove: tunnelSteps.afterRemove,
                    removePaths: [paths.socket, paths.tunnelKnownHosts],
                },
                // Not after the process when the host key is given in config: a rolling restart's rejoin then
                // waits for this tunnel, which must be free to restart meanwhile (a new key).
                { parent: this, dependsOn: learnsKey ? [this.process] : [] },
            );
            this.target = pulumi.output(`unix:${paths.socket}`);
        } else {
            this.tunnel = undefined;
            this.target = pulumi.interpolate`${reach.address}:${this.port}`;
        }

        // Without a router, the service's own upstream lists the replicas: no bridge needed.
        const bridgePortNumber = this.bridgePort;
        this.bridge =
            !gateway.router || bridgePortNumber === undefined
                ? undefined
                : hostStep(
                      `${name}-bridge`,
                      {
                          connection: gateway.connection,
                          description: `bridge for ${label}`,
                          summary: {
                              service,
                              ...(role ? { role } : {}),
                              replica: index,
                              bridgePort: bridgePortNumber,
                              workerUrl: workerUrl(args.slot, index),
                              target: this.target,
                          },
                          write: [
                              {
                                  ...bridgeFile({ service, index, bridgePort: bridgePortNumber, target: "" }),
                                  content: this.target.apply((target) => bridgeFile({ service, index, bridgePort: bridgePortNumber, target }).content),
                              },
                          ],
                          activate: nginxReload.activate,
                          // In-flight requests through this bridge finish before the tunnel and the process go.
                          deactivate: [nginxRecordWorkers(paths.drainPidsFile)],
                          // No reload, no retired workers: then there is nothing to wait for.
                          afterRemove: [`${nginxReload.afterRemove} || rm -f ${paths.drainPidsFile}.$$`],
                          drain: [nginxDrain(paths.drainPidsFile)],
                      },
                      // After both: on delete the bridge goes (its requests drained) before the tunnel and the model server.
                      { parent: this, dependsOn: this.tunnel ? [this.tunnel, this.process] : [this.process] },
                  );

        const routed = direct ? this.process : this.bridge;
        this.worker =
            routed && gateway.router?.addsWorkersAtRuntime
                ? gateway.router.worker(
                      `${name}-worker`,
                      {
                          gateway: gateway.connection,
                          service,
                          routerPort: args.routerPort,
                          ...(args.extraRouterPorts?.length ? { extraRouterPorts: args.extraRouterPorts } : {}),
                          workerUrl: direct ? this.workerUrl : workerUrl(args.slot, index),
                          readinessTimeoutSeconds: settings.readinessTimeoutSeconds,
                          ...(role ? { role } : {}),
                          ...(this.bootstrapPort === undefined ? {} : { bootstrapPort: this.bootstrapPort }),
                      },
                      { parent: this, dependsOn: [routed] },
                  )
                : undefined;

        this.registerOutputs({ port: this.port, bridgePort: this.bridgePort, target: this.target });
    }
}
