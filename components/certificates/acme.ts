// Certificates from an ACME server (Let's Encrypt by default) on the gateway, with certbot: the client's pinned
// install, the gateway's account, the port-80 server of the HTTP-01 challenges, the renewal timer (the gateway's
// step), and one certificate per service name (each service's step). docs/acme.md says why it is built so.
import * as pulumi from "@pulumi/pulumi";
import type { AcmeSettings } from "../config";
import type { HostStepArgs } from "../host-script";
import { nginxReload } from "../host-script/steps";
import { acmeCertificatePaths, acmeClientVenv, acmePaths, hostPaths, unitFile } from "../naming";
import { render, templateFile } from "../templates";

/** The ACME client the gateway runs: certbot from PyPI, its dependency closure pinned (templates/acme/). */
export const acmeClient = { packageName: "certbot", version: "5.8.0", importName: "certbot" } as const;

/** What certbot runs after it obtained or renewed a certificate: nginx serves it from the next request on, if its configuration checks. */
export const acmeReload = "nginx -t -q && systemctl reload nginx";

/** The parts of a host step the ACME pieces fill in; the caller adds the connection and the description. */
export type AcmeStep = Omit<HostStepArgs, "connection" | "description">;

/** pip's options for an index: a plain-HTTP index on another host must be trusted by name. */
function indexOptions(indexUrl: string | undefined) {
    return { indexUrl: indexUrl ?? "", trustedHost: indexUrl?.startsWith("http://") ? new URL(indexUrl).hostname : "" };
}

/** Installs the pinned client into its own virtualenv (idempotent: an installed one of the same version is kept). */
export function acmeClientInstall(indexUrl?: string): string {
    const { packageName, version, importName } = acmeClient;
    return render("scripts/venv-install.sh.njk", {
        comment: [
            `Install the pinned ACME client (${packageName} ${version}) into its own virtualenv (idempotent: an existing install of the same version is kept).`,
        ],
        venv: acmeClientVenv(packageName, version),
        importName,
        requirement: `${packageName}==${version}`,
        constraints: (templateFile(`acme/${packageName}-${version}.constraints.txt`) ?? "").replace(/([^\n])$/, "$1\n"),
        ...indexOptions(indexUrl),
    });
}

/**
 * The gateway's ACME step: the client, its settings and account, nginx's port-80 server for every
 * `*.<domain>` name (challenges, then the redirect to HTTPS), and the renewal timer.
 */
export function acmeGatewayStep(gatewayName: string, domain: pulumi.Input<string>, acme: AcmeSettings): AcmeStep {
    const { packageName, version } = acmeClient;
    const lock = { lockDir: hostPaths.runDir, lockFile: hostPaths.lockFile };
    const common = { gatewayName, certbot: acmePaths.certbot, cliIni: acmePaths.cliIni };
    const eab = acme.eab;
    const cliIni = pulumi.output(eab?.hmacKey).apply((hmacKey) =>
        render("acme/cli.ini.njk", {
            ...common,
            configDir: acmePaths.configDir,
            workDir: acmePaths.workDir,
            logsDir: acmePaths.logsDir,
            server: acme.server,
            eab: eab ? { kid: eab.kid, hmacKey } : false,
        }),
    );
    const httpConf = pulumi
        .output(domain)
        .apply((d) =>
            render("nginx/acme-http.conf.njk", { gatewayName, domain: d, httpPort: 80, webroot: acmePaths.webroot, accessLog: acmePaths.httpAccessLog }),
        );
    return {
        summary: { server: acme.server, names: pulumi.interpolate`*.${domain}`, client: `${packageName} ${version}`, renewal: acmePaths.renewTimer },
        write: [
            // The HMAC key of an external account binding: root's only, and secret in the state.
            { path: acmePaths.cliIni, content: eab ? pulumi.secret(cliIni) : cliIni, mode: "0600" },
            ...(acme.caBundle === undefined ? [] : [{ path: acmePaths.serverCaBundle, content: acme.caBundle, mode: "0644" }]),
            {
                path: acmePaths.certbot,
                mode: "0755",
                content: render("scripts/acme-certbot.sh.njk", {
                    ...common,
                    version,
                    venv: acmeClientVenv(packageName, version),
                    caBundle: acme.caBundle === undefined ? "" : acmePaths.serverCaBundle,
                }),
            },
            { path: acmePaths.renewScript, mode: "0755", content: render("scripts/acme-renew.sh.njk", { ...common, ...lock, reload: acmeReload }) },
            {
                path: unitFile(acmePaths.renewUnit),
                mode: "0644",
                content: render("systemd/acme-renew.service.njk", { gatewayName, renewScript: acmePaths.renewScript }),
            },
            { path: unitFile(acmePaths.renewTimer), mode: "0644", content: render("systemd/acme-renew.timer.njk", { gatewayName }) },
            { path: acmePaths.httpConf, mode: "0644", content: httpConf },
        ],
        activate: [
            acmeClientInstall(acme.indexUrl),
            // nginx's workers read the challenges: every directory down to the webroot is searchable.
            `install -d -m 0755 ${acmePaths.stateDir} ${acmePaths.webroot} ${acmePaths.workDir}`,
            render("scripts/acme-account.sh.njk", { certbot: acmePaths.certbot, server: acme.server, email: acme.email ?? "" }),
            ...nginxReload.activate,
            "systemctl daemon-reload",
            `systemctl enable --now ${acmePaths.renewTimer}`,
        ],
        rollBack: ["systemctl daemon-reload", nginxReload.afterRemove],
        deactivate: [`systemctl disable --now ${acmePaths.renewTimer}`, `systemctl stop ${acmePaths.renewUnit}`],
        // The services' certificates went with them (they depend on this step); the account and the client go last.
        removePaths: [acmePaths.clientRoot, acmePaths.configDir, acmePaths.stateDir, acmePaths.logsDir],
        afterRemove: ["systemctl daemon-reload", nginxReload.afterRemove],
    };
}

/**
 * One service's certificate for `<service>.<domain>`: obtained on create (HTTP-01 through the gateway's port-80
 * server), kept while it is not due, removed with the service (after its server block, which depends on it).
 */
export function acmeCertificateStep(service: string, serverName: pulumi.Input<string>, acme: AcmeSettings): AcmeStep {
    const paths = acmeCertificatePaths(service);
    return {
        summary: { service, serverName, server: acme.server },
        write: [],
        activate: [
            pulumi.output(serverName).apply((name) =>
                render("scripts/acme-certificate.sh.njk", {
                    certbot: acmePaths.certbot,
                    server: acme.server,
                    webroot: acmePaths.webroot,
                    logsDir: acmePaths.logsDir,
                    certName: paths.certName,
                    renewalConf: paths.renewalConf,
                    serverName: name,
                    reload: acmeReload,
                }),
            ),
        ],
        removePaths: paths.lineage,
    };
}

/** Where nginx finds a service's certificate from the ACME server. */
export function acmeCertificateFiles(service: string): { certificatePath: string; privateKeyPath: string } {
    const { certificatePath, privateKeyPath } = acmeCertificatePaths(service);
    return { certificatePath, privateKeyPath };
}
