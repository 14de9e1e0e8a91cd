// The e2e suites' stack config: a gateway on the sandbox's gw host and a `chat` service of fake
// workers on r1 and r2, with the router (its version) or without one (a plain gateway).
import { fakeWorkerCommand, token } from "./gateway-client";
import { sandboxState } from "./sandbox";

export interface SandboxStackOptions {
    /** The gateway's name (each suite its own). */
    gateway: string;
    replicas: number;
    /** "none" for a plain gateway; else the router version (undefined: the router's default). */
    router?: "none" | { version?: string };
}

export function sandboxStack(options: SandboxStackOptions) {
    const state = sandboxState();
    const router = options.router ?? {};
    return {
        gateway: {
            type: "gateway",
            name: options.gateway,
            backend: "ssh",
            host: state.hosts.gw.address,
            privateKeyPath: state.privateKeyPath,
            domain: "sandbox.test",
            ...(router === "none"
                ? {}
                : { router: { type: "sglang", policy: "round_robin", indexUrl: state.indexUrl, ...(router.version ? { version: router.version } : {}) } }),
        },
        services: [
            {
                type: "service",
                name: "chat",
                port: 8000,
                model: "fake-model",
                commands: [fakeWorkerCommand],
                replicas: options.replicas,
                ...(router === "none" ? {} : { readinessTimeoutSeconds: 60 }),
                hosts: [{ host: state.hosts.r1.address }, { host: state.hosts.r2.address }],
            },
        ],
        tokens: { chat: [token] },
    };
}
