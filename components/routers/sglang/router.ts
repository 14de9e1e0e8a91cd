// The SGLang router (PyPI `smg`, formerly `sglang-router`): versions, policies, install, launch,
// public paths, workers. What differs between its generations is in generations.ts.
import type * as pulumi from "@pulumi/pulumi";
import { searchableDirs } from "../../host-script/steps";
import { gatewayPaths, routerInstallDir, routerPaths, routerReconcilePaths, unitFile } from "../../naming";
import { render, shellQuote, templateFile } from "../../templates";
import type { Router, RouterLaunch, RouterLaunchOptions, RouterReconcileOptions, RouterSettings, RouterWorkerArgs } from "../types";
import { generationOf, generations, smg1, supportedVersions, type SglangGeneration } from "./generations";
import { sglangWorkersDir, sglangWorkersLock } from "./paths";
import { registrationBody, SglangRouterWorker } from "./worker";

function generation(version: string): SglangGeneration {
    const found = generationOf(version);
    if (!found) {
        throw new Error(`sglang router version ${version} is not one of ${supportedVersions()}`);
    }
    return found;
}

/** One virtualenv per package and pinned version, so an upgrade installs beside the running one. */
export function sglangVenv(version: string): string {
    return routerInstallDir(generation(version).packageName, version);
}

/** The command line of one service's router; it binds only to the gateway's loopback. */
export function sglangRouterCommand(options: RouterLaunchOptions): string[] {
    return [
        `${sglangVenv(options.version)}/bin/python`,
        "-m",
        generation(options.version).launchModule,
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
        ...(options.pd ? ["--pd-disaggregation", "--prefill-policy", options.pd.prefillPolicy, "--decode-policy", options.pd.decodePolicy] : []),
        "--log-dir",
        routerPaths(options.service, options.instance).logDir,
        // Aligned with our readiness wait: a registration we gave up on also ends in the router.
        "--worker-startup-timeout-secs",
        String(options.workerStartupTimeoutSeconds),
        // Notice a dead replica in about half a minute instead of three (default 60 s interval).
        "--health-check-interval-secs",
        "10",
        ...generation(options.version).extraFlags,
    ];
}

/** How often the reconcile beside the routers looks for workers they dropped: a forgotten replica serves again within this of being healthy. */
export const reconcileIntervalSeconds = 5;

/** The reconcile of one service: adds back each worker recorded in `workersDir` that a router does not list, once healthy. */
export function sglangReconcileScript(options: {
    service: string;
    routerPorts: number[];
    workersDir: string;
    pausedWhile: string;
    intervalSeconds: number;
}): string {
    return render("scripts/sglang-router-reconcile.sh.njk", {
        service: options.service,
        routerUrls: options.routerPorts.map((port) => `http://127.0.0.1:${port}`),
        workersDir: options.workersDir,
        lockFile: sglangWorkersLock(options.workersDir),
        pausedWhile: options.pausedWhile,
        intervalSeconds: options.intervalSeconds,
    });
}

export const sglangRouter: Router = {
    type: "sglang",
    defaultVersion: smg1.versions[0],
    defaultPolicy: "cache_aware",
    addsWorkersAtRuntime: true,

    versionProblem(version) {
        return generationOf(version) ? undefined : `expected a version this library installs with a pinned closure: ${supportedVersions()}`;
    },

    policyProblem(policy, version, role) {
        const { packageName, policies: regular, refusedPolicies, pd } = generation(version);
        const policies = role === "prefill" ? [...regular, ...(pd?.prefillOnlyPolicies ?? [])] : regular;
        // Exits at start with "Power-of-two policy requires at least 2 workers", and a service's
        // router starts before its replicas register (and again after every restart with fewer).
        const refused = refusedPolicies[policy];
        if (refused) {
            return `${refused} (${policies.join(", ")})`;
        }
        const onlyPrefill = role !== "prefill" && pd?.prefillOnlyPolicies.includes(policy) ? `; ${policy} is for the prefill role only` : "";
        return policies.includes(policy) ? undefined : `expected one of ${policies.join(", ")} (${packageName} ${version})${onlyPrefill}`;
    },

    pdProblem(version) {
        const { packageName, pd } = generation(version);
        return pd
            ? undefined
            : `${packageName} ${version} cannot add prefill and decode workers at runtime (this library's PD services need that); use the router's version ${smg1.versions[0]} (smg)`;
    },
    pdNoWorkerAnswer: (version) => generation(version).pd?.noWorkerAnswer,

    // Every generation's: during an upgrade or a downgrade the old router still answers after the new block is in place.
    internalResponseHeaders: () => [...new Set(generations.flatMap((g) => g.internalResponseHeaders))],
    noWorkerAnswer: (version) => generation(version).noWorkerAnswer,

    // The inference API only: smg serves control-plane and storage routes under /v1/ too
    // (/v1/tokenizers, /v1/responses/{id}, /v1/conversations), which must not be public.
    inferencePaths: {
        exact: ["/generate", "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank", "/v1/responses", "/v1/models"],
        prefix: ["/v1/models/"],
    },

    install(settings: RouterSettings) {
        const { packageName, importName } = generation(settings.version);
        const requirement = `${packageName}==${settings.version}`;
        const venv = sglangVenv(settings.version);
        const command = render("scripts/venv-install.sh.njk", {
            comment: [
                "Install the pinned SGLang router into its own virtualenv (idempotent: an existing install of the same version is kept).",
                "The router runs as an unprivileged user: the install is readable by all, whatever root's umask.",
            ],
            venv,
            importName,
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
        const paths = routerPaths(options.service, options.instance);
        const workersDir = sglangWorkersDir(options.service);
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
                        workersDir,
                        command,
                        workerUrlsFlag: "--worker-urls",
                        pd: Boolean(options.pd),
                    }),
                },
                {
                    path: unitFile(paths.unit),
                    mode: "0644",
                    content: render("systemd/router.service.njk", {
                        routerName: "sglang",
                        service: options.service,
                        startScript: paths.startScript,
                        user: options.user,
                        logsDirectory: paths.logsDirectory,
                        environment: Object.entries(generation(options.version).environment).map(([k, v]) => `${k}=${v}`),
                    }),
                },
            ],
            // systemd creates the log directory (LogsDirectory=); the workers directory is root's, read by the router.
            prepare: [searchableDirs(options.user, [...paths.searchableDirs, workersDir])],
            waitReady: [
                render("scripts/wait-http.sh.njk", {
                    url: `http://127.0.0.1:${options.port}/health`,
                    seconds: 60,
                    what: `the sglang router of ${options.service}`,
                    unit: paths.unit,
                    journalLines: 30,
                }),
                ...(generation(options.version).removesUnusedInstalls
                    ? [
                          render("scripts/router-installs-cleanup.sh.njk", {
                              installsDir: gatewayPaths.routerInstallsDir,
                              startScripts: routerPaths("*").startScript,
                          }),
                      ]
                    : []),
            ],
            // The workers directory is the service's, shared by its router processes: it goes with the first.
            statePaths: (options.instance ?? 1) === 1 ? [workersDir, paths.logDir] : [paths.logDir],
            // Its start script's directory and the workers directory's parent: a removed service leaves no empty directory.
            emptyDirs: paths.ownDirs,
            // `--log-dir`: a plain copy of the journal's lines (one file a day); each request's two lines carry its `request_id`.
            logDir: paths.logDir,
            // `--prometheus-host 127.0.0.1 --prometheus-port`: both generations serve the text format at /metrics.
            metricsUrl: `http://127.0.0.1:${options.metricsPort}/metrics`,
        };
    },

    rolloutScripts(worker) {
        const common = { routerPorts: worker.routerPorts, workerUrl: worker.workerUrl, label: worker.label };
        return {
            leave: render("scripts/sglang-worker-leave.sh.njk", { ...common, drainSeconds: 600, graceSeconds: 10 }),
            join: render("scripts/sglang-worker-join.sh.njk", {
                ...common,
                workerType: worker.role ?? "regular",
                readinessTimeoutSeconds: worker.readinessTimeoutSeconds,
                registration: JSON.stringify(
                    registrationBody({ workerUrl: worker.workerUrl, workerType: worker.role ?? "regular", bootstrapPort: worker.bootstrapPort }),
                ),
            }),
        };
    },

    // The same text for both generations (their /workers API agrees), so an upgrade leaves it as it is.
    reconcile(options: RouterReconcileOptions) {
        const paths = routerReconcilePaths(options.service);
        const routerUnits = options.routerPorts.map((_, i) => routerPaths(options.service, i === 0 ? 1 : 2).unit);
        return {
            unitName: paths.unit,
            files: [
                {
                    path: paths.script,
                    mode: "0755",
                    content: sglangReconcileScript({ ...options, workersDir: sglangWorkersDir(options.service), intervalSeconds: reconcileIntervalSeconds }),
                },
                {
                    path: unitFile(paths.unit),
                    mode: "0644",
                    content: render("systemd/router-reconcile.service.njk", {
                        routerName: "sglang",
                        service: options.service,
                        routerUnits,
                        script: paths.script,
                    }),
                },
            ],
        };
    },

    worker(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions) {
        return new SglangRouterWorker(name, args, opts);
    },
};
