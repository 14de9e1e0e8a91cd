// A router's admin API, reached from a dynamic provider: an SSH tunnel to the gateway's loopback and
// one HTTP exchange per request. Any router's RouterWorker can use it. These functions are
// serialized into provider state: modules are `require`d inside them.
import { openSsh, runScript, type SshTarget } from "../host-script/ssh";

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
    if (target.adminBaseUrl) {
        const baseUrl = target.adminBaseUrl;
        return {
            request: (method, path, body) => httpExchange({ method, path, baseUrl, body }),
            exec: async () => undefined,
            close: () => undefined,
        };
    }
    const gateway = target.gateway;
    if (!gateway) {
        throw new Error("router admin session: neither gateway SSH access nor adminBaseUrl was given");
    }
    const client = await openSsh(gateway);
    const baseUrl = `http://127.0.0.1:${target.routerPort}`;
    const forward = (): Promise<import("stream").Duplex> =>
        new Promise((resolve, reject) =>
            client.forwardOut("127.0.0.1", 0, "127.0.0.1", target.routerPort, (err, stream) => (err ? reject(err) : resolve(stream))),
        );
    return {
        request: async (method, path, body) => {
            const stream = await forward();
            return httpExchange({ method, path, baseUrl, body }, () => stream);
        },
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
