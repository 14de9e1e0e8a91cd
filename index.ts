// The stack program: gateway and services from stack config (see README, "Configuration").
import * as pulumi from "@pulumi/pulumi";
import { buildStack, readStackConfig } from "./components";

// A config mistake throws a ConfigError (a RunError): pulumi shows the problems, not a stack trace.
const { gateway, services, endpoint } = buildStack(readStackConfig());

export const address = gateway.address;
export const domain = gateway.domain;
export const routerPackage = gateway.routerPackage;
export const endpoints = pulumi.all(Object.fromEntries(services.map((s) => [s.serviceName, s.url])));
/** The model endpoint's URL (`gateway.endpoint`); undefined, so not exported, without one. */
export const modelEndpoint = endpoint?.url;
// For operators, never clients: where each service's logs and metrics are on the gateway, and how to reach it
// over SSH (`npm run gateway -- logs|metrics <service>` reads these two).
export const observability = {
    gateway: gateway.sshAccess,
    services: Object.fromEntries(services.map((s) => [s.serviceName, s.observability])),
};
export const gatewaySshKey = gateway.privateKey;
