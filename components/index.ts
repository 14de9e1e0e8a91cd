// The library's public surface.
export { Gateway, gatewayType, type GatewayArgs } from "./gateway";
export { Service, serviceType, type ServiceArgs, type RateLimitArgs } from "./service";
export { Replica, replicaType, type ReplicaArgs } from "./replica";
export { ModelEndpoint, modelEndpointType, type ModelEndpointArgs } from "./model-endpoint";
export type { GatewaySshAccess, RouterObservability, ServiceObservability } from "./observability";
export {
    ConfigError,
    parseStackConfig,
    parseGatewaySettings,
    parseServiceSettings,
    type StackConfig,
    type GatewayConfig,
    type GatewaySettings,
    type ServiceConfig,
    type ServiceSettings,
    type ServiceSettingsArgs,
    type RouterArgs,
    type TlsArgs,
    isPublicDomain,
    type AcmeArgs,
    type CertificateArgs,
    type CertificateSource,
    type EndpointArgs,
} from "./config";
export { maxReplicas, portSlots } from "./naming";
export type { AwsGatewayArgs, AwsPlacementArgs, Backend, SshGatewayArgs, SshHostArgs, SshPlacementArgs } from "./backends";
export type { SshConnection } from "./host-script";
export { registerRouter, routerFor, type Router, type RouterSettings } from "./routers";
export { sglangWorkerProvider, SglangRouterWorker } from "./routers/sglang/worker";
export { buildStack, readStackConfig } from "./stack";
/** @deprecated The name of `buildStack` before 0.2: kept so embedding programs keep working. */
export { buildStack as fromStackConfig } from "./stack";
