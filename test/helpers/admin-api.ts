// An in-test HTTP server speaking the SGLang router's worker API (/workers) as 0.3.x or as smg 1.x
// answers it (docs/router-smg-1.md), with knobs for the provider's edge cases: workers that never
// turn healthy, failed add jobs, draining after a delete, and a log of every call.
import * as http from "http";
import { randomUUID } from "crypto";
import type { AddressInfo } from "net";

interface Worker {
    id: string;
    url: string;
    worker_type: string;
    is_healthy: boolean;
    polls: number;
    /** smg: set by DELETE; the worker is listed as draining until then. */
    drainingUntil?: number;
    /** smg: the add job failed; the id answers 404 from then on. */
    failed?: boolean;
}

export interface AdminApiOptions {
    /** Polls of GET /workers before a new worker is reported healthy; Infinity = never. */
    healthyAfterPolls?: number;
    /** Answer POST /workers with 503, as a router that refuses work. */
    refuseRegistration?: boolean;
    /** The background add job fails (as 0.3.x does when the worker URL never answers). */
    failJobs?: boolean;
    /** Answer as smg 1.x: 409 for a duplicate add, draining after a delete, a failed add's id gone (404). */
    smg?: boolean;
    /** smg: how long a deleted worker stays listed as draining (the real one: ~5 s). */
    drainMs?: number;
    /** smg: the `disaggregation_mode` each worker URL's server reports, listed as `labels.disaggregation_mode`. */
    serverModes?: Record<string, string>;
}

export class AdminApi {
    readonly calls: string[] = [];
    /** Bodies of POST /workers, parsed. */
    readonly registrations: Record<string, unknown>[] = [];
    readonly workers = new Map<string, Worker>();
    private server = http.createServer((req, res) => this.handle(req, res));

    constructor(private options: AdminApiOptions = {}) {}

    /** Listens on `port` (0: a free one), e.g. the port a stopped router had. */
    async start(port = 0): Promise<string> {
        await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
        return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    stop(): Promise<void> {
        return new Promise((resolve) => this.server.close(() => resolve()));
    }

    /** smg: workers whose drain has ended are gone. */
    private expireDrained(): void {
        for (const [id, w] of this.workers) {
            if (w.drainingUntil !== undefined && Date.now() >= w.drainingUntil) {
                this.workers.delete(id);
            }
        }
    }

    /** Simulates someone removing a worker behind Pulumi's back. */
    forget(url: string): void {
        for (const [id, w] of this.workers) {
            if (w.url === url) {
                this.workers.delete(id);
            }
        }
    }

    private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
            this.calls.push(`${req.method} ${req.url}`);
            const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
                res.writeHead(status, { "content-type": "application/json", ...headers });
                res.end(JSON.stringify(payload));
            };
            const idMatch = /^\/workers\/([^/]+)$/.exec(req.url ?? "");
            if (req.method === "GET" && req.url === "/workers") {
                const after = this.options.healthyAfterPolls ?? 1;
                this.expireDrained();
                for (const w of this.workers.values()) {
                    w.polls++;
                    w.is_healthy = w.drainingUntil === undefined && w.polls > after;
                    w.failed = this.options.smg && this.options.failJobs && !w.is_healthy;
                }
                // Neither generation lists a worker whose add job still runs; smg lists a deleted one as draining.
                const list = [...this.workers.values()]
                    .filter((w) => w.is_healthy || (this.options.smg && w.drainingUntil !== undefined))
                    .map((w) => ({
                        id: w.id,
                        url: w.url,
                        model_id: "fake-model",
                        worker_type: w.worker_type,
                        is_healthy: w.is_healthy,
                        load: 0,
                        ...(this.options.serverModes?.[w.url] ? { labels: { disaggregation_mode: this.options.serverModes[w.url] } } : {}),
                        ...(this.options.smg ? { status: w.drainingUntil !== undefined ? "draining" : w.is_healthy ? "ready" : "pending" } : {}),
                    }));
                return send(200, { workers: list, total: list.length, stats: {} });
            }
            if (req.method === "GET" && idMatch) {
                this.expireDrained();
                const w = this.workers.get(decodeURIComponent(idMatch[1]));
                if (!w || w.failed) {
                    return send(404, { code: "WORKER_NOT_FOUND", message: "worker not found" });
                }
                const job = this.options.failJobs
                    ? { status: "failed", message: "Worker failed health check after 1800 s" }
                    : { status: "processing", message: "Waiting for worker to become healthy" };
                return send(200, { id: w.id, url: w.url, model_id: "unknown", is_healthy: w.is_healthy, ...(w.is_healthy ? {} : { job_status: job }) });
            }
            if (req.method === "POST" && req.url === "/workers") {
                if (this.options.refuseRegistration) {
                    return send(503, { code: "SERVICE_UNAVAILABLE", message: "router overloaded" });
                }
                const parsed = JSON.parse(body) as { url: string; worker_type?: string };
                this.registrations.push(parsed);
                this.expireDrained();
                const existing = [...this.workers.values()].find((w) => w.url === parsed.url && !w.failed);
                if (existing && this.options.smg) {
                    const pending = !existing.is_healthy && existing.drainingUntil === undefined;
                    return send(409, {
                        error: `Worker ${pending ? "creation already in progress" : "already exists"} for URL '${parsed.url}' with ID ${existing.id}. Poll GET /workers/${existing.id}.`,
                        code: pending ? "WORKER_CREATE_IN_PROGRESS" : "WORKER_ALREADY_EXISTS",
                    });
                }
                const id = existing?.id ?? randomUUID();
                if (!existing) {
                    this.workers.set(id, { id, url: parsed.url, worker_type: parsed.worker_type ?? "regular", is_healthy: false, polls: 0 });
                }
                return send(
                    202,
                    { status: "accepted", worker_id: id, url: parsed.url, location: `/workers/${id}`, message: "Worker addition queued" },
                    { location: `/workers/${id}` },
                );
            }
            if (req.method === "DELETE" && idMatch) {
                const id = decodeURIComponent(idMatch[1]);
                if (!/^[0-9a-f-]{36}$/.test(id)) {
                    return send(400, { code: "INVALID_WORKER_ID", message: "worker id must be a UUID" });
                }
                const w = this.workers.get(id);
                if (this.options.smg && w) {
                    w.drainingUntil ??= Date.now() + (this.options.drainMs ?? 1000);
                    w.is_healthy = false;
                    return send(202, { status: "accepted", worker_id: id, message: "Worker removal queued for background processing" });
                }
                if (!this.workers.delete(id)) {
                    return send(404, { code: "WORKER_NOT_FOUND", message: `worker ${id} not found` });
                }
                return send(202, { status: "accepted", worker_id: id, message: "Worker removal queued" });
            }
            send(404, { code: "NOT_FOUND" });
        });
    }
}
