// The SGLang router's two generations, as measured on their wheels (docs/router-smg-1.md,
// docs/router-0.3.2.md): the package, how it launches, what it offers, and what it answers.
import type { NoWorkerAnswer } from "../types";

export interface SglangGeneration {
    /** For messages: `smg` or `sglang-router`. */
    readonly packageName: string;
    /** Exact versions this library installs: each with a pinned dependency closure in templates/routers/. */
    readonly versions: readonly string[];
    /** `python -m <launchModule>` starts the router. */
    readonly launchModule: string;
    /** Importable once the venv holds the router: the install check. */
    readonly importName: string;
    /** The process title the router sets (`/proc/<pid>/comm`). */
    readonly processTitle: string;
    /** Policies that start with no workers and route to workers added at runtime. */
    readonly policies: readonly string[];
    /** Policies the router offers but refuses to start with fewer than 2 workers, and why that rules them out. */
    readonly refusedPolicies: Readonly<Record<string, string>>;
    /** Flags beside the common ones. */
    readonly extraFlags: readonly string[];
    /** The router unit's environment (none: the unit has no `Environment=` line). */
    readonly environment: Readonly<Record<string, string>>;
    /** Response headers that carry router internals (worker addresses, error codes): the gateway strips them. */
    readonly internalResponseHeaders: readonly string[];
    /** How the router answers a request when it has no worker for the model: the gateway turns it into its 503. */
    readonly noWorkerAnswer?: NoWorkerAnswer;
    /**
     * After a router restarts on this version, installs no router uses any more go (an upgrade's old venv).
     * Off for 0.3.x: stacks that pinned it keep byte-identical start scripts (an upgrade changing nothing else restarts nothing).
     * A downgrade to 0.3.x therefore leaves the smg install behind, and destroy does not remove it.
     */
    readonly removesUnusedInstalls: boolean;
    /** PD disaggregation with workers added at runtime: policies only a role offers, and the answer when a role has no worker. */
    readonly pd?: { prefillOnlyPolicies: readonly string[]; noWorkerAnswer: NoWorkerAnswer };
}

const refusedAtStart = (pkg: string) =>
    `${pkg} refuses to start power_of_two with fewer than 2 workers, and a service's router starts before its replicas register; use another policy`;

/** `smg`, the router's package since 2026: the default. */
export const smg1: SglangGeneration = {
    packageName: "smg",
    versions: ["1.13.0"],
    launchModule: "smg.launch_router",
    // `import smg` succeeds without the router's own dependencies; this loads the Rust extension.
    importName: "smg.launch_router",
    processTitle: "smg::router",
    // passthrough and manual start, but route by a client-given key rather than balance: not offered.
    policies: ["cache_aware", "round_robin", "random", "least_load", "prefix_hash", "consistent_hashing"],
    refusedPolicies: { power_of_two: refusedAtStart("smg") },
    // An unreachable worker is retried every 30 s by default: 1 s makes the readiness timeout mean what it says.
    // `--log-json`: one JSON object a line (no ANSI codes, which the plain format puts around field names even in
    // its file), like the service's nginx access log.
    extraFlags: ["--worker-startup-check-interval", "1", "--log-json"],
    // One line per request, not two: `finished processing request` (target smg::response) carries the request id,
    // status and latency; `started processing request` (smg::request) only the id. Measured (BENCHMARKS.md): the
    // router spends about a tenth less CPU per request, and writes 580 bytes a request instead of 894. RUST_LOG
    // replaces the level filter (`--log-level` info), so the rest of info stays.
    environment: { RUST_LOG: "info,smg::request=warn" },
    internalResponseHeaders: ["x-smg-routed-worker-id", "x-smg-error-code"],
    noWorkerAnswer: { status: 404, header: "x-smg-error-code", value: "model_not_found" },
    removesUnusedInstalls: true,
    // `bucket` is offered for prefill only (--prefill-policy); a PD router without prefill or decode answers 503.
    pd: { prefillOnlyPolicies: ["bucket"], noWorkerAnswer: { status: 503, header: "x-smg-error-code", value: "no_available_workers" } },
};

/** `sglang-router` 0.3.x, the last releases under the old name: for stacks that pinned it. */
export const sglangRouter03: SglangGeneration = {
    packageName: "sglang-router",
    versions: ["0.3.2"],
    launchModule: "sglang_router.launch_router",
    importName: "sglang_router",
    processTitle: "sglang::router",
    policies: ["cache_aware", "round_robin", "random"],
    refusedPolicies: { power_of_two: refusedAtStart("sglang-router 0.3.2") },
    extraFlags: [],
    environment: {},
    internalResponseHeaders: [],
    removesUnusedInstalls: false,
};

export const generations = [smg1, sglangRouter03];

export function generationOf(version: string): SglangGeneration | undefined {
    return generations.find((g) => g.versions.includes(version));
}

/** `1.13.0 (smg), 0.3.2 (sglang-router)`: what a version error lists. */
export function supportedVersions(): string {
    return generations.flatMap((g) => g.versions.map((v) => `${v} (${g.packageName})`)).join(", ");
}
