// The stack program: gateway and services from stack config (see README, "Configuration").
import * as pulumi from "@pulumi/pulumi";
import { buildStack, ConfigError, readStackConfig } from "./components";

function build() {
    try {
        return buildStack(readStackConfig());
    } catch (err) {
        // A config mistake is the user's to fix: show the problems, not a stack trace.
        throw err instanceof ConfigError ? new pulumi.RunError(err.message) : err;
    }
}

const { gateway, services } = build();

export const address = gateway.address;
export const domain = gateway.domain;
export const routerPackage = gateway.routerPackage;
export const endpoints = pulumi.all(Object.fromEntries(services.map((s) => [s.serviceName, s.url])));
