// Checks across fields, run after the shape parsed (schema.ts): key sources, router versions and
// policies, backend placement, tokens, service names and port slots. Each returns problems with paths.
import { backendFor, backends } from "../backends";
import { portSlot, portSlots } from "../naming";
import { routerFor, type RouterSettings } from "../routers";
import type { PathPart, Problem } from "./errors";
import type { GatewaySettings, ServiceSettings, StackConfig } from "./schema";

const at = (prefix: PathPart[], problems: Problem[]): Problem[] => problems.map((p) => ({ ...p, path: [...prefix, ...p.path] }));

/** Every object in the tree that names an SSH key: privateKey or privateKeyPath, not both. */
function keySourceProblems(value: unknown, path: PathPart[] = []): Problem[] {
    if (value === null || typeof value !== "object" || (value as { __pulumiOutput?: boolean }).__pulumiOutput) {
        return [];
    }
    const record = value as Record<string, unknown>;
    const own: Problem[] =
        record.privateKey !== undefined && record.privateKeyPath !== undefined
            ? [{ path: [...path, "privateKeyPath"], message: "give privateKey or privateKeyPath, not both" }]
            : [];
    return [...own, ...Object.entries(record).flatMap(([key, child]) => keySourceProblems(child, [...path, Array.isArray(record) ? Number(key) : key]))];
}

function routerProblems(router: RouterSettings, policy: string, policyPath: PathPart[]): Problem[] {
    const implementation = routerFor(router.type);
    const versionProblem = implementation.versionProblem(router.version);
    if (versionProblem) {
        return [{ path: ["router", "version"], message: versionProblem }];
    }
    const policyProblem = implementation.policyProblem(policy, router.version);
    return policyProblem ? [{ path: policyPath, message: policyProblem }] : [];
}

/** The gateway's own settings: a key to reach it, a router that can run as configured. */
export function gatewayProblems(gateway: GatewaySettings): Problem[] {
    const problems = keySourceProblems(gateway);
    if (gateway.privateKey === undefined && gateway.privateKeyPath === undefined) {
        problems.push({
            path: ["privateKey"],
            message: "required: an SSH private key (`pulumi config set --secret --path gateway.privateKey < key`) or privateKeyPath",
        });
    }
    problems.push(...(backendFor(gateway.backend).gatewayProblems?.(gateway as GatewaySettings & Record<string, never>) ?? []));
    if (gateway.router) {
        problems.push(...routerProblems(gateway.router, gateway.router.policy, ["router", "policy"]));
    }
    return problems;
}

/** One service on a gateway: its backend's placement fields only, a router for a policy override, a policy it can run. */
export function serviceProblems(service: ServiceSettings, gateway: Pick<GatewaySettings, "backend" | "router">): Problem[] {
    const problems = keySourceProblems(service);
    const own = backendFor(gateway.backend);
    for (const [name, backend] of Object.entries(backends)) {
        for (const key of Object.keys(backend.placementFields)) {
            if (name !== gateway.backend && !(key in own.placementFields) && (service as Record<string, unknown>)[key] !== undefined) {
                problems.push({ path: [key], message: `${key} is a setting of the ${name} backend, and this gateway's backend is ${gateway.backend}` });
            }
        }
    }
    problems.push(...own.placementProblems(service as ServiceSettings & Record<string, never>));
    if (service.router && !gateway.router) {
        problems.push({ path: ["router"], message: "a router policy override needs a router on the gateway (gateway.router)" });
    } else if (service.router && gateway.router) {
        problems.push(...routerProblems(gateway.router, service.router.policy, ["router", "policy"]).filter((p) => p.path[1] === "policy"));
    }
    return problems;
}

/** Two services on one gateway must not share a port slot (router and bridge ports). */
export function portSlotProblem(service: { name: string; portSlot?: number }, takenBy: string): Problem {
    return {
        path: ["portSlot"],
        message: `'${service.name}' gets port slot ${portSlot(service.name, service.portSlot)}, already taken by '${takenBy}'; set portSlot to a free slot from 0 to ${portSlots - 1}`,
    };
}

/** The whole stack: each part's checks at its path, and what only the whole shows (names, tokens, slots). */
export function stackProblems(stack: StackConfig): Problem[] {
    const problems = at(["gateway"], gatewayProblems(stack.gateway));
    const names = new Map<string, number>();
    const slots = new Map<number, number>();
    stack.services.forEach((s, i) => {
        problems.push(...at(["services", i], serviceProblems(s, stack.gateway)));
        const first = names.get(s.name);
        if (first !== undefined) {
            problems.push({ path: ["services", i, "name"], message: `duplicate service name: services[${first}] is already called '${s.name}'` });
        } else {
            names.set(s.name, i);
            const slot = portSlot(s.name, s.portSlot);
            const owner = slots.get(slot);
            if (owner !== undefined) {
                problems.push(...at(["services", i], [portSlotProblem(s, `services[${owner}] ${stack.services[owner].name}`)]));
            } else {
                slots.set(slot, i);
            }
        }
        if (s.auth && !stack.tokens[s.name]) {
            problems.push({
                path: ["tokens", s.name],
                message: `services[${i}] has auth on but no token: set one with \`pulumi config set --secret --path 'tokens.${s.name}[0]' <token>\`, or set auth: false`,
            });
        }
    });
    for (const name of Object.keys(stack.tokens)) {
        if (!names.has(name)) {
            problems.push({ path: ["tokens", name], message: `tokens for '${name}', but no service has that name` });
        }
    }
    return problems;
}
