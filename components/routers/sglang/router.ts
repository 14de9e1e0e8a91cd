// The SGLang router (PyPI `sglang-router`): versions, policies, install, launch, public paths, workers.
import type * as pulumi from "@pulumi/pulumi";
import { routerInstallDir, routerPaths, unitFile } from "../../naming";
import { render, shellQuote, templateFile } from "../../templates";
import type { Router, RouterLaunch, RouterLaunchOptions, RouterSettings, RouterWorkerArgs } from "../types";
import { SglangRouterWorker } from "./worker";

const packageName = "sglang-router";
const policies = ["cache_aware", "round_robin", "random", "power_of_two"];

/** One virtualenv per pinned version, so an upgrade installs beside the running one. */
export function sglangVenv(version: string): string {
    return routerInstallDir(packageName, version);
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
        routerPaths(options.service).logDir,
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
    defaultVersion: "0.3.2",
    defaultPolicy: "cache_aware",
    addsWorkersAtRuntime: true,

    versionProblem() {
        return undefined;
    },

    policyProblem(policy) {
        if (!policies.includes(policy)) {
            return `expected one of ${policies.join(", ")}`;
        }
        // 0.3.2 exits at start with "Power-of-two policy requires at least 2 workers", and a service's
        // router starts before its replicas register (and again after every restart with fewer).
        return policy === "power_of_two"
            ? "sglang-router 0.3.2 refuses to start power_of_two with fewer than 2 workers, and a service's router starts before its replicas register; use cache_aware, round_robin or random"
            : undefined;
    },

    // /v1/ covers chat, completions, embeddings, rerank, responses and the public model list.
    inferencePaths: { exact: ["/generate"], prefix: ["/v1/"] },

    install(settings: RouterSettings) {
        const requirement = `${packageName}==${settings.version}`;
        const venv = sglangVenv(settings.version);
        const command = render("scripts/sglang-router-install.sh.njk", {
            venv,
            requirement,
            // The router's dependencies pinned too, for the versions we ship a closure for.
            constraints: (templateFile(`routers/${packageName}-${settings.version}.constraints.txt`) ?? "").replace(/([^\n])$/, "$1\n"),
            indexUrl: settings.indexUrl ?? "",
            // pip refuses a plain-HTTP index on another host unless it is trusted by name.
            trustedHost: settings.indexUrl?.startsWith("http://") ? new URL(settings.indexUrl).hostname : "",
        });
        return { requirement, commands: [command], paths: [venv] };
    },

    launch(options: RouterLaunchOptions): RouterLaunch {
        const paths = routerPaths(options.service);
        const command = sglangRouterCommand(options).map(shellQuote).join(" ");
        return {
            unitName: paths.unit,
            files: [
                {
                    path: paths.startScript,
                    mode: "0755",
                    content: render("scripts/router-start.sh.njk", {
                        routerName: "sglang",
                        service: options.service,
                        workersDir: paths.workersDir,
                        command,
                        workerUrlsFlag: "--worker-urls",
                    }),
                },
                {
                    path: unitFile(paths.unit),
                    mode: "0644",
                    content: render("systemd/router.service.njk", { routerName: "sglang", service: options.service, startScript: paths.startScript }),
                },
            ],
            prepare: [`mkdir -p ${shellQuote(paths.logDir)} ${shellQuote(paths.workersDir)}`],
            waitReady: [
                render("scripts/wait-http.sh.njk", {
                    url: `http://127.0.0.1:${options.port}/health`,
                    seconds: 60,
                    what: `the sglang router of ${options.service}`,
                    unit: paths.unit,
                    journalLines: 30,
                }),
            ],
            statePaths: [paths.workersDir, paths.logDir],
        };
    },

    worker(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions) {
        return new SglangRouterWorker(name, args, opts);
    },
};
