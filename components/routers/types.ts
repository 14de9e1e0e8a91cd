// The router interface: everything Gateway and Service need from a router, and nothing router-specific.
import type * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../host-script";
import type { HostFile } from "../host-script/phases";

/** Paths the public server block passes to the router; everything else answers 403. */
export interface PathAllowList {
    /** Paths matched exactly (`location = /generate`). */
    exact: string[];
    /** Path prefixes (`location /v1/`). */
    prefix: string[];
}

/** An answer of the router that means "no worker": its status and a header value that tells it apart. */
export interface NoWorkerAnswer {
    status: number;
    header: string;
    value: string;
}

/** A router's settings once parsed: defaults filled in from the router itself. */
export interface RouterSettings {
    type: string;
    policy: string;
    version: string;
    /** Package index for gateways without internet; default: the package's public index. */
    indexUrl?: string;
    /** Router processes per service (2: crash tolerance); default 1. */
    processes?: 1 | 2;
}

/** The pinned router install on the gateway, shared by every service's router. */
export interface RouterInstall {
    /** The pinned package, e.g. `sglang-router==0.3.2`. */
    requirement: string;
    /** Idempotent shell lines that install it. */
    commands: string[];
    /** What the install created, removed when the gateway is destroyed. */
    paths: string[];
}

export interface RouterLaunchOptions {
    service: string;
    /** The unprivileged system user the router runs as (the gateway's setup creates it); never root. */
    user: string;
    /** 2 for a service's second router process (crash tolerance: nginx fails over to the other); default 1. */
    instance?: 1 | 2;
    version: string;
    port: number;
    metricsPort: number;
    policy: string;
    /** How long the router keeps trying to add a worker that is not healthy yet. */
    workerStartupTimeoutSeconds: number;
    /** Every replica's worker URL, for a router that learns its workers only at start (`addsWorkersAtRuntime: false`). */
    workerUrls: string[];
    /** Prefill/decode disaggregation: the router pairs a prefill and a decode worker per request, each role with its policy. */
    pd?: { prefillPolicy: string; decodePolicy: string };
}

/** The router process of one service, as files and commands on the gateway. */
export interface RouterLaunch {
    unitName: string;
    files: HostFile[];
    /** Shell lines run before the router starts (its directories). */
    prepare: string[];
    /** Shell lines that succeed once the router answers (bounded). */
    waitReady: string[];
    /** What the router keeps across restarts, removed with the service. */
    statePaths: string[];
    /** Directories that go after the process's files once they are empty (another step's files may still be in them). */
    emptyDirs?: string[];
    /** Where the router writes its log on the gateway beside the unit's journal, if anywhere. */
    logDir?: string;
    /** Its Prometheus metrics on the gateway's loopback (never public), if it serves them. */
    metricsUrl?: string;
}

export interface RouterReconcileOptions {
    service: string;
    /** Every router process of the service: each gets back the workers it dropped. */
    routerPorts: number[];
    /** While this path exists a rolling update owns the service's registrations: nothing is added back. */
    pausedWhile: string;
}

/** The reconcile beside a service's routers: a systemd unit and its files on the gateway. */
export interface RouterReconcile {
    unitName: string;
    files: HostFile[];
}

export interface RouterWorkerArgs {
    /** SSH access to the gateway; the admin API is reached through a tunnel to its loopback. */
    gateway: pulumi.Input<SshConnection>;
    service: string;
    /** Router HTTP port on the gateway's loopback. */
    routerPort: number;
    /** The service's other router processes' ports: the worker registers with each. */
    extraRouterPorts?: number[];
    /** The URL the router sends this worker's requests to. */
    workerUrl: pulumi.Input<string>;
    /** How long to wait for the router to report the worker healthy. */
    readinessTimeoutSeconds: number;
    /** The worker's PD role; undefined for a service without roles. */
    role?: "prefill" | "decode";
    /** A prefill's bootstrap port, where decode servers reach it (the router tells them with each request). */
    bootstrapPort?: number;
}

/** One worker taken out of its router for a restart, and put back (shell run on the gateway). */
export interface RolloutWorker {
    service: string;
    version: string;
    /** Every router process of the service. */
    routerPorts: number[];
    workerUrl: string;
    role?: "prefill" | "decode";
    bootstrapPort?: number;
    /** For messages: `chat replica 1`. */
    label: string;
    readinessTimeoutSeconds: number;
}

/** One worker's registration with a router (RouterWorker): create adds it, delete removes it. */
export interface RouterWorkerResource extends pulumi.CustomResource {
    readonly workerUrl: pulumi.Output<string>;
    readonly routerWorkerId: pulumi.Output<string>;
}

export interface Router {
    /** Name used in config (`router: sglang`). */
    readonly type: string;
    /** The version installed when none is given. */
    readonly defaultVersion: string;
    readonly defaultPolicy: string;
    /** Why `version` cannot be installed, or undefined when it can. */
    versionProblem(version: string): string | undefined;
    /** Why `policy` cannot work with `version` (for a PD `role`'s workers when given), or undefined when it can. */
    policyProblem(policy: string, version: string, role?: "prefill" | "decode"): string | undefined;
    /** Why `version` cannot run a PD service (pairing prefill and decode workers added at runtime), or undefined. */
    pdProblem(version: string): string | undefined;
    /** How this version answers when a PD service lacks a worker of some role (the gateway answers its own 503 instead). */
    pdNoWorkerAnswer(version: string): NoWorkerAnswer | undefined;
    /**
     * True when workers join and leave a running router (one RouterWorker per replica, no restart);
     * false when the router learns its workers only at start (a replica-count change restarts it).
     */
    readonly addsWorkersAtRuntime: boolean;
    readonly inferencePaths: PathAllowList;
    /** Response headers of this version that carry router internals; the gateway never passes them on. */
    internalResponseHeaders(version: string): readonly string[];
    /** How this version answers when it has no worker for the request (the gateway answers its own 503 instead). */
    noWorkerAnswer(version: string): NoWorkerAnswer | undefined;
    install(settings: RouterSettings): RouterInstall;
    /** The router process for one service. */
    launch(options: RouterLaunchOptions): RouterLaunch;
    /**
     * Shell fragments (bash, run on the gateway) for a rolling restart: `leave` stops the router sending to
     * the worker and waits for its requests in flight; `join` succeeds once the router has it back, healthy.
     */
    rolloutScripts(worker: RolloutWorker): { leave: string; join: string };
    /**
     * A process beside the service's routers that adds back the workers a router dropped (one started while
     * a replica is down may give up on it for good). Its own step, so adding it to a running stack restarts
     * no router. Absent for a router that never drops a registered worker.
     */
    reconcile?(options: RouterReconcileOptions): RouterReconcile;
    /** Registers one worker with the service's router; called only when `addsWorkersAtRuntime`. */
    worker(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions): RouterWorkerResource;
}
