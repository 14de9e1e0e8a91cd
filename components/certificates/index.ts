// The HTTPS side of a host name the gateway serves (a service's, the model endpoint's): which certificate files its
// server block names, and, with an ACME server, the step that obtains them first.
import type * as pulumi from "@pulumi/pulumi";
import type { CertificateSource } from "../config";
import type { Gateway } from "../gateway";
import type { ServerTls } from "../host-files/server-block";
import { hostStep, type HostScript } from "../host-script";
import { gatewayPaths } from "../naming";
import { acmeCertificateFiles, acmeCertificateStep } from "./acme";

export { acmeClient, acmeGatewayStep } from "./acme";

/** The certificate a server block for `certName`'s host name serves: the user's (`tls`), its own from the ACME server, or none. */
export function serverTls(certificates: CertificateSource, certName: string): ServerTls | undefined {
    if (certificates.source === "acme") {
        // The gateway's port-80 server answers plain HTTP for the name: ACME challenges first, then the redirect.
        return { ...acmeCertificateFiles(certName), httpElsewhere: true };
    }
    return certificates.source === "tls" ? gatewayPaths.tls : undefined;
}

/**
 * The step that obtains `serverName`'s certificate from the gateway's ACME server (lineage `certName`), before the
 * server block that names its files; undefined without ACME.
 */
export function certificateStep(
    gateway: Gateway,
    options: { resourceName: string; certName: string; serverName: pulumi.Input<string>; description: string; parent: pulumi.Resource },
): HostScript | undefined {
    const certificates = gateway.certificates;
    if (certificates.source !== "acme") {
        return undefined;
    }
    return hostStep(
        options.resourceName,
        { ...acmeCertificateStep(options.certName, options.serverName, certificates.acme), connection: gateway.connection, description: options.description },
        { parent: options.parent, dependsOn: gateway.acme ? [gateway.acme] : [gateway.setup] },
    );
}
