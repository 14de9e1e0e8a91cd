// Checks across fields, run after the shape parsed (schema.ts): key sources, router versions and
// policies, backend placement, tokens, service names and port slots. Each returns problems with paths.
import { backendFor, backends } from "../backends";
import { portSlot, portSlots } from "../naming";
import { routerFor, type RouterSettings } from "../routers";
import { certificateProblems } from "./certificate";
import type { PathPart, Problem } from "./errors";
import { pdPortProblems, roleSettings } from "./roles";
import { replicaRoles, type GatewaySettings, type ServiceSettings, type StackConfig } from "./schema";

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
    problems.push(...certificateProblems(gateway));
    return problems;
}

/** Placement fields of other backends than the gateway's, in `fields` (a service, or one of its PD roles). */
function foreignPlacementProblems(fields: Record<string, unknown>, backend: string): Problem[] {
    const own = backendFor(backend);
    const problems: Problem[] = [];
    for (const [name, other] of Object.entries(backends)) {
        for (const key of Object.keys(other.placementFields)) {
            if (name !== backend && !(key in own.placementFields) && fields[key] !== undefined) {
                problems.push({ path: [key], message: `${key} is a setting of the ${name} backend, and this gateway's backend is ${backend}` });
            }
        }
    }
    return problems;
}

/** A PD service: a router that can run it, policies each role can run, placement and ports per role. */
function pdProblems(service: ServiceSettings, gateway: Pick<GatewaySettings, "backend" | "router">): Problem[] {
    if (!service.pd) {
        return [];
    }
    if (!gateway.router) {
        return [{ path: ["pd"], message: "prefill/decode disaggregation needs a router on the gateway (gateway.router)" }];
    }
    const router = routerFor(gateway.router.type);
    const pdProblem = router.pdProblem(gateway.router.version);
    if (pdProblem) {
        return [{ path: ["pd"], message: pdProblem }];
    }
    const backend = backendFor(gateway.backend);
    const problems: Problem[] = [];
    for (const role of replicaRoles) {
        const own = service.pd[role];
        const policy = own.policy ?? service.router?.policy ?? gateway.router.policy;
        const policyProblem = router.policyProblem(policy, gateway.router.version, role);
        if (policyProblem) {
            const path =
                own.policy !== undefined ? ["pd", role, "policy"] : service.router?.policy !== undefined ? ["router", "policy"] : ["pd", role, "policy"];
            problems.push({ path, message: `for the ${role} role: ${policyProblem}` });
        }
        problems.push(...at(["pd", role], foreignPlacementProblems(own as Record<string, unknown>, gateway.backend)));
        problems.push(...at(["pd", role], backend.placementProblems(roleSettings(service, role) as unknown as ServiceSettings & Record<string, never>)));
    }
    const placedOn = backend.placedOn?.bind(backend) as ((p: Record<string, unknown>, i: number) => { key: string; offset: number } | undefined) | undefined;
    problems.push(...pdPortProblems(service, placedOn ?? (() => undefined)));
    return problems;
}

/** One service on a gateway: its backend's placement fields only, a router for a policy override, a policy it can run. */
export function serviceProblems(service: ServiceSettings, gateway: Pick<GatewaySettings, "backend" | "router">): Problem[] {
    const problems = keySourceProblems(service);
    const own = backendFor(gateway.backend);
    problems.push(...foreignPlacementProblems(service as Record<string, unknown>, gateway.backend));
    problems.push(...own.placementProblems(service as ServiceSettings & Record<string, never>));
    problems.push(...pdProblems(service, gateway));
    if (service.router && !gateway.router) {
        problems.push({ path: ["router"], message: "a router policy override needs a router on the gateway (gateway.router)" });
    } else if (service.router?.policy !== undefined && gateway.router) {
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

/** The model endpoint and a service would share a host name (`<name>.<domain>`). */
export function endpointNameProblem(endpointName: string, service: string): Problem {
    return {
        path: ["name"],
        message: `'${service}' is also the name of the gateway's model endpoint (gateway.endpoint.name): the endpoint and each service need a host name of their own; rename one`,
    };
}

/** Two services behind the model endpoint with one model: a request naming it could go to either. */
export function endpointModelProblem(model: string, takenBy: string): Problem {
    return {
        path: ["model"],
        message: `'${model}' is also the model of ${takenBy}; the model endpoint (gateway.endpoint) routes a request by its model, so each service needs a model of its own (SGLang's --served-model-name gives one)`,
    };
}

/** With a model endpoint: no service takes its name, and no two services serve one model. */
function endpointProblems(stack: StackConfig): Problem[] {
    const endpoint = stack.gateway.endpoint;
    if (!endpoint) {
        return [];
    }
    const problems: Problem[] = [];
    const models = new Map<string, number>();
    stack.services.forEach((s, i) => {
        if (s.name === endpoint.name) {
            problems.push(...at(["services", i], [endpointNameProblem(endpoint.name, s.name)]));
        }
        const first = models.get(s.model);
        if (first !== undefined) {
            problems.push(...at(["services", i], [endpointModelProblem(s.model, `services[${first}] ${stack.services[first].name}`)]));
        } else {
            models.set(s.model, i);
        }
    });
    return problems;
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
    problems.push(...endpointProblems(stack));
    for (const name of Object.keys(stack.tokens)) {
        if (!names.has(name)) {
            problems.push({ path: ["tokens", name], message: `tokens for '${name}', but no service has that name` });
        }
    }
    return problems;
}
