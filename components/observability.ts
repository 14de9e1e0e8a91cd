// Where a service's logs and metrics are on the gateway: for its operators (stack outputs, `npm run gateway --
// logs|metrics`), never for clients. Addresses are on the gateway's loopback; reading them takes SSH to it.

/** One router process of a service. */
export interface RouterObservability {
    /** Its systemd unit: `journalctl -u <unit>` has everything it printed. */
    unit: string;
    /** Where it also writes its log as files, if it does. */
    logDir?: string;
    /** Its Prometheus metrics, on the gateway's loopback. */
    metricsUrl?: string;
}

export interface ServiceObservability {
    /** nginx's access log of the service: one JSON object per request (status, times, bytes, `request_id`). */
    accessLog: string;
    /** Each router process (two with `router.processes: 2`); empty for a plain gateway. */
    routers: RouterObservability[];
}

/** How an operator reaches the gateway over SSH (the key is not in here: the stack's secret output has it). */
export interface GatewaySshAccess {
    host: string;
    port: number;
    user: string;
    /** The host key the gateway must present: given in config, or pinned by the gateway's setup at first contact. */
    hostKey?: string;
}
