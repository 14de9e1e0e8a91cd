// What the benchmark deploys and where each hop of the data path is reached from.
import { bridgePort, portSlot, replicaPaths, servicePorts } from "../components/naming";
import { serviceHost, token } from "../test/helpers/gateway-client";
import type { SandboxHost } from "../test/helpers/sandbox";
import { sandboxStack } from "../test/helpers/sandbox-stacks";
import type { LoadSpec } from "./loadgen";

export const service = "chat";
export const modelServerPort = 8000;

/**
 * The e2e suites' stack (gateway on gw, the fake worker on r1 and r2, smg round_robin), with a fake worker
 * that answers at once and logs nothing: the data path, not the worker's pacing or journald, is measured.
 * Streams set the pace at run time (`POST /_fake/state`).
 */
export function benchStack(replicas: number) {
    const stack = sandboxStack({ gateway: "bench", replicas });
    const command =
        'exec /usr/bin/node /opt/sglang-gateway-fixtures/fake-worker.js --host 127.0.0.1 --port "$PORT" --name "$(hostname)-replica-$REPLICA_INDEX" ' +
        '--model "$MODEL" --tokens-per-second 0 --quiet';
    return { ...stack, services: stack.services.map((s) => ({ ...s, commands: [command] })) };
}

export type HopName = "direct" | "tunnel" | "bridge" | "router" | "gateway";

export interface Hop {
    name: HopName;
    label: string;
    /** Where the load generator runs: the hop is reachable there. */
    from: SandboxHost;
    target: Pick<LoadSpec, "host" | "port" | "socketPath" | "headers">;
}

/** The data path to replica 0 (on r1), one hop added at a time. */
export function hops(): Hop[] {
    const slot = portSlot(service);
    return [
        { name: "direct", label: "model server, direct on its host", from: "r1", target: { host: "127.0.0.1", port: modelServerPort, headers: {} } },
        {
            name: "tunnel",
            label: "+ SSH tunnel (its unix socket on the gateway)",
            from: "gw",
            target: { socketPath: replicaPaths(service, 0).socket, headers: {} },
        },
        { name: "bridge", label: "+ nginx bridge (127.0.0.1:bridgePort)", from: "gw", target: { host: "127.0.0.1", port: bridgePort(slot, 0), headers: {} } },
        {
            name: "router",
            label: "+ router smg (127.0.0.1:routerPort)",
            from: "gw",
            target: { host: "127.0.0.1", port: servicePorts(slot).routerPort, headers: {} },
        },
        {
            name: "gateway",
            label: "+ public listener (the whole gateway)",
            from: "gw",
            target: { host: "127.0.0.1", port: 80, headers: { host: serviceHost, authorization: `Bearer ${token}` } },
        },
    ];
}

/** A small chat completion (4 tokens), or a stream of `tokens` tokens. */
export function chatBody(stream?: { tokens: number }): string {
    return JSON.stringify({
        model: "fake-model",
        messages: [{ role: "user", content: "hello" }],
        max_tokens: stream?.tokens ?? 4,
        ...(stream ? { stream: true, ignore_eos: true } : {}),
    });
}
