// The model endpoint's host files: its server block and njs script (one per gateway), and each service's
// locations inside that server block (written with the service's own server block).
import type { HostFile } from "../host-script/phases";
import { endpointAccessLog, endpointErrorLocations, endpointPaths, endpointServiceLocations, servicePaths } from "../naming";
import { render } from "../templates";
import { allowEverything, serviceProxyContext, tlsContext, type ServerBlockInput, type ServerTls } from "./server-block";

/** The paths the endpoint routes by the body's `model`; anything else is a service's own endpoint's. */
export const routedPaths = ["/v1/chat/completions", "/v1/completions", "/generate"] as const;

/** nginx's largest request body on the endpoint, as on a service's (the whole body is read into memory there). */
export const endpointMaxBodySize = "64m";

export interface EndpointService {
    service: string;
    model: string;
    auth: boolean;
}

export interface EndpointInput {
    /** The endpoint's label: served at `<name>.<domain>`. */
    name: string;
    /** `<name>.<domain>` */
    serverName: string;
    services: EndpointService[];
    tls?: ServerTls;
    /** nginx's directory of the library's files; only tests lay it elsewhere. */
    includeDir?: string;
    httpPort?: number;
    httpsPort?: number;
}

/** The endpoint's server block: the token check before the body is read, the script, and every service's locations. */
export function endpointServerBlockText(input: EndpointInput): string {
    const paths = endpointPaths(input.name, input.includeDir);
    const message = `path not served by the model endpoint ${input.serverName}, which serves ${routedPaths.join(", ")} and /v1/models; other paths are on each service's own endpoint (<service>.<domain>)`;
    return render("nginx/endpoint.conf.njk", {
        serverName: input.serverName,
        services: input.services.map((s) => s.service),
        tls: tlsContext(input.tls),
        httpPort: input.httpPort ?? 80,
        httpsPort: input.httpsPort ?? 443,
        accessLog: paths.accessLog,
        accessLogFormat: endpointAccessLog.format,
        // The JSON log's `service` field: each service's location sets its own; what the endpoint answers itself
        // (401, 404, a bad body) says the endpoint.
        service: endpointAccessLog.serviceVariable,
        endpointLabel: `${input.name} endpoint`,
        maxBodySize: endpointMaxBodySize,
        module: paths.module,
        script: paths.script,
        tokenVariable: paths.tokenVariable,
        badRequest: paths.badRequest,
        rateLimited: paths.rateLimited,
        routedPaths,
        unknownPathMessage: `${JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: "unknown_url" } })}\n`,
        serviceLocations: `${paths.serviceLocationsDir}/*.conf`,
    });
}

/** The njs script: each model, its service, the variable that says the token is the service's, and its locations. */
export function endpointScriptText(input: EndpointInput): string {
    const models = input.services.map((s) => {
        const names = endpointServiceLocations(s.service, input.includeDir);
        return {
            id: s.model,
            service: s.service,
            // njs reads nginx variables by name, without the `$`.
            authVariable: s.auth ? `${servicePaths(s.service).variablePrefix}_authorized` : null,
            locations: Object.fromEntries(routedPaths.map((p) => [p, names.location(p)])),
        };
    });
    // JSON is JavaScript, but for two line separators an older JavaScript parser takes as line ends.
    const modelsJson = JSON.stringify(models)
        .replace(/\u2028/g, "\\u2028")
        .replace(/\u2029/g, "\\u2029");
    return render("nginx/endpoint.js.njk", { serverName: input.serverName, modelsJson });
}

/** The endpoint's own files on the gateway (no secret in them: tokens stay in the services' files). */
export function endpointFiles(input: EndpointInput): HostFile[] {
    const paths = endpointPaths(input.name, input.includeDir);
    return [
        { path: paths.script, mode: "0644", content: endpointScriptText(input) },
        { path: paths.serverBlock, mode: "0644", content: endpointServerBlockText(input) },
    ];
}

/**
 * A service's locations in the endpoint's server block, one per routed path (each with the service's
 * zones for that path, as its own server block applies them), proxying as its own server block does.
 */
export function endpointServiceText(input: ServerBlockInput, includeDir?: string): string {
    const proxy = serviceProxyContext(input);
    const names = endpointServiceLocations(input.service, includeDir);
    const allow = input.allow ?? allowEverything;
    const served = (path: string) => allow.exact.includes(path) || allow.prefix.some((p) => path.startsWith(p));
    return render("nginx/endpoint-service.conf.njk", {
        ...proxy,
        // The service's log file, in the endpoint's format (the service's own is defined after the endpoint's file).
        accessLogFormat: endpointAccessLog.format,
        logServiceVariable: endpointAccessLog.serviceVariable,
        locations: routedPaths.map((path) => ({
            name: names.location(path),
            // A path the service's own endpoint refuses (its router serves no such path) answers as there.
            served: served(path),
            zones: proxy.zones.filter((z) => path.startsWith(z.prefix)),
        })),
        rateLimited: endpointErrorLocations.rateLimited,
        unavailable: names.unavailable,
        routerAnswer: proxy.noWorkerAnswer ? names.routerAnswer(proxy.noWorkerAnswer.status) : "",
    });
}
