// The router interface: everything the Gateway and Service need from a router, and nothing router-specific.
import * as pulumi from "@pulumi/pulumi";
import type { RouterPolicy } from "../config";
import type { PathAllowList } from "../server-block";
import type { SshConnection } from "../remote";

export interface RouterInstallOptions {
    version: string;
    /** Package index for gateways without internet (pip --index-url). */
    indexUrl?: string;
}

export interface RouterLaunchOptions {
    service: string;
    version: string;
    port: number;
    metricsPort: number;
    policy: RouterPolicy;
    logDir: string;
    /** How long the router keeps trying to add a worker that is not healthy yet. */
    workerStartupTimeoutSeconds: number;
}

/** The router process of one service, as files and commands on the gateway. */
export interface RouterLaunch {
    unitName: string;
    files: { path: string; content: string; mode: string }[];
    /** Shell lines run before the router starts (its directories). */
    prepare: string[];
    /** Shell lines that succeed once the router answers (bounded). */
    waitReady: string[];
    /** Directory the start script reads registered worker URLs from. */
    workersDir: string;
}

export interface RouterWorkerArgs {
    /** SSH access to the gateway; the admin API is reached through a tunnel to its loopback. */
    gateway: pulumi.Input<SshConnection>;
    /** Router HTTP port on the gateway's loopback. */
    routerPort: number;
    /** The URL the router sends this worker's requests to. */
    workerUrl: string;
    /** Directory on the gateway that records registered workers for router restarts. */
    workersDir: string;
    /** How long to wait for the router to report the worker healthy. */
    readinessTimeoutSeconds: number;
}

/** One worker's registration with a router: create adds it, delete removes it. */
export interface RouterWorkerResource extends pulumi.CustomResource {
    readonly workerUrl: pulumi.Output<string>;
    readonly routerWorkerId: pulumi.Output<string>;
}

export interface Router {
    /** Name used in config (`router: sglang`). */
    readonly type: string;
    /** Why a policy cannot work with this router, or undefined when it can. */
    policyProblem(policy: RouterPolicy): string | undefined;
    /** The paths the public server block passes to the router; everything else answers 403. */
    readonly inferencePaths: PathAllowList;
    /** The pinned package, e.g. `sglang-router==0.3.2`. */
    requirement(options: RouterInstallOptions): string;
    /** Idempotent shell lines that install the pinned router on the gateway. */
    installCommands(options: RouterInstallOptions): string[];
    /** Paths the install created, removed when the gateway is destroyed. */
    installPaths(options: RouterInstallOptions): string[];
    /** The router process for one service. */
    launch(options: RouterLaunchOptions): RouterLaunch;
    /** Registers one worker with the service's router. */
    worker(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions): RouterWorkerResource;
}
