// ModelEndpoint: one host name, `<name>.<domain>`, for the models of every service on a gateway. nginx reads a
// request's `model` (njs) and hands it to that service's locations, which its own server block step writes.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";
import type { Gateway } from "./gateway";
import { endpointFiles, type EndpointInput } from "./host-files/endpoint";
import { certificateStep, serverTls } from "./certificates";
import { hostStep, type HostScript } from "./host-script";
import { nginxReload } from "./host-script/steps";
import { endpointPaths, njsModule } from "./naming";
import type { Service } from "./service";
import { render } from "./templates";

export const modelEndpointType = "sglang-gateway:index:ModelEndpoint";

export interface ModelEndpointArgs {
    /** The gateway, whose `endpoint` setting names the endpoint (`<endpoint.name>.<domain>`). */
    gateway: Gateway;
    /** The services whose models the endpoint lists and routes to, each on this gateway. */
    services: Service[];
}

export class ModelEndpoint extends pulumi.ComponentResource {
    /** The endpoint's URL, e.g. `https://api.example.com`. */
    readonly url: pulumi.Output<string>;
    /** Model → the service that serves it. */
    readonly models: Record<string, string>;
    readonly serverBlock: HostScript;
    /** The endpoint name's certificate from the gateway's ACME server; undefined when the gateway has none. */
    readonly certificate: HostScript | undefined;

    constructor(name: string, args: ModelEndpointArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super(modelEndpointType, name, {}, opts);
        const { gateway, services } = args;
        const endpoint = gateway.settings.endpoint;
        if (!endpoint) {
            throw new ConfigError([`ModelEndpoint ${name}: gateway: the gateway's args have no endpoint; give the Gateway endpoint: {name: "${name}"}`]);
        }
        // The services took their models on the gateway already (Gateway.claimEndpointModel): no two share one.
        const entries = services.map((s) => ({ service: s.serviceName, model: s.settings.model, auth: s.settings.auth }));
        this.models = Object.fromEntries(entries.map((e) => [e.model, e.service]));
        const paths = endpointPaths(endpoint.name);
        // With an ACME server the endpoint's name has a certificate of its own (no service has that name), obtained first.
        this.certificate = certificateStep(gateway, {
            resourceName: `${name}-endpoint-certificate`,
            certName: endpoint.name,
            serverName: pulumi.interpolate`${endpoint.name}.${gateway.domain}`,
            description: `certificate of the model endpoint ${endpoint.name}`,
            parent: this,
        });
        const files = gateway.domain.apply((domain) => {
            const input: EndpointInput = {
                name: endpoint.name,
                serverName: `${endpoint.name}.${domain}`,
                services: entries,
                tls: serverTls(gateway.certificates, endpoint.name),
            };
            return endpointFiles(input);
        });
        this.serverBlock = hostStep(
            `${name}-endpoint`,
            {
                connection: gateway.connection,
                description: `nginx server block of the model endpoint ${endpoint.name}`,
                summary: {
                    serverName: pulumi.interpolate`${endpoint.name}.${gateway.domain}`,
                    models: entries.map((e) => `${e.model} → ${e.service}`).join(", ") || "none",
                },
                write: [paths.script, paths.serverBlock].map((path) => ({
                    path,
                    content: files.apply((f) => f.find((file) => file.path === path)?.content ?? ""),
                    mode: "0644",
                })),
                activate: [render("scripts/nginx-njs.sh.njk", njsModule), ...nginxReload.activate],
                afterRemove: [nginxReload.afterRemove],
                // The services' locations go with the endpoint; each service's step rewrites its own while it is on.
                removePaths: [paths.dir],
            },
            // Each service's locations (and the zones, token maps and upstreams they name) are in place first; and
            // after the whole of each service, so an endpoint that fails (no njs to be had) stops no service's creation.
            { parent: this, dependsOn: [gateway.setup, ...services, ...(this.certificate ? [this.certificate] : [])] },
        );
        this.url = pulumi.interpolate`${gateway.tls ? "https" : "http"}://${endpoint.name}.${gateway.domain}`;
        this.registerOutputs({ url: this.url, models: this.models });
    }
}
