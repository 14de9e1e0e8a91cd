// Gateway: a host, nginx, optional TLS, and the pinned router install that every service's router uses.
import * as pulumi from "@pulumi/pulumi";
import { backendFor, type GatewayHost } from "./backends";
import { acmeGatewayStep } from "./certificates/acme";
import {
    certificateSource,
    ConfigError,
    endpointModelProblem,
    endpointNameProblem,
    undecidedDefault,
    parseGatewaySettings,
    portSlotProblem,
    type CertificateSource,
    type GatewayArgs,
    type GatewaySettings,
} from "./config";
import { formatIssues } from "./config/errors";
import { gatewayBaseConf } from "./host-files/gateway";
import { hostStep, HostScript, type HostFileInput, type ResolvedSshConnection } from "./host-script";
import { nginxReload, nginxServerTokensOff, systemUser } from "./host-script/steps";
import { readKeyFilesOrThrow } from "./keys";
import type { GatewaySshAccess } from "./observability";
import { gatewayPaths, hostPaths, portSlot, systemUsers } from "./naming";
import { routerFor, type Router, type RouterSettings } from "./routers";
import { render } from "./templates";

export const gatewayType = "sglang-gateway:index:Gateway";
export type { GatewayArgs } from "./config";

export class Gateway extends pulumi.ComponentResource {
    /** The public address clients and DNS point at. */
    readonly address: pulumi.Output<string>;
    readonly domain: pulumi.Output<string>;
    /** SSH access to the gateway (secret). */
    readonly connection: pulumi.Output<ResolvedSshConnection>;
    /** The pinned router requirement, e.g. `sglang-router==0.3.2`; undefined without a router. */
    readonly routerPackage: pulumi.Output<string | undefined>;
    /** The gateway's settings as parsed (defaults filled in). */
    readonly settings: GatewaySettings;
    /** The router settings every service inherits; undefined for a plain gateway. */
    readonly routerSettings: RouterSettings | undefined;
    readonly router: Router | undefined;
    /** Services are served over HTTPS (the user's certificate, or one from the ACME server per service). */
    readonly tls: boolean;
    /** Where the HTTPS certificates come from, defaults resolved: none, the user's (`tls`), or an ACME server. */
    readonly certificates: CertificateSource;
    /** The remote step that prepared the host; services depend on it. */
    readonly setup: HostScript;
    /** The ACME client, account, challenge server and renewal timer; services' certificates depend on it. Undefined without ACME. */
    readonly acme: HostScript | undefined;
    /** @internal the host backend, which also places replicas. */
    readonly host: GatewayHost;
    /** How operators reach the gateway over SSH to read logs and metrics: address, port, user, host key (not secret; no key). */
    readonly sshAccess: pulumi.Output<GatewaySshAccess>;
    /** The gateway's SSH key (secret), read from privateKeyPath if given so. */
    readonly privateKey: pulumi.Output<string>;
    private readonly portSlots = new Map<number, string>();
    private readonly endpointModels = new Map<string, string>();

    constructor(name: string, args: GatewayArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(gatewayType, name, {}, opts);
        const settings = parseGatewaySettings(name, args);
        this.settings = settings;
        this.routerSettings = settings.router;
        this.router = settings.router ? routerFor(settings.router.type) : undefined;
        const certificates = certificateSource(settings);
        this.certificates = certificates;
        this.tls = certificates.source !== "none";
        if (undecidedDefault(settings)) {
            pulumi.log.warn(
                `Gateway ${name}: HTTP only: the domain is known only at deploy time, so whether it is public (Let's Encrypt) cannot be told; set certificate: letsencrypt (or none) to choose`,
                this,
            );
        }
        // The same key-file reading as the replica hosts' (a key given inline stays as it is).
        const key = readKeyFilesOrThrow({ privateKey: settings.privateKey, privateKeyPath: settings.privateKeyPath }, `Gateway ${name}`);
        this.privateKey = pulumi.secret(key.privateKey ?? "");
        this.host = backendFor(settings.backend).createGatewayHost(name, { ...settings, privateKey: this.privateKey }, this);

        const install = settings.router && this.router ? this.router.install(settings.router) : undefined;
        // Every service's router runs as this user, never as root.
        const routerUser = systemUser(systemUsers.router, "routers");
        const files: HostFileInput[] = [gatewayBaseConf(name)];
        if (settings.tls) {
            files.push(
                { path: gatewayPaths.tls.certificatePath, content: settings.tls.certificate, mode: "0644" },
                { path: gatewayPaths.tls.privateKeyPath, content: pulumi.secret(settings.tls.privateKey), mode: "0600" },
            );
        }
        this.setup = hostStep(
            `${name}-setup`,
            {
                connection: this.host.connection,
                description: `gateway ${name} setup`,
                summary: { gateway: name, router: install?.requirement ?? "none", tls: String(this.tls) },
                write: files,
                activate: [
                    render("scripts/gateway-packages.sh.njk", {
                        needsPython: install !== undefined || certificates.source === "acme",
                        dirs: gatewayPaths.dirs,
                    }),
                    ...(install ? [routerUser.create, ...install.commands] : []),
                    nginxServerTokensOff(gatewayPaths.serverTokensConf),
                    "systemctl enable --now nginx",
                    ...nginxReload.activate,
                ],
                rollBack: [nginxReload.afterRemove],
                afterRemove: [
                    nginxReload.afterRemove,
                    `rmdir --ignore-fail-on-non-empty ${gatewayPaths.routerInstallsDir} ${hostPaths.replicasRoot}`,
                    // Also when the router was dropped from the config since: no router runs as it any more.
                    routerUser.remove,
                ],
                // Everything the services left is gone by now (they depend on this); these are the roots.
                removePaths: [gatewayPaths.serverTokensConf, ...gatewayPaths.roots, ...(install?.paths ?? [])],
            },
            { parent: this },
        );

        // After the setup (nginx, the directories) and the host's DNS record, if it makes one: the ACME server resolves the names.
        this.acme =
            certificates.source === "acme"
                ? hostStep(
                      `${name}-acme`,
                      {
                          ...acmeGatewayStep(name, settings.domain, certificates.acme),
                          connection: this.host.connection,
                          description: `ACME certificates of gateway ${name}`,
                      },
                      { parent: this, dependsOn: [this.setup, ...(this.host.dnsRecords ?? [])] },
                  )
                : undefined;

        this.address = this.host.address;
        this.domain = pulumi.output(settings.domain);
        // Each step pins the gateway's key at its own first contact (a key given in config is in the connection).
        // Not the setup's pin: a preview of a setup update could not know it, and would show every step as changed.
        this.connection = this.host.connection;
        this.routerPackage = pulumi.output(install?.requirement);
        // The connection is secret as a whole (it holds the key); these parts of it are not.
        this.sshAccess = pulumi.unsecret(
            pulumi.all([this.host.connection, this.setup.hostKey]).apply(([c, pinned]) => {
                const hostKey = c.hostKey ?? pinned;
                return { host: c.host, port: c.port ?? 22, user: c.user ?? "root", ...(hostKey ? { hostKey } : {}) };
            }),
        );
        this.registerOutputs({ address: this.address, domain: this.domain, connection: this.connection, routerPackage: this.routerPackage });
    }

    /** @internal A service takes its port slot; two services on one gateway never share one. */
    claimPortSlot(service: { name: string; portSlot?: number }): number {
        const slot = portSlot(service.name, service.portSlot);
        const owner = this.portSlots.get(slot);
        if (owner !== undefined && owner !== service.name) {
            throw new ConfigError(formatIssues([portSlotProblem(service, `service ${owner}`)], service, {}).map((line) => `Service ${service.name}: ${line}`));
        }
        this.portSlots.set(slot, service.name);
        return slot;
    }

    /** @internal With a model endpoint, a service takes its model: no other service's, and not the endpoint's name. */
    claimEndpointModel(service: { name: string; model: string }): void {
        const endpoint = this.settings.endpoint;
        if (!endpoint) {
            return;
        }
        const owner = this.endpointModels.get(service.model);
        const problems = [
            ...(service.name === endpoint.name ? [endpointNameProblem(endpoint.name, service.name)] : []),
            ...(owner !== undefined && owner !== service.name ? [endpointModelProblem(service.model, `service ${owner}`)] : []),
        ];
        if (problems.length > 0) {
            throw new ConfigError(formatIssues(problems, service, {}).map((line) => `Service ${service.name}: ${line}`));
        }
        this.endpointModels.set(service.model, service.name);
    }
}
