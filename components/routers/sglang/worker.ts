// RouterWorker for the SGLang router, both worker-API generations (sglang-router 0.3.x and smg 1.x):
// one resource per registered worker.
// The provider object is serialized into the Pulumi state, so everything it calls is a plain
// function and every module is `require`d inside them.
import * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../../host-script";
import type { SshTarget } from "../../host-script/ssh";
import { isRouterCallError, withRouter, type AdminSession } from "../admin-session";
import type { RouterWorkerArgs, RouterWorkerResource } from "../types";
import { sglangWorkersDir, sglangWorkersLock } from "./paths";

/** Provider inputs as stored in the state. */
export interface SglangWorkerInputs {
    /** SSH access to the gateway (secret); absent when `adminBaseUrl` is set. */
    gateway?: SshTarget;
    /** The service, for errors; absent in state written before it was added (errors then say "the router"). */
    service?: string;
    routerPort: number;
    /** The service's other router processes (a second one for crash tolerance): the worker registers with each too. */
    extraRouterPorts?: number[];
    workerUrl: string;
    /** `prefill` and `decode` only in a PD router; the router never routes a PD request to a `regular` one. */
    workerType: "regular" | "prefill" | "decode";
    /** A prefill's bootstrap port: the router hands it to the decode worker of each request. */
    bootstrapPort?: number;
    workersDir: string;
    readinessTimeoutSeconds: number;
    /** Talk to the admin API at this URL directly, without SSH (tests, or a router on this machine). */
    adminBaseUrl?: string;
    /** Milliseconds between polls while waiting for health. */
    pollIntervalMs?: number;
}

export interface SglangWorkerOutputs extends SglangWorkerInputs {
    /** The router's own id for this worker (a UUID in 0.3.x); looked up again at every call. */
    routerWorkerId: string;
}

interface ListedWorker {
    id: string;
    url: string;
    is_healthy?: boolean;
    /** smg: pending, ready, not_ready or draining; 0.3.x has none. */
    status?: string;
    job_status?: { status?: string; message?: string };
    /** smg: what the server said of itself, e.g. `disaggregation_mode` (absent for a server without a role). */
    labels?: Record<string, string>;
}

/** smg lists a removed worker as draining for ~5 s: it takes no new requests, and it is on its way out. */
const isDraining = (w: ListedWorker) => w.status === "draining";

async function listWorkers(session: AdminSession): Promise<ListedWorker[]> {
    const answer = await session.request("GET", "/workers");
    if (answer.status !== 200) {
        throw new Error(`router GET /workers answered ${answer.status}: ${answer.text.slice(0, 300)}`);
    }
    const parsed = JSON.parse(answer.text) as { workers?: ListedWorker[] };
    return parsed.workers ?? [];
}

/** The router's worker for `url`, unless it is draining (then it counts as absent). */
function findByUrl(workers: ListedWorker[], url: string): ListedWorker | undefined {
    return workers.find((w) => w.url === url && !isDraining(w));
}

function drainingByUrl(workers: ListedWorker[], url: string): ListedWorker | undefined {
    return workers.find((w) => w.url === url && isDraining(w));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The file that tells the router's start script about this worker after a restart. */
function workerFile(inputs: SglangWorkerInputs): string {
    const name = inputs.workerUrl.replace(/[^A-Za-z0-9]+/g, "_");
    return `${inputs.workersDir}/${name}`;
}

function shq(text: string): string {
    return `'${text.replace(/'/g, `'"'"'`)}'`;
}

/** Forgets the worker on the gateway: under the reconcile's lock, so a worker it is adding back is listed by the time this returns. */
function removeWorkerFileCommand(inputs: SglangWorkerInputs): string {
    const dir = shq(inputs.workersDir);
    return `if [ -d ${dir} ]; then flock -w 60 ${shq(sglangWorkersLock(inputs.workersDir))} rm -f ${shq(workerFile(inputs))}; fi`;
}

/** What the start script passes the router for this worker after a restart: its URL (regular), or its role's flag. */
function startArguments(inputs: SglangWorkerInputs): string {
    if (inputs.workerType === "prefill") {
        return `--prefill ${inputs.workerUrl} ${inputs.bootstrapPort}`;
    }
    return inputs.workerType === "decode" ? `--decode ${inputs.workerUrl}` : inputs.workerUrl;
}

/** The registration body: a prefill's carries the bootstrap port the router cannot learn from the server. */
export function registrationBody(inputs: Pick<SglangWorkerInputs, "workerUrl" | "workerType" | "bootstrapPort">): Record<string, unknown> {
    return {
        url: inputs.workerUrl,
        worker_type: inputs.workerType,
        ...(inputs.workerType === "prefill" ? { bootstrap_port: inputs.bootstrapPort } : {}),
    };
}

/**
 * Why a registered worker cannot serve its role, or undefined. The router does not check: a server
 * started without `--disaggregation-mode`, or with the other role's, is accepted and then fails requests.
 */
export function roleMismatch(inputs: Pick<SglangWorkerInputs, "workerType" | "workerUrl">, labels: Record<string, string> | undefined): string | undefined {
    if (inputs.workerType === "regular") {
        return undefined;
    }
    const reported = labels?.disaggregation_mode;
    if (reported === inputs.workerType) {
        return undefined;
    }
    const says = reported ? `reports disaggregation_mode '${reported}'` : "reports no disaggregation mode (a server without a role)";
    return `the model server behind ${inputs.workerUrl} ${says}, and it is registered as ${inputs.workerType}: start it with \`--disaggregation-mode ${inputs.workerType}\` (its role's commands; $ROLE holds the role)`;
}

/** A router that drops out after it accepted a change may have made it: errors from then on say so. */
function accepted(err: unknown): unknown {
    return isRouterCallError(err) ? Object.assign(err, { routerCall: "unanswered" as const }) : err;
}

/**
 * Removes the worker; `pendingId` also reaches a registration the router does not list yet. The router
 * answers first: one that cannot be reached changes nothing, its file included, so the router's next
 * start (and the reconcile) and the state still agree that the worker is there. Then the file goes
 * (under the reconcile's lock, so the reconcile never adds back a worker on its way out), then the
 * registration.
 */
async function removeWorker(session: AdminSession, inputs: SglangWorkerInputs, pendingId?: string): Promise<void> {
    const listed = await listWorkers(session);
    await session.exec(removeWorkerFileCommand(inputs));
    const id = findByUrl(listed, inputs.workerUrl)?.id ?? pendingId;
    try {
        if (!id) {
            return;
        }
        const answer = await session.request("DELETE", `/workers/${encodeURIComponent(id)}`);
        // 404: already gone (0.3.x for an unknown id; a second delete); smg answers a second delete with 202.
        if (answer.status >= 300 && answer.status !== 404) {
            throw new Error(`router DELETE /workers/${id} (${inputs.workerUrl}) answered ${answer.status}: ${answer.text.slice(0, 300)}`);
        }
        // The removal is asynchronous; wait briefly so the next step (the bridge going away) sees no new traffic.
        // A draining worker takes none; the bridge's own drain then waits for its requests in flight.
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline && findByUrl(await listWorkers(session), inputs.workerUrl)) {
            await sleep(250);
        }
    } catch (err) {
        // Its file is gone by now: a router that drops out here may have let the worker go, or may still have it.
        throw accepted(err);
    }
}

/** The id in a 409 answer of smg: `... with ID <id>. ...`. */
function idInConflict(text: string): string | undefined {
    return /with ID ([0-9A-Za-z-]+)/.exec(text)?.[1];
}

/**
 * Adds the worker, or adopts a registration that exists: listed, or a 409 (smg: already exists, or
 * being created). A draining one with the same URL is waited out first: smg refuses to add it again
 * until it is gone. Returns the id of a registration still pending, if any.
 */
async function addOrAdopt(session: AdminSession, inputs: SglangWorkerInputs, deadline: number): Promise<{ pendingId?: string }> {
    for (;;) {
        const workers = await listWorkers(session);
        if (findByUrl(workers, inputs.workerUrl)) {
            return {};
        }
        if (!drainingByUrl(workers, inputs.workerUrl)) {
            const answer = await session.request("POST", "/workers", registrationBody(inputs));
            if (answer.status < 300) {
                return { pendingId: (JSON.parse(answer.text) as { worker_id?: string }).worker_id };
            }
            const code = answer.status === 409 ? ((JSON.parse(answer.text) as { code?: string }).code ?? "") : "";
            if (code === "WORKER_CREATE_IN_PROGRESS") {
                return { pendingId: idInConflict(answer.text) };
            }
            if (code !== "WORKER_ALREADY_EXISTS") {
                throw new Error(`router POST /workers for ${inputs.workerUrl} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
            }
            // Exists but not listed as ready: being added (adopt its id: a failed job then ends the wait),
            // or draining (then waited out by the next round).
            const existing = idInConflict(answer.text);
            if (existing && !drainingByUrl(await listWorkers(session), inputs.workerUrl)) {
                return { pendingId: existing };
            }
        }
        if (Date.now() >= deadline) {
            throw new Error(`router kept worker ${inputs.workerUrl} draining (or refused to add it again) for ${inputs.readinessTimeoutSeconds} s`);
        }
        await sleep(Math.min(inputs.pollIntervalMs ?? 500, 250));
    }
}

/**
 * `GET /workers/{id}`: the only place 0.3.x shows a registration that is still being added. A failed
 * add job ends it: 0.3.x keeps the job as `failed`; smg forgets the id at once (404).
 */
async function jobOf(session: AdminSession, id: string): Promise<{ failed: boolean; answer: string }> {
    const answer = await session.request("GET", `/workers/${encodeURIComponent(id)}`);
    if (answer.status === 404) {
        return { failed: true, answer: `GET /workers/${id} answered 404 (the router dropped the registration): ${answer.text.slice(0, 300)}` };
    }
    if (answer.status !== 200) {
        return { failed: false, answer: `GET /workers/${id} answered ${answer.status}: ${answer.text.slice(0, 300)}` };
    }
    const worker = JSON.parse(answer.text) as ListedWorker;
    return { failed: worker.job_status?.status === "failed", answer: JSON.stringify(worker).slice(0, 400) };
}

async function registerWorker(session: AdminSession, inputs: SglangWorkerInputs): Promise<string> {
    // Reach the router before anything is written: its file alone would add the worker at the router's next start.
    await listWorkers(session);
    // Written as root and read by the router's own unprivileged user: readable by all, whatever root's umask.
    await session.exec(
        `umask 022 && mkdir -p ${shq(inputs.workersDir)} && printf '%s\\n' ${shq(startArguments(inputs))} > ${shq(workerFile(inputs))} && chmod 0644 ${shq(workerFile(inputs))}`,
    );
    const deadline = Date.now() + inputs.readinessTimeoutSeconds * 1000;
    let pendingId: string | undefined;
    try {
        pendingId = (await addOrAdopt(session, inputs, deadline)).pendingId;
    } catch (err) {
        await session.exec(removeWorkerFileCommand(inputs));
        throw err;
    }
    try {
        return await awaitHealthy(session, inputs, deadline, pendingId);
    } catch (err) {
        throw accepted(err);
    }
}

/** Waits until the router lists the worker healthy, and checks its role; a registration that never gets there is removed again. */
async function awaitHealthy(session: AdminSession, inputs: SglangWorkerInputs, deadline: number, pendingId: string | undefined): Promise<string> {
    let last = "the router has not listed it yet";
    let jobFailed = false;
    for (;;) {
        const listed = findByUrl(await listWorkers(session), inputs.workerUrl);
        if (listed?.is_healthy === true) {
            const mismatch = roleMismatch(inputs, listed.labels);
            if (mismatch) {
                await removeWorker(session, inputs, listed.id).catch(() => undefined);
                throw new Error(`${mismatch}; the registration was removed again`);
            }
            return listed.id;
        }
        if (listed) {
            last = JSON.stringify(listed).slice(0, 400);
        } else if (pendingId) {
            // 0.3.x lists a worker only once added; its job status says why it is not (yet).
            const job = await jobOf(session, pendingId);
            last = job.answer;
            if (job.failed) {
                jobFailed = true;
                break;
            }
        }
        if (Date.now() >= deadline) {
            break;
        }
        await sleep(inputs.pollIntervalMs ?? 500);
    }
    await removeWorker(session, inputs, pendingId).catch(() => undefined);
    const why = jobFailed ? "its registration job failed" : `within ${inputs.readinessTimeoutSeconds} s`;
    throw new Error(`router did not report worker ${inputs.workerUrl} healthy (${why}); the registration was removed again. Last router answer: ${last}`);
}

/** The dynamic provider; exported so tests call its methods directly. */
export const sglangWorkerProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: SglangWorkerInputs) {
        // Checked here too: the provider is the last stop before the router, which would accept either mistake.
        const problem = bootstrapPortCheck({ role: inputs.workerType === "regular" ? undefined : inputs.workerType, bootstrapPort: inputs.bootstrapPort });
        if (problem) {
            throw new Error(`worker ${inputs.workerUrl}: ${problem}`);
        }
        const routerWorkerId = await withRouter(inputs, `register worker ${inputs.workerUrl}`, (s) => registerWorker(s, inputs), "registered");
        for (const routerPort of inputs.extraRouterPorts ?? []) {
            const other = { ...inputs, routerPort };
            await withRouter(
                other,
                `register worker ${inputs.workerUrl}`,
                (s) => registerWorker(s, other),
                "registered with this router (the first one has it; a rerun adopts that)",
                2,
            );
        }
        return { id: inputs.workerUrl, outs: { ...inputs, routerWorkerId } };
    },

    async delete(_id: string, props: SglangWorkerOutputs) {
        for (const routerPort of [props.routerPort, ...(props.extraRouterPorts ?? [])]) {
            const one = { ...props, routerPort };
            const changed = routerPort === props.routerPort ? "removed" : "removed from this router (the first one has let it go)";
            await withRouter(one, `remove worker ${props.workerUrl}`, (s) => removeWorker(s, one), changed, routerPort === props.routerPort ? 1 : 2);
        }
    },

    async diff(_id: string, olds: SglangWorkerOutputs, news: SglangWorkerInputs) {
        const replaces: string[] = (["workerUrl", "workerType", "bootstrapPort"] as const).filter((k) => olds[k] !== news[k]);
        if (olds.gateway?.hostId !== news.gateway?.hostId) {
            replaces.push("gateway");
        }
        const watched = [
            "workerUrl",
            "workerType",
            "bootstrapPort",
            "routerPort",
            "extraRouterPorts",
            "workersDir",
            "readinessTimeoutSeconds",
            "adminBaseUrl",
            "gateway",
        ] as const;
        const changes = watched.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        // Create the new registration before the old one leaves, so the router is never without it; but a
        // new gateway instance behind the same address never had the old one: clean first, then register.
        return { changes, replaces, deleteBeforeReplace: replaces.includes("gateway") };
    },

    async update(_id: string, olds: SglangWorkerOutputs, news: SglangWorkerInputs) {
        let routerWorkerId = olds.routerWorkerId;
        if (olds.routerPort !== news.routerPort) {
            routerWorkerId = await withRouter(news, `register worker ${news.workerUrl}`, (s) => registerWorker(s, news), "registered");
        }
        // A router process added (registered with) or gone (its unit goes with it; removed here if it still answers).
        const before = olds.extraRouterPorts ?? [];
        const after = news.extraRouterPorts ?? [];
        for (const routerPort of after.filter((p) => !before.includes(p))) {
            const added = { ...news, routerPort };
            await withRouter(added, `register worker ${news.workerUrl}`, (s) => registerWorker(s, added), "registered", 2);
        }
        for (const routerPort of before.filter((p) => !after.includes(p))) {
            const gone = { ...olds, routerPort };
            await withRouter(gone, `remove worker ${olds.workerUrl}`, (s) => removeWorker(s, gone), "removed", 2).catch(() => undefined);
        }
        return { outs: { ...news, routerWorkerId } };
    },

    async read(id: string, props: SglangWorkerOutputs) {
        const listed = await withRouter(props, `read worker ${props.workerUrl}`, async (s) => findByUrl(await listWorkers(s), props.workerUrl));
        // Missing from the router: report it gone, so `pulumi refresh` shows the drift and `up` registers it again.
        return listed ? { id, props: { ...props, routerWorkerId: listed.id } } : { id: "", props: {} };
    },
};

/** A prefill needs its bootstrap port (the router hands it to decode servers), and only a prefill has one. */
export function bootstrapPortCheck(args: Pick<RouterWorkerArgs, "role" | "bootstrapPort">): string | undefined {
    if (args.role === "prefill" && !(Number.isInteger(args.bootstrapPort) && (args.bootstrapPort as number) >= 1 && (args.bootstrapPort as number) <= 65535)) {
        return `a prefill worker needs its bootstrapPort (a whole number from 1 to 65535), got ${JSON.stringify(args.bootstrapPort)}: without it the router tells decode servers "bootstrap_port": null`;
    }
    if (args.role !== "prefill" && args.bootstrapPort !== undefined) {
        return `a ${args.role ?? "regular"} worker got bootstrapPort ${JSON.stringify(args.bootstrapPort)}; only a prefill has one`;
    }
    return undefined;
}

/** RouterWorker: the registration of one worker with the SGLang router of a service. */
export class SglangRouterWorker extends pulumi.dynamic.Resource implements RouterWorkerResource {
    declare readonly workerUrl: pulumi.Output<string>;
    declare readonly routerWorkerId: pulumi.Output<string>;

    constructor(name: string, args: RouterWorkerArgs, opts: pulumi.CustomResourceOptions = {}) {
        const bootstrapPortProblem = bootstrapPortCheck(args);
        if (bootstrapPortProblem) {
            throw new Error(`RouterWorker ${name} (service ${args.service}): ${bootstrapPortProblem}`);
        }
        const gateway = pulumi.output(args.gateway).apply((g: pulumi.Unwrap<SshConnection>) => ({
            host: g.host,
            port: g.port ?? 22,
            user: g.user ?? "root",
            privateKey: g.privateKey,
            // A replaced gateway instance (same address) starts with no registrations: register again.
            ...(g.hostId === undefined ? {} : { hostId: g.hostId }),
            // The gateway's pinned host key: the admin session's SSH accepts no other.
            ...(g.hostKey ? { hostKey: g.hostKey } : {}),
        }));
        super(
            sglangWorkerProvider,
            name,
            {
                gateway: pulumi.secret(gateway),
                service: args.service,
                routerPort: args.routerPort,
                ...(args.extraRouterPorts?.length ? { extraRouterPorts: args.extraRouterPorts } : {}),
                workerUrl: args.workerUrl,
                workerType: args.role ?? "regular",
                ...(args.role === "prefill" ? { bootstrapPort: args.bootstrapPort } : {}),
                workersDir: sglangWorkersDir(args.service),
                readinessTimeoutSeconds: args.readinessTimeoutSeconds,
                routerWorkerId: undefined,
            },
            opts,
            "sglang-gateway",
            "SglangRouterWorker",
        );
    }
}
