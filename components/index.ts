// The library's public surface.
export { Gateway, gatewayType, type GatewayArgs, type RouterArgs, type TlsArgs } from "./gateway";
export { Service, serviceType, type ServiceArgs, type RateLimitArgs } from "./service";
export { Replica, replicaType, type ReplicaArgs } from "./replica";
export {
    ConfigError,
    parseStackConfig,
    parseGatewayConfig,
    parseServiceConfig,
    routerPolicies,
    maxReplicas,
    type StackConfig,
    type GatewayConfig,
    type ServiceConfig,
    type RouterConfig,
    type RouterPolicy,
} from "./config";
export type { AwsBackendArgs, SshBackendArgs, BackendArgs } from "./backends";
export type { SshConnection } from "./remote";
export { sglangWorkerProvider, SglangRouterWorker } from "./routers/sglang-worker";
export { fromStackConfig } from "./stack";
