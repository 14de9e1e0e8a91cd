// Every on-host name: unit names, files, directories, sockets, ports and nginx upstream names.
// Pure functions of (service, replica index), so previews are exact and nothing ever shifts.
// No other module spells a path under /etc, /opt, /run or /var; templates receive them as values.

/** Highest replica index + 1 a service may have: each service owns a block of this many bridge ports. */
export const maxReplicas = 64;
/** Number of port slots (0 to portSlots - 1); a service's slot fixes its router, metrics and bridge ports. */
export const portSlots = 300;

/** First port of the router admin ports, one per slot (10000-10299). */
export const routerPortBase = 10000;
/** First port of the router metrics (Prometheus) ports, one per slot (10300-10599). */
export const routerMetricsPortBase = 10300;
/** The same two for a service's second router process: 10600-10899 and 10900-11199. */
export const secondRouterPortBase = 10600;
export const secondRouterMetricsPortBase = 10900;
/** First bridge port; each slot owns `maxReplicas` consecutive ports after it (12000-31199, below the
 * Linux ephemeral range that starts at 32768, so a reload never races an outgoing connection for a port). */
export const bridgePortBase = 12000;

/** FNV-1a: stable across Node versions and machines, unlike anything seeded. */
function fnv1a(text: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        hash ^= text.charCodeAt(i);
        hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash;
}

/** The service's port slot: from its name unless pinned with `portSlot`. */
export function portSlot(serviceName: string, pinned?: number): number {
    return pinned ?? fnv1a(serviceName) % portSlots;
}

export interface ServicePorts {
    /** Router HTTP port on the gateway's loopback: nginx's upstream and the admin API. */
    routerPort: number;
    /** Router Prometheus port on the gateway's loopback. */
    routerMetricsPort: number;
    /** The second router process's ports, when the service runs two. */
    secondRouterPort: number;
    secondRouterMetricsPort: number;
}

export function servicePorts(slot: number): ServicePorts {
    return {
        routerPort: routerPortBase + slot,
        routerMetricsPort: routerMetricsPortBase + slot,
        secondRouterPort: secondRouterPortBase + slot,
        secondRouterMetricsPort: secondRouterMetricsPortBase + slot,
    };
}

/** The nginx bridge listener of replica `index` on the gateway's loopback. */
export function bridgePort(slot: number, index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= maxReplicas) {
        throw new RangeError(`replica index ${index} is outside 0..${maxReplicas - 1}`);
    }
    return bridgePortBase + slot * maxReplicas + index;
}

/** The URL a router sends replica `index`'s requests to: its bridge on the gateway's loopback. */
export function workerUrl(slot: number, index: number): string {
    return `http://127.0.0.1:${bridgePort(slot, index)}`;
}

/** Replica `index` of replicas spread round-robin over `hostCount` hosts: the how-many-th on its host. */
export function replicaPortOffset(index: number, hostCount: number): number {
    return Math.floor(index / Math.max(hostCount, 1));
}

const etcDir = "/etc/sglang-gateway";
const optDir = "/opt/sglang-gateway";
const runDir = "/run/sglang-gateway";
const stateDir = "/var/lib/sglang-gateway";
const logRoot = "/var/log";
const logDir = `${logRoot}/sglang-gateway`;
const cacheRoot = "/var/cache";
const cacheDir = `${cacheRoot}/sglang-gateway`;
const nginxIncludeDir = "/etc/nginx/sglang-gateway";

/** A path below `root` as systemd's LogsDirectory= and CacheDirectory= take it: relative to their root. */
function below(root: string, path: string): string {
    return path.slice(root.length + 1);
}

/**
 * The unprivileged system users the library's processes run as, each created by the step that first
 * needs it and removed with the last thing that ran as it.
 */
export const systemUsers = {
    /** Every service's router on the gateway. */
    router: "sglang-gateway-router",
    /** Model servers run from `commands` on a replica host (`docker run` stays root: the docker socket is root's in all but name). */
    replica: "sglang-gateway-replica",
};

/** Groups that GPU device files may belong to (AMD's /dev/kfd and /dev/dri; NVIDIA's only with NVreg_DeviceFileGID): the model servers' user joins those that exist. */
export const gpuDeviceGroups = ["video", "render"];

/** A systemd unit's file. */
export function unitFile(unit: string): string {
    return `/etc/systemd/system/${unit}`;
}

/** Paths every host has: the lock that serialises changes, and nginx's own pid file. */
export const hostPaths = {
    /** Held by every change on a host, so two applies never interleave. */
    lockFile: `${runDir}/apply.lock`,
    runDir,
    /** The library's directory of model-server installs on a replica host. */
    replicasRoot: optDir,
    /** Where model servers keep their caches (downloaded weights), one directory per service. */
    replicaCachesRoot: cacheDir,
    nginxPidFile: "/run/nginx.pid",
};

/** The gateway's own files and the roots that go when it is destroyed. */
export const gatewayPaths = {
    baseConf: "/etc/nginx/conf.d/sglang-gateway.conf",
    /** `server_tokens off` for the whole http block (the default server too), unless the distribution's nginx.conf sets it. */
    serverTokensConf: "/etc/nginx/conf.d/sglang-gateway-server-tokens.conf",
    includeDir: nginxIncludeDir,
    servicesDir: `${nginxIncludeDir}/services`,
    bridgesDir: `${nginxIncludeDir}/bridges`,
    tls: { certificatePath: `${etcDir}/tls/fullchain.pem`, privateKeyPath: `${etcDir}/tls/privkey.pem` },
    routerInstallsDir: `${optDir}/routers`,
    /** Created by the gateway's setup; everything services write lives below them. */
    dirs: [`${nginxIncludeDir}/services`, `${nginxIncludeDir}/bridges`, etcDir, stateDir, logDir],
    /** Removed last, when the gateway goes (its services are gone by then). */
    roots: [nginxIncludeDir, etcDir, stateDir, logDir],
};

/**
 * The ACME client on the gateway (`certbot`, pinned, in a virtualenv) and its directories: one account per
 * gateway, one certificate lineage per service (its `--cert-name` is the service's name).
 */
export const acmePaths = {
    /** The client's install and the scripts that run it; removed with the ACME step. */
    clientRoot: `${optDir}/acme`,
    /** certbot with this gateway's directories, ACME server and CA bundle: every step and the renewal run it. */
    certbot: `${optDir}/acme/certbot`,
    /** The renewal run of the timer's service: under the host's change lock, nginx reloaded for what was renewed. */
    renewScript: `${optDir}/acme/renew.sh`,
    /** certbot's configuration directory: the account, the certificates (`live/<service>/`), their renewal settings. */
    configDir: `${etcDir}/acme`,
    /** certbot's own settings (directories, server, EAB): root's only, it may hold the EAB key. */
    cliIni: `${etcDir}/acme/cli.ini`,
    /** PEM of the CA(s) the ACME server's HTTPS certificate chains to, for a private ACME server. */
    serverCaBundle: `${etcDir}/acme/server-ca.pem`,
    stateDir: `${stateDir}/acme`,
    workDir: `${stateDir}/acme/work`,
    /** What nginx serves at `/.well-known/acme-challenge/` on port 80 for every `<service>.<domain>`. */
    webroot: `${stateDir}/acme/webroot`,
    logsDir: `${logDir}/acme`,
    /** The port-80 server of every service name: challenges, and the redirect to HTTPS. */
    httpConf: "/etc/nginx/conf.d/sglang-gateway-acme.conf",
    httpAccessLog: "/var/log/nginx/sglang-gateway-acme.access.log",
    renewUnit: "sglang-gateway-acme-renew.service",
    renewTimer: "sglang-gateway-acme-renew.timer",
};

/** The ACME client's virtualenv of one pinned version, beside the scripts that run it. */
export function acmeClientVenv(packageName: string, version: string): string {
    return `${acmePaths.clientRoot}/${packageName}-${version}`;
}

/** One service's certificate from the ACME server: certbot's lineage named after the service. */
export function acmeCertificatePaths(service: string) {
    const live = `${acmePaths.configDir}/live/${service}`;
    return {
        certName: service,
        certificatePath: `${live}/fullchain.pem`,
        privateKeyPath: `${live}/privkey.pem`,
        /** certbot's renewal settings of the lineage: the ACME server it came from, among others. */
        renewalConf: `${acmePaths.configDir}/renewal/${service}.conf`,
        /** Everything certbot keeps of the lineage: removed with the service. */
        lineage: [live, `${acmePaths.configDir}/archive/${service}`, `${acmePaths.configDir}/renewal/${service}.conf`],
    };
}

/** One virtualenv (or other install) per router package and pinned version, so an upgrade installs beside the running one. */
export function routerInstallDir(packageName: string, version: string): string {
    return `${gatewayPaths.routerInstallsDir}/${packageName}-${version}`;
}

/**
 * The router process of one service on the gateway; `instance` 2 is its second process (crash tolerance).
 * The second's names take another prefix (`router2-`): no service name makes one look like the other.
 */
export function routerPaths(service: string, instance: 1 | 2 = 1) {
    const configDir = instance === 1 ? `${etcDir}/routers/${service}` : `${etcDir}/routers/${service}/second`;
    const routerLogDir = instance === 1 ? `${logDir}/${service}` : `${logDir}/${service}/second`;
    return {
        unit: instance === 1 ? `sglang-gateway-router-${service}.service` : `sglang-gateway-router2-${service}.service`,
        startScript: `${configDir}/start.sh`,
        /** Where the router keeps what it must remember across restarts (the router decides what); shared by both processes. */
        stateDir: `${stateDir}/routers/${service}`,
        logDir: routerLogDir,
        /** The log directory as systemd's LogsDirectory= names it: systemd creates it, owned by the router's user, writable. */
        logsDirectory: below(logRoot, routerLogDir),
        /**
         * The directories between the gateway's roots and the start script and state directory: the router's
         * user must search them, whatever umask root created them with.
         */
        /** The directories only this process's files are in, deepest first: they go with it once empty (the first's after the second's and the reconcile's). */
        ownDirs: instance === 1 ? [configDir, `${stateDir}/routers/${service}`] : [configDir],
        searchableDirs: [
            `${etcDir}/routers`,
            `${etcDir}/routers/${service}`,
            ...(instance === 1 ? [] : [configDir]),
            `${stateDir}/routers`,
            `${stateDir}/routers/${service}`,
        ],
    };
}

/** Beside a service's router processes: the reconcile that adds back the workers they dropped. `_` is in no service name, so no router unit is called this. */
export function routerReconcilePaths(service: string) {
    return {
        unit: `sglang-gateway-router-${service}_reconcile.service`,
        script: `${etcDir}/routers/${service}/reconcile.sh`,
    };
}

/** A service's nginx pieces on the gateway. */
export function servicePaths(service: string) {
    return {
        serverBlock: `${gatewayPaths.servicesDir}/${service}.conf`,
        /** Its access log: one JSON object a request, with the request id nginx passes to the router as `X-Request-Id`. */
        accessLog: `/var/log/nginx/sglang-gateway-${service}.access.log`,
        /** The access log's nginx format, defined in the service's own file (the gateway's base conf stays as it is). */
        accessLogFormat: `sgw_${service.replace(/-/g, "_")}_access`,
        socketDir: `${runDir}/${service}`,
        /** Held by the one replica of the service restarting for a new config; says where a failed roll stopped. */
        rolloutLock: `${runDir}/rollout-${service}`,
        /** nginx names: the prefixes keep a service called `chat-replica-0` apart from chat's bridge 0. */
        upstreamName: `sgw_service_${service.replace(/-/g, "_")}`,
        variablePrefix: `sgw_${service.replace(/-/g, "_")}`,
    };
}

/** The model endpoint's own error answers (named locations), which each service's locations there use too. */
export const endpointErrorLocations = { badRequest: "@sgw_endpoint:bad_request", rateLimited: "@sgw_endpoint:rate_limited" };

/**
 * The model endpoint's pieces on the gateway (one per gateway). `includeDir` is nginx's directory of the
 * library's files; only tests lay it elsewhere. `_` appears in no service name, so no service's file is called
 * like the endpoint's.
 */
export function endpointPaths(name: string, includeDir = nginxIncludeDir) {
    const dir = `${includeDir}/endpoint`;
    return {
        /** Its server block, beside the services' (base.conf includes them all). */
        serverBlock: `${includeDir}/services/${name}_endpoint.conf`,
        /** The njs module that reads a request's model and hands it to its service's location. */
        script: `${dir}/endpoint.js`,
        dir,
        /** Each service's locations inside the endpoint's server block, written with the service's own server block. */
        serviceLocationsDir: `${dir}/services`,
        accessLog: `/var/log/nginx/sglang-gateway-${name}_endpoint.access.log`,
        /** nginx names: the njs module, the variable that says whether the token is any service's, and the locations. */
        module: "sgw_endpoint",
        tokenVariable: "$sgw_endpoint_token_accepted",
        ...endpointErrorLocations,
    };
}

/**
 * The model endpoint's JSON access-log format (the services' fields), defined in its own file, which nginx
 * reads before the services' files; its service field is a variable each service's location sets.
 */
export const endpointAccessLog = { format: "sgw_endpoint_access", serviceVariable: "$sgw_endpoint_service" };

/** nginx's JavaScript module, which the model endpoint's script runs in: Debian's and Ubuntu's package of it, and its file. */
export const njsModule = { package: "libnginx-mod-http-js", modulePath: "/usr/lib/nginx/modules/ngx_http_js_module.so" };

/** A service's locations in the model endpoint's server block (`:` is in no service name and no path). */
export function endpointServiceLocations(service: string, includeDir = nginxIncludeDir) {
    const prefix = `@sgw_endpoint:${service}`;
    return {
        file: `${includeDir}/endpoint/services/${service}.conf`,
        /** The location that proxies a request for `path` (`/v1/chat/completions`) to the service. */
        location: (path: string) => `${prefix}:${path.replace(/[^A-Za-z0-9]/g, "_")}`,
        unavailable: `${prefix}:unavailable`,
        routerAnswer: (status: number) => `${prefix}:router_${status}`,
    };
}

/**
 * One replica's names: on its own host (process) and on the gateway (tunnel, bridge). A PD replica's
 * process names carry its role (`chat-decode-0`; a regular one's are `chat-replica-0`: no service name
 * can make one look like the other); on the gateway only decode replicas have names, keyed by index
 * like a regular replica's (a PD service has none of those).
 */
export function replicaPaths(service: string, index: number, role?: "prefill" | "decode") {
    const word = role ?? "replica";
    const processDir = `${optDir}/${service}/${word}-${index}`;
    return {
        processUnit: `sglang-gateway-${service}-${word}-${index}.service`,
        processDir,
        /** From the library's root down to the process directory: the model server's user must search them, whatever root's umask. */
        searchableDirs: [optDir, `${optDir}/${service}`, processDir],
        /** The service's directory on the replica host: removed with its last replica there. */
        serviceDir: `${optDir}/${service}`,
        /** The model server's writable home ($HOME: downloaded weights, compile caches), shared by the service's replicas on the host. */
        cacheDir: `${cacheDir}/${service}`,
        /** The same as systemd's CacheDirectory= names it: systemd creates it, owned by the model server's user. */
        cacheDirectory: below(cacheRoot, `${cacheDir}/${service}`),
        runScript: `${processDir}/run.sh`,
        envFile: `${processDir}/env`,
        // `_` appears in no service name: `chat_decode-0` is no regular replica's `<service>-<index>`.
        containerName: role ? `sglang-gateway-${service}_${role}-${index}` : `sglang-gateway-${service}-${index}`,
        tunnelUnit: `sglang-gateway-tunnel-${service}-${index}.service`,
        tunnelKey: `${etcDir}/keys/${service}-replica-${index}`,
        tunnelKnownHosts: `${etcDir}/keys/${service}-replica-${index}.known_hosts`,
        socket: `${runDir}/${service}/replica-${index}.sock`,
        bridgeFile: `${gatewayPaths.bridgesDir}/${service}-replica-${index}.conf`,
        bridgeUpstream: `sgw_bridge_${service.replace(/-/g, "_")}_${index}`,
        /** The nginx workers a bridge's removal retires, recorded so the drain waits for exactly them (each removal appends `.$$`, its shell's pid). */
        drainPidsFile: `${runDir}/drain-${service}-replica-${index}.pids`,
    };
}
