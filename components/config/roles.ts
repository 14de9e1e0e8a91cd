// A PD service's roles as plain service settings: what a Replica of that role runs and where, and the
// ports its replicas take on each host (checked for collisions before anything is created).
import type { Problem } from "./errors";
import type { PdRoleSettings, ReplicaRole, ServiceSettings } from "./schema";

/** Settings of one role's replicas: the role's own fields over the service's, `replicas` the role's count. */
export type RoleSettings = ServiceSettings & {
    role: ReplicaRole;
    /** The role's own environment, added over the service's when resolved. */
    roleEnv?: PdRoleSettings["env"];
    /** Prefill only: the bootstrap port of its first replica on a host (the next ones get +1, +2, ...). */
    bootstrapPort?: number;
};

/** The role's settings; `pd` must be set. */
export function roleSettings(service: ServiceSettings, role: ReplicaRole): RoleSettings {
    if (!service.pd) {
        throw new Error(`roleSettings: service has no pd settings`);
    }
    const own: PdRoleSettings & { bootstrapPort?: number } = service.pd[role];
    const { replicas, env, policy: _policy, bootstrapPort, ...overrides } = own;
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
    return { ...service, ...defined, pd: undefined, replicas, role, roleEnv: env, ...(bootstrapPort === undefined ? {} : { bootstrapPort }) };
}

/** Where a role's replica `index` runs, as far as config tells: a host key shared with others, or undefined (a host of its own). */
export type HostKeyOf = (placement: Record<string, unknown>, index: number) => { key: string; offset: number } | undefined;

interface PortUse {
    what: string;
    path: (string | number)[];
}

/**
 * Every port the PD service's model servers take, per host: serving ports of both roles and the prefills'
 * bootstrap ports. Two uses of one port on one host is a problem at the field that chose the second.
 */
export function pdPortProblems(service: ServiceSettings, hostKeyOf: HostKeyOf): Problem[] {
    if (!service.pd) {
        return [];
    }
    const problems: Problem[] = [];
    const taken = new Map<string, PortUse>();
    const take = (host: string, port: number, use: PortUse) => {
        const key = `${host}\u0000${port}`;
        const first = taken.get(key);
        if (first) {
            const where = host.startsWith("own:") ? "on its host" : `on host ${host}`;
            // The bootstrap port is the one to move when it meets a serving port.
            const bootstrap = [use, first].find((u) => u.what.startsWith("bootstrap"));
            problems.push({
                path: (bootstrap ?? use).path,
                message: `the ${use.what} (${port}) is the ${first.what} ${where}; give them different ports (pd.prefill.port, pd.decode.port, pd.prefill.bootstrapPort) or different hosts`,
            });
        } else {
            taken.set(key, use);
        }
    };
    for (const role of ["prefill", "decode"] as const) {
        const settings = roleSettings(service, role);
        const portPath = service.pd[role].port === undefined ? ["port"] : ["pd", role, "port"];
        for (let index = 0; index < settings.replicas; index++) {
            const placed = hostKeyOf(settings as unknown as Record<string, unknown>, index);
            // A host of its own still holds both ports of a prefill.
            const host = placed ? placed.key : `own:${role}:${index}`;
            const offset = placed?.offset ?? 0;
            take(host, settings.port + offset, { what: `serving port of ${role} replica ${index}`, path: portPath });
            if (settings.bootstrapPort !== undefined) {
                take(host, settings.bootstrapPort + offset, { what: `bootstrap port of prefill replica ${index}`, path: ["pd", "prefill", "bootstrapPort"] });
            }
        }
    }
    // One problem per field is enough to say what to change.
    return problems.filter((p, i) => problems.findIndex((q) => q.path.join(".") === p.path.join(".")) === i);
}
