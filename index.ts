// The stack program: gateway and services from stack config (see README, "Configuration").
import * as pulumi from "@pulumi/pulumi";
import { fromStackConfig } from "./components";
import { readStackConfig } from "./components/stack";

const { gateway, services } = fromStackConfig(readStackConfig());

export const address = gateway.address;
export const domain = gateway.domain;
export const routerPackage = gateway.routerPackage;
export const endpoints = pulumi.all(Object.fromEntries(services.map((s) => [s.serviceName, s.url])));
