// Hostile requests against the gateway's public listener, as raw bytes (so malformed ones go out as
// written): both router generations' admin paths, encodings, dot segments, absolute forms, Host
// variants, pipelining, smuggling, oversize, TRACE, NUL and bare LF. Every one carries a valid token
// (the worst case: a client of the service). Used on loopback (test/integration) and on the sandbox (test/e2e).
import * as net from "net";

/** Sends raw bytes, collects every status line the server answers with (pipelining gives several). */
export function raw(address: string, port: number, request: string, ms = 3000): Promise<{ statuses: number[]; text: string }> {
    return new Promise((resolve) => {
        const socket = net.connect(port, address);
        let text = "";
        const done = () => {
            socket.destroy();
            // A pipelined answer follows the previous body without a line break: no anchor.
            resolve({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])), text });
        };
        socket.setTimeout(ms, done);
        socket.on("data", (chunk) => (text += chunk.toString("latin1")));
        socket.on("close", done);
        socket.on("error", done);
        socket.write(request, "latin1");
    });
}

export interface HostileTarget {
    /** The service's host name (`Host:`). */
    host: string;
    /** A valid bearer token of the service. */
    token: string;
    /** The router's port on the gateway's loopback (for absolute-form request lines that name it). */
    routerPort: number;
    /** A registered worker's URL (for a remove request that names it). */
    workerUrl: string;
}

/** A GET with the service's Host and token (or the given header lines). */
export function hostileGet(target: HostileTarget, path: string, headers = `Host: ${target.host}\r\nAuthorization: Bearer ${target.token}\r\n`): string {
    return `GET ${path} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`;
}

/** A POST with the service's Host and token. */
export function hostilePost(target: HostileTarget, path: string, body: string, extra = ""): string {
    return `POST ${path} HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${target.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;
}

/** [title, raw request] of every hostile request; each must answer 4xx. */
export function hostileRequests(target: HostileTarget): [string, string][] {
    const { host, token, routerPort, workerUrl } = target;
    const get = (path: string, headers?: string) => hostileGet(target, path, headers);
    const post = (path: string, body: string, extra = "") => hostilePost(target, path, body, extra);
    const admin = [
        "/workers",
        "/workers/00000000-0000-0000-0000-000000000000",
        "/list_workers",
        "/get_loads",
        "/get_server_info",
        "/server_info",
        "/get_model_info",
        "/model_info",
        "/metrics",
        "/engine_metrics",
        "/health",
        "/health_generate",
        "/readiness",
        "/liveness",
        "/v1/tokenizers",
        "/v1/conversations",
        "/v1/responses/resp_0123",
        "/v1/loads",
        "/flush_cache",
        "/wasm",
    ];
    return [
        ...admin.map((p): [string, string] => [`GET ${p}`, get(p)]),
        ["POST /workers (add a worker)", post("/workers", JSON.stringify({ url: "http://127.0.0.1:9/" }))],
        ["POST /add_worker", post(`/add_worker?url=${encodeURIComponent("http://127.0.0.1:9")}`, "")],
        ["POST /remove_worker", post(`/remove_worker?url=${encodeURIComponent(workerUrl)}`, "")],
        [
            "DELETE /workers/{id}",
            `DELETE /workers/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
        ],
        ["POST /flush_cache", post("/flush_cache", "")],
        ["percent-encoded /workers", get("/%77orkers")],
        ["double-encoded /workers", get("/%2577orkers")],
        ["encoded slash and dots", get("/v1/..%2fworkers")],
        ["dot segments", get("/v1/chat/completions/../../workers")],
        ["encoded dot segments", get("/v1/%2e%2e/workers")],
        ["leading double slash", get("//workers")],
        ["dot slash", get("/./workers")],
        ["absolute form to the router's port", get(`http://127.0.0.1:${routerPort}/workers`)],
        ["absolute form to the service host", get(`http://${host}/workers`)],
        ["Host in upper case", get("/workers", `Host: ${host.toUpperCase()}\r\nAuthorization: Bearer ${token}\r\n`)],
        ["Host with a port", get("/workers", `Host: ${host}:80\r\nAuthorization: Bearer ${token}\r\n`)],
        ["HTTP/1.0 without Host, no token", "GET /workers HTTP/1.0\r\n\r\n"],
        ["HTTP/1.0 without Host, admin path", `GET /flush_cache HTTP/1.0\r\nAuthorization: Bearer ${token}\r\n\r\n`],
        ["pipelined admin request after a good one", `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n${get("/workers")}`],
        [
            "CL and TE together (smuggling)",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${get("/workers")}`,
        ],
        [
            "TE with a space before the colon",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`,
        ],
        ["TE chunked, identity", post("/v1/chat/completions", "0\r\n\r\n", "Transfer-Encoding: chunked, identity\r\n")],
        ["TE xchunked", post("/v1/chat/completions", "0\r\n\r\n", "Transfer-Encoding: xchunked\r\n")],
        [
            "body over the limit (Content-Length 100 MB)",
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n{}`,
        ],
        ["path of 20 kB", get(`/v1/${"a".repeat(20000)}`)],
        ["header of 20 kB", get("/v1/models", `Host: ${host}\r\nAuthorization: Bearer ${token}\r\nX-Big: ${"b".repeat(20000)}\r\n`)],
        ["TRACE", `TRACE /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`],
        ["NUL byte in the path", get("/v1/models%00/../../workers")],
        ["a bare line feed request", `GET /workers HTTP/1.1\nHost: ${host}\nAuthorization: Bearer ${token}\n\n`],
    ];
}

/** What leaks in every answer: a router header, a loopback address with a port (bridges, the router), nginx's version. */
export const alwaysLeaks = [/x-smg-[^\r\n]*/i, /127\.0\.0\.1:\d+/, /nginx\/\d[\d.]*/i];

/**
 * What is wrong with the answer to one hostile request: a status that is not 4xx (for the pipelined one,
 * the statuses after the good request's), or a leak of any of `leaks`.
 */
export function hostileAnswerProblems(title: string, answer: { statuses: number[]; text: string }, leaks: RegExp[] = alwaysLeaks): string[] {
    const problems: string[] = [];
    // A pipelined or smuggled admin request answers with its own status after the first.
    const hostile = title.startsWith("pipelined") ? answer.statuses.slice(1) : answer.statuses;
    if (hostile.length === 0 || hostile.some((s) => s < 400 || s >= 500)) {
        problems.push(`${title}: ${answer.statuses.join(",") || "no answer"}`);
    }
    for (const leak of leaks) {
        const found = leak.exec(answer.text)?.[0];
        if (found !== undefined) {
            problems.push(`${title}: leaks ${found}`);
        }
    }
    return problems;
}
