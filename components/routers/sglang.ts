// The SGLang router (PyPI `sglang-router`): install, launch, public paths, worker registration.
import * as pulumi from "@pulumi/pulumi";
import { render, shellQuote, templateFile } from "../templates";
import type { Router, RouterInstallOptions, RouterLaunch, RouterLaunchOptions, RouterWorkerArgs } from "./types";
import { SglangRouterWorker } from "./sglang-worker";

const packageName = "sglang-router";

/** One virtualenv per pinned version, so an upgrade installs beside the running one. */
export function sglangVenv(version: string): string {
    return `/opt/sglang-gateway/routers/${packageName}-${version}`;
}

/** The command line of one service's router; it binds only to the gateway's loopback. */
export function sglangRouterCommand(options: RouterLaunchOptions): string[] {
    return [
        `${sglangVenv(options.version)}/bin/python`,
        "-m",
        "sglang_router.launch_router",
        "--host",
        "127.0.0.1",
        "--port",
        String(options.port),
        "--prometheus-host",
        "127.0.0.1",
        "--prometheus-port",
        String(options.metricsPort),
        "--policy",
        options.policy,
        "--log-dir",
        options.logDir,
        // Aligned with our readiness wait: a registration we gave up on also ends in the router.
        "--worker-startup-timeout-secs",
        String(options.workerStartupTimeoutSeconds),
        // Notice a dead replica in about half a minute instead of three (default 60 s interval).
        "--health-check-interval-secs",
        "10",
    ];
}

export const sglangRouter: Router = {
    type: "sglang",

    policyProblem(policy) {
        // 0.3.2 exits at start with "Power-of-two policy requires at least 2 workers", and a service's
        // router starts before its replicas register (and again after every restart with fewer).
        return policy === "power_of_two"
            ? "sglang-router 0.3.2 refuses to start power_of_two with fewer than 2 workers, and a service's router starts before its replicas register; use cache_aware, round_robin or random"
            : undefined;
    },

    // /v1/ covers chat, completions, embeddings, rerank, responses and the public model list.
    inferencePaths: { exact: ["/generate"], prefix: ["/v1/"] },

    requirement(options: RouterInstallOptions): string {
        return `${packageName}==${options.version}`;
    },

    installCommands(options: RouterInstallOptions): string[] {
        return [
            render("scripts/sglang-router-install.sh.njk", {
                venv: sglangVenv(options.version),
                requirement: sglangRouter.requirement(options),
                // The router's dependencies pinned too, for the versions we ship a closure for.
                constraints: (templateFile(`routers/${packageName}-${options.version}.constraints.txt`) ?? "").replace(/([^\n])$/, "$1\n"),
                indexUrl: options.indexUrl ?? "",
                // pip refuses a plain-HTTP index on another host unless it is trusted by name.
                trustedHost: options.indexUrl?.startsWith("http://") ? new URL(options.indexUrl).hostname : "",
            }),
        ];
    },

    installPaths(options: RouterInstallOptions): string[] {
        return [sglangVenv(options.version)];
    },

    launch(options: RouterLaunchOptions): RouterLaunch {
        const base = `/etc/sglang-gateway/routers/${options.service}`;
        const workersDir = `/var/lib/sglang-gateway/routers/${options.service}/workers`;
        const startScript = `${base}/start.sh`;
        const unitName = `sglang-gateway-router-${options.service}.service`;
        const command = sglangRouterCommand(options).map(shellQuote).join(" ");
        return {
            unitName,
            workersDir,
            files: [
                {
                    path: startScript,
                    mode: "0755",
                    content: render("scripts/router-start.sh.njk", { routerName: "sglang", service: options.service, workersDir, command, workerUrlsFlag: "--worker-urls" }),
                },
                {
                    path: `/etc/systemd/system/${unitName}`,
                    mode: "0644",
                    content: render("systemd/router.service.njk", { routerName: "sglang", service: options.service, startScript }),
                },
            ],
            prepare: [`mkdir -p ${shellQuote(options.logDir)} ${shellQuote(workersDir)}`],
            waitReady: [
                render("scripts/wait-http.sh.njk", { url: `http://127.0.0.1:${options.port}/health`, seconds: 60, what: `the sglang router of ${options.service}`, unit: unitName }),
            ],
        };
    },

    worker(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions) {
        return new SglangRouterWorker(name, args, opts);
    },
};
