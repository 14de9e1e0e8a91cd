// Gateway: a host, nginx, optional TLS, and the pinned router install that every service's router uses.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, routerSchema, type RouterConfig, type RouterPolicy } from "./config";
import { formatIssues } from "./config-errors";
import { createGatewayHost, type BackendArgs, type GatewayHost } from "./backends";
import { hostFiles, HostScript, type ResolvedSshConnection } from "./remote";
import { routerFor, type Router } from "./routers";
import { render } from "./templates";

export const gatewayType = "sglang-gateway:index:Gateway";

export interface RouterArgs {
    /** Router implementation; `sglang` is the SGLang router. */
    type: "sglang";
    /** Load-balancing policy; default cache_aware. */
    policy?: RouterPolicy;
    /** Exact router package version; default 0.3.2. */
    version?: string;
    /** Package index the gateway installs from (for gateways without internet); default PyPI. */
    indexUrl?: string;
}

export interface TlsArgs {
    /** PEM certificate chain valid for `*.<domain>`. */
    certificate: pulumi.Input<string>;
    /** PEM private key of that certificate (secret). */
    privateKey: pulumi.Input<string>;
}

export interface GatewayArgs {
    /** Services are served at `<service>.<domain>`. */
    domain: pulumi.Input<string>;
    /** Where the gateway runs: `{type: "aws", ...}` or `{type: "ssh", ...}`. */
    backend: BackendArgs;
    /** A router per service; absent means a plain gateway (nginx straight to the replicas). */
    router?: RouterArgs | "sglang";
    /** Serve HTTPS with this certificate and redirect HTTP to it; absent means HTTP only. */
    tls?: TlsArgs;
}

/** Where the gateway keeps the TLS files nginx reads. */
export const tlsPaths = { certificatePath: "/etc/sglang-gateway/tls/fullchain.pem", privateKeyPath: "/etc/sglang-gateway/tls/privkey.pem" };

function parseRouterArgs(name: string, router: GatewayArgs["router"]): RouterConfig | undefined {
    if (router === undefined) {
        return undefined;
    }
    const parsed = routerSchema.safeParse(router);
    if (!parsed.success) {
        throw new ConfigError(formatIssues(parsed.error.issues, router, ["router"]).map((line) => `Gateway ${name}: ${line}`));
    }
    return parsed.data;
}

export class Gateway extends pulumi.ComponentResource {
    /** The public address clients and DNS point at. */
    readonly address: pulumi.Output<string>;
    readonly domain: pulumi.Output<string>;
    /** SSH access to the gateway (secret). */
    readonly connection: pulumi.Output<ResolvedSshConnection>;
    /** The pinned router requirement, e.g. `sglang-router==0.3.2`; undefined without a router. */
    readonly routerPackage: pulumi.Output<string | undefined>;
    /** The router settings every service inherits; undefined for a plain gateway. */
    readonly routerConfig: RouterConfig | undefined;
    readonly router: Router | undefined;
    readonly tls: boolean;
    /** The remote command that prepared the host; services depend on it. */
    readonly setup: HostScript;
    /** @internal the host backend, which also places replicas. */
    readonly host: GatewayHost;

    constructor(name: string, args: GatewayArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(gatewayType, name, {}, opts);
        this.routerConfig = parseRouterArgs(name, args.router);
        this.router = this.routerConfig ? routerFor(this.routerConfig.type) : undefined;
        this.tls = args.tls !== undefined;
        this.host = createGatewayHost(name, args.domain, args.backend, this);

        const install = this.routerConfig ? { version: this.routerConfig.version, indexUrl: this.routerConfig.indexUrl } : undefined;
        const files = [{ path: "/etc/nginx/conf.d/sglang-gateway.conf", content: render("nginx/base.conf.njk", { gatewayName: name, includeDir: "/etc/nginx/sglang-gateway" }) as pulumi.Input<string>, mode: "0644" }];
        if (args.tls) {
            files.push(
                { path: tlsPaths.certificatePath, content: args.tls.certificate, mode: "0644" },
                { path: tlsPaths.privateKeyPath, content: pulumi.secret(args.tls.privateKey), mode: "0600" },
            );
        }
        this.setup = hostFiles(
            `${name}-setup`,
            {
                connection: this.host.connection,
                description: `gateway ${name} setup`,
                files,
                activate: [
                    render("scripts/gateway-packages.sh.njk", { needsPython: install !== undefined }),
                    ...(install && this.router ? this.router.installCommands(install) : []),
                    "systemctl enable --now nginx",
                    "nginx -t",
                    "systemctl reload nginx",
                ],
                rollback: ["nginx -t && systemctl reload nginx"],
                afterRemove: ["nginx -t && systemctl reload nginx", "rmdir --ignore-fail-on-non-empty /opt/sglang-gateway/routers /opt/sglang-gateway"],
                // Everything the services left is gone by now (they depend on this); these are the roots.
                removePaths: [
                    "/etc/nginx/sglang-gateway",
                    "/etc/sglang-gateway",
                    "/var/lib/sglang-gateway",
                    "/var/log/sglang-gateway",
                    ...(install && this.router ? this.router.installPaths(install) : []),
                ],
            },
            { parent: this },
        );

        this.address = this.host.address;
        this.domain = pulumi.output(args.domain);
        this.connection = this.host.connection;
        this.routerPackage = pulumi.output(install && this.router ? this.router.requirement(install) : undefined);
        this.registerOutputs({ address: this.address, domain: this.domain, connection: this.connection, routerPackage: this.routerPackage });
    }
}
