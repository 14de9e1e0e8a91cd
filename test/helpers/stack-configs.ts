// Valid stack configs the unit tests start from (and break one field at a time).
import { sshKeyPair } from "./ssh-keys";

export const testKey = sshKeyPair().private;
export const testToken = "test-token-0123456789";

export function sshStack(replicas: number, overrides: { router?: unknown; service?: Record<string, unknown> } = {}) {
    return {
        gateway: {
            type: "gateway",
            name: "gw",
            domain: "example.com",
            backend: "ssh",
            host: "10.213.0.2",
            privateKey: testKey,
            ...(overrides.router === undefined ? { router: "sglang" } : overrides.router === null ? {} : { router: overrides.router }),
        },
        services: [
            {
                type: "service",
                name: "chat",
                port: 8000,
                model: "fake-model",
                commands: ["node /opt/fake-worker.js"],
                replicas,
                hosts: [{ host: "10.213.0.3" }, { host: "10.213.0.4" }],
                ...(overrides.service ?? {}),
            },
        ],
        tokens: { chat: [testToken] },
    };
}

export function awsStack(replicas: number, overrides: { gateway?: Record<string, unknown>; service?: Record<string, unknown> } = {}) {
    return {
        gateway: {
            type: "gateway",
            name: "gw",
            domain: "example.com",
            backend: "aws",
            region: "eu-west-1",
            zoneId: "Z123456",
            privateKey: testKey,
            router: { type: "sglang", policy: "cache_aware" },
            ...(overrides.gateway ?? {}),
        },
        services: [
            {
                type: "service",
                name: "chat",
                port: 8000,
                model: "m",
                image: "lmsysorg/sglang:latest",
                commands: ["python -m sglang.launch_server --port $PORT"],
                replicas,
                instanceType: "g5.xlarge",
                ...(overrides.service ?? {}),
            },
        ],
        tokens: { chat: [testToken] },
    };
}

/** A PD service on the ssh backend: prefills on 10.213.0.3, decodes on 10.213.0.4 (a role per host keeps their ports apart). */
export function pdSshStack(prefill: number, decode: number, roles: { prefill?: Record<string, unknown>; decode?: Record<string, unknown> } = {}) {
    const stack = sshStack(0);
    const { replicas: _replicas, hosts: _hosts, ...service } = stack.services[0];
    return {
        ...stack,
        services: [
            {
                ...service,
                commands: [
                    "node /opt/fake-worker.js --port $PORT --host 0.0.0.0 --disaggregation-mode $ROLE --disaggregation-bootstrap-port ${BOOTSTRAP_PORT:-0}",
                ],
                pd: {
                    prefill: { replicas: prefill, bootstrapPort: 9000, hosts: [{ host: "10.213.0.3" }], ...roles.prefill },
                    decode: { replicas: decode, hosts: [{ host: "10.213.0.4" }], ...roles.decode },
                },
            },
        ],
    };
}
