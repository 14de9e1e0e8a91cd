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

/** The fake worker as a PD role: a prefill listens on r1's network (the router and decodes reach it there), a decode on r2's loopback. */
const pdFakeWorker = (host: string) =>
    `exec /usr/bin/node /opt/sglang-gateway-fixtures/fake-worker.js --host ${host} --port "$PORT" --name "$(hostname)-$ROLE-$REPLICA_INDEX" --model "$MODEL" ` +
    `--disaggregation-mode "$ROLE" --disaggregation-bootstrap-port "\${BOOTSTRAP_PORT:-8998}" --tokens-per-second 20`;

/** A `chat` service with PD roles: prefills on r1, decodes on r2, with the default router (smg). */
export function pdSandboxStack(options: { gateway: string; prefill: number; decode: number }) {
    const base = sandboxStack({ gateway: options.gateway, replicas: 0 });
    const state = sandboxState();
    const { replicas: _replicas, hosts: _hosts, commands: _commands, ...service } = base.services[0];
    return {
        ...base,
        services: [
            {
                ...service,
                pd: {
                    prefill: {
                        replicas: options.prefill,
                        bootstrapPort: 9000,
                        commands: [pdFakeWorker("0.0.0.0")],
                        hosts: [{ host: state.hosts.r1.address }],
                    },
                    decode: { replicas: options.decode, commands: [pdFakeWorker("127.0.0.1")], hosts: [{ host: state.hosts.r2.address }] },
                },
            },
        ],
    };
}
