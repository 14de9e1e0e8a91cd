// A router's admin API, reached from a dynamic provider: an SSH tunnel to the gateway's loopback and
// one HTTP exchange per request. Any router's RouterWorker can use it. These functions are
// serialized into provider state: modules are `require`d inside them.
import { openSsh, runScript, type SshTarget } from "../host-script/ssh";
import { routerPaths } from "../naming";

export interface AdminAnswer {
    status: number;
    text: string;
}

export interface AdminSession {
    request(method: string, path: string, body?: unknown): Promise<AdminAnswer>;
    /** Runs a shell command on the gateway as root; a no-op without SSH. */
    exec(command: string): Promise<void>;
    close(): void;
}

export interface AdminTarget {
    /** SSH access to the gateway (secret); absent when `adminBaseUrl` is set. */
    gateway?: SshTarget;
    /** The router's HTTP port on the gateway's loopback. */
    routerPort: number;
    /** Talk to the admin API at this URL directly, without SSH (tests, or a router on this machine). */
    adminBaseUrl?: string;
    /** The service whose router this is, for errors (absent in state written before it was added). */
    service?: string;
}

/**
 * An admin call that failed without an answer from the router: `gateway` (no SSH to the gateway) and
 * `unreachable` (nothing took the connection) changed nothing; `unanswered` (a timeout, a dropped
 * connection) may have reached it.
 */
export type RouterCallError = Error & { routerCall: "gateway" | "unreachable" | "unanswered" };

export function isRouterCallError(err: unknown): err is RouterCallError {
    return typeof (err as { routerCall?: unknown } | undefined)?.routerCall === "string";
}

/** Which router, as errors name it: its service and the gateway. */
export function routerLocation(target: AdminTarget): string {
    const whose = target.service ? `the router of service ${target.service}` : "the router";
    return target.adminBaseUrl ? `${whose} at ${target.adminBaseUrl}` : `${whose} on the gateway ${target.gateway?.host ?? "(unknown)"}`;
}

/**
 * Why a call got no answer, in words a user can act on. `err` is what the SSH channel failed with
 * (ssh2's `reason`: 2, sshd could not connect to the port; 1, sshd does not forward) or the HTTP exchange.
 */
export function routerCallError(target: AdminTarget, call: string, err: unknown): RouterCallError {
    const e = err as Error & { reason?: unknown; code?: unknown };
    const port = target.adminBaseUrl ?? `its port 127.0.0.1:${target.routerPort} there`;
    const failed = (kind: RouterCallError["routerCall"], text: string) => Object.assign(new Error(text), { routerCall: kind });
    if (e.reason === 2 || e.code === "ECONNREFUSED" || /connection refused/i.test(e.message)) {
        return failed("unreachable", `${routerLocation(target)} is not running: nothing accepts connections on ${port} (${call}: ${e.message})`);
    }
    if (e.reason === 1) {
        return failed(
            "unreachable",
            `${routerLocation(target)} is out of reach: the gateway's sshd does not forward connections to ${port} (${call}: ${e.message}); its sshd_config must allow it (AllowTcpForwarding yes)`,
        );
    }
    return failed("unanswered", `${routerLocation(target)} did not answer ${call} on ${port}: ${e.message}`);
}

/** One HTTP request with a JSON body, over `createConnection` when given (an SSH channel). */
export function httpExchange(
    options: { method: string; path: string; baseUrl: string; body?: unknown },
    createConnection?: () => import("stream").Duplex,
): Promise<AdminAnswer> {
    const http: typeof import("http") = require("http");
    const url = new URL(options.path, options.baseUrl);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                method: options.method,
                hostname: url.hostname,
                port: url.port,
                path: url.pathname + url.search,
                headers: {
                    accept: "application/json",
                    ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
                },
                timeout: 15000,
                ...(createConnection ? { createConnection: createConnection as never } : {}),
            },
            (res) => {
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (chunk: string) => (text += chunk));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
                res.on("error", reject);
            },
        );
        req.on("timeout", () => req.destroy(new Error(`router admin ${options.method} ${options.path} timed out after 15 s`)));
        req.on("error", reject);
        req.end(payload);
    });
}

export async function openAdminSession(target: AdminTarget): Promise<AdminSession> {
    // An answer of any status came from the router; only a call that got none is a RouterCallError.
    const reaching = async (method: string, path: string, exchange: () => Promise<AdminAnswer>): Promise<AdminAnswer> => {
        try {
            return await exchange();
        } catch (err) {
            throw routerCallError(target, `${method} ${path}`, err);
        }
    };
    if (target.adminBaseUrl) {
        const baseUrl = target.adminBaseUrl;
        return {
            request: (method, path, body) => reaching(method, path, () => httpExchange({ method, path, baseUrl, body })),
            exec: async () => undefined,
            close: () => undefined,
        };
    }
    const gateway = target.gateway;
    if (!gateway) {
        throw new Error("router admin session: neither gateway SSH access nor adminBaseUrl was given");
    }
    let client: import("ssh2").Client;
    try {
        client = await openSsh(gateway);
    } catch (err) {
        throw Object.assign(new Error(`${routerLocation(target)} is out of reach: ${(err as Error).message}`), { routerCall: "gateway" as const });
    }
    const baseUrl = `http://127.0.0.1:${target.routerPort}`;
    const forward = (): Promise<import("stream").Duplex> =>
        new Promise((resolve, reject) =>
            client.forwardOut("127.0.0.1", 0, "127.0.0.1", target.routerPort, (err, stream) => (err ? reject(err) : resolve(stream))),
        );
    return {
        request: (method, path, body) =>
            reaching(method, path, async () => {
                const stream = await forward();
                return httpExchange({ method, path, baseUrl, body }, () => stream);
            }),
        exec: async (command) => {
            const result = await runScript(client, gateway.user, command);
            if (result.code !== 0) {
                throw new Error(`'${command}' on the gateway ${gateway.host} exited ${result.code}: ${result.stderr.trim()}`);
            }
        },
        close: () => client.end(),
    };
}

/** Opens a session, runs `work`, and always closes it. */
export async function withAdminSession<T>(target: AdminTarget, work: (session: AdminSession) => Promise<T>): Promise<T> {
    const session = await openAdminSession(target);
    try {
        return await work(session);
    } finally {
        session.close();
    }
}

/**
 * A call that got no answer from the router, explained: which service's router on which gateway (from
 * the error), what to check there, and what the failed step left behind. Other errors pass as they are.
 * `changed`: what the work does to the router when it succeeds ("registered"); absent for a read.
 * `instance`: which of the service's router processes (2: the second, for crash tolerance).
 */
export function explainRouterCallError(err: unknown, service: string | undefined, what: string, changed?: string, instance: 1 | 2 = 1): unknown {
    if (!isRouterCallError(err)) {
        return err;
    }
    const unit = routerPaths(service ?? "<service>", instance).unit;
    const check =
        err.routerCall === "gateway"
            ? "Check that the gateway is up and answers SSH with the stack's key."
            : `Check the router on the gateway: \`systemctl status ${unit}\`, and \`journalctl -u ${unit}\` for why it stopped (\`systemctl start ${unit}\` starts it again).`;
    const left =
        changed === undefined
            ? "Nothing in the state changed; refresh again once the router answers."
            : err.routerCall === "unanswered"
              ? "The router may still carry the call out; the next `pulumi up` looks the worker up by its URL and finishes the job."
              : `Nothing was ${changed}, and the state records nothing as done; run \`pulumi up\` again once the router answers.`;
    return new Error(`cannot ${what}: ${err.message}. ${check} ${left}`);
}

/** `withAdminSession` for a provider call: a call that got no answer fails explained (`explainRouterCallError`). */
export async function withRouter<T>(
    target: AdminTarget,
    what: string,
    work: (session: AdminSession) => Promise<T>,
    changed?: string,
    instance: 1 | 2 = 1,
): Promise<T> {
    try {
        return await withAdminSession(target, work);
    } catch (err) {
        throw explainRouterCallError(err, target.service, what, changed, instance);
    }
}
