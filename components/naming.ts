// Names, ports and paths: pure functions of (service, replica index), so they never shift.
import { maxReplicas, portSlots } from "./config";

/** First port of the router admin ports, one per slot. */
export const routerPortBase = 10000;
/** First port of the router metrics (Prometheus) ports, one per slot. */
export const routerMetricsPortBase = 10300;
/** First bridge port; each slot owns `maxReplicas` consecutive ports after it (up to 31199, below the
 * Linux ephemeral range that starts at 32768, so a reload never races an outgoing connection for a port). */
export const bridgePortBase = 12000;

/** FNV-1a: stable across Node versions and machines, unlike anything seeded. */
function fnv1a(text: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
        hash ^= text.charCodeAt(i);
        hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash;
}

/** The service's port slot: from its name unless pinned with `portSlot`. */
export function portSlot(serviceName: string, pinned?: number): number {
    return pinned ?? fnv1a(serviceName) % portSlots;
}

export interface ServicePorts {
    /** Router HTTP port on the gateway's loopback: nginx's upstream and the admin API. */
    routerPort: number;
    /** Router Prometheus port on the gateway's loopback. */
    routerMetricsPort: number;
}

export function servicePorts(slot: number): ServicePorts {
    return { routerPort: routerPortBase + slot, routerMetricsPort: routerMetricsPortBase + slot };
}

/** The nginx bridge listener of replica `index` on the gateway's loopback. */
export function bridgePort(slot: number, index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= maxReplicas) {
        throw new RangeError(`replica index ${index} is outside 0..${maxReplicas - 1}`);
    }
    return bridgePortBase + slot * maxReplicas + index;
}

/** Replica `index` of replicas spread round-robin over `hostCount` hosts: the how-many-th on its host. */
export function replicaPortOffset(index: number, hostCount: number): number {
    return Math.floor(index / Math.max(hostCount, 1));
}

/** All on-host names for one service; one place so templates, scripts and tests agree. */
export function servicePaths(service: string) {
    return {
        routerLogDir: `/var/log/sglang-gateway/${service}`,
        serverBlock: `/etc/nginx/sglang-gateway/services/${service}.conf`,
        socketDir: `/run/sglang-gateway/${service}`,
    };
}

export function replicaPaths(service: string, index: number) {
    return {
        processUnit: `sglang-gateway-${service}-replica-${index}.service`,
        processDir: `/opt/sglang-gateway/${service}/replica-${index}`,
        tunnelUnit: `sglang-gateway-tunnel-${service}-${index}.service`,
        tunnelKey: `/etc/sglang-gateway/keys/${service}-replica-${index}`,
        socket: `/run/sglang-gateway/${service}/replica-${index}.sock`,
        bridgeFile: `/etc/nginx/sglang-gateway/bridges/${service}-replica-${index}.conf`,
    };
}

/** nginx upstream names; the prefixes keep a service called `chat-replica-0` apart from chat's bridge 0. */
export function serviceUpstreamName(service: string): string {
    return `sgw_service_${service.replace(/-/g, "_")}`;
}

export function bridgeUpstreamName(service: string, index: number): string {
    return `sgw_bridge_${service.replace(/-/g, "_")}_${index}`;
}
