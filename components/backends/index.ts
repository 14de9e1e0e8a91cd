// The host backends, by the name used in config (`backend: aws`). A new backend: its file, and one line here.
import { awsBackend, type AwsGatewayArgs, type AwsPlacementArgs } from "./aws";
import { sshBackend, type SshGatewayArgs, type SshHostArgs, type SshPlacementArgs } from "./ssh";
import type { Backend } from "./types";

export type { Backend, GatewayHost, GatewayHostSettings, ReplicaHost, ReplicaReach } from "./types";
export type { AwsGatewayArgs, AwsPlacementArgs, SshGatewayArgs, SshHostArgs, SshPlacementArgs };

export const backends = { aws: awsBackend, ssh: sshBackend };

type Backends = typeof backends;
type GatewayArgsOf<B> = B extends Backend<infer G, object> ? G : never;
type PlacementArgsOf<B> = B extends Backend<object, infer P> ? P : never;
type Intersect<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

export type BackendName = keyof Backends;
/** The gateway's backend fields: `{backend: "aws", ...}` or `{backend: "ssh", ...}`. */
export type BackendGatewayArgs = { [K in BackendName]: { backend: K } & GatewayArgsOf<Backends[K]> }[BackendName];
/** Every backend's fields on a service; only the gateway's backend's may be set. */
export type BackendPlacementArgs = Intersect<{ [K in BackendName]: PlacementArgsOf<Backends[K]> }[BackendName]>;

export function backendFor(name: string): Backend {
    const backend = (backends as Record<string, Backend>)[name];
    if (!backend) {
        throw new Error(`unknown backend '${name}'; known: ${Object.keys(backends).join(", ")}`);
    }
    return backend;
}
