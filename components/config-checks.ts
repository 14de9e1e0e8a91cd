// Checks across the whole stack config: key sources, service names, tokens, hosts, router overrides.
import { z } from "zod";
import type { GatewayConfig, ServiceConfig } from "./config";

function checkKeySource(where: (string | number)[], holder: { privateKey?: string; privateKeyPath?: string }, required: boolean, ctx: z.RefinementCtx): void {
    if (holder.privateKey && holder.privateKeyPath) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...where, "privateKeyPath"], message: "give privateKey or privateKeyPath, not both" });
    } else if (required && !holder.privateKey && !holder.privateKeyPath) {
        ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [...where, "privateKey"],
            message: "required: an SSH private key (`pulumi config set --secret --path gateway.privateKey < key`) or privateKeyPath",
        });
    }
}

export function checkAcrossServices(stack: { gateway: GatewayConfig; services: ServiceConfig[]; tokens: Record<string, string[]> }, ctx: z.RefinementCtx): void {
    checkKeySource(["gateway"], stack.gateway, true, ctx);
    stack.services.forEach((s, i) => s.hosts?.forEach((h, j) => checkKeySource(["services", i, "hosts", j], h, false, ctx)));
    for (const name of Object.keys(stack.tokens)) {
        if (!stack.services.some((s) => s.name === name)) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["tokens", name], message: `tokens for '${name}', but no service has that name` });
        }
    }
    const seen = new Map<string, number>();
    stack.services.forEach((s, i) => {
        const first = seen.get(s.name);
        if (first !== undefined) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["services", i, "name"], message: `duplicate service name: services[${first}] is already called '${s.name}'` });
        } else {
            seen.set(s.name, i);
        }
        if (stack.gateway.backend === "ssh" && !s.hosts && s.replicas > 0) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["services", i, "hosts"], message: "expected a list of SSH hosts for the replicas (the gateway backend is ssh)" });
        }
        if (stack.gateway.backend === "aws" && s.hosts) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["services", i, "hosts"], message: "hosts are for the ssh backend; with backend aws set instanceType instead" });
        }
        if (s.auth && !stack.tokens[s.name]) {
            ctx.addIssue({
                code: z.ZodIssueCode.custom,
                path: ["tokens", s.name],
                message: `services[${i}] has auth on but no token: set one with \`pulumi config set --secret --path 'tokens.${s.name}[0]' <token>\`, or set auth: false`,
            });
        }
        if (s.router && !stack.gateway.router) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["services", i, "router"], message: "a router policy override needs a router on the gateway (gateway.router)" });
        }
    });
}
