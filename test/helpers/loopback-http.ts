// One HTTP request to a loopback nginx under test, its whole answer collected.
import * as http from "http";

export interface LoopbackAnswer {
    status: number;
    body: string;
    headers: http.IncomingHttpHeaders;
}

/** `method` defaults to POST with a body, else GET; the headers are sent as given (a JSON content type first). */
export function loopbackRequest(
    port: number,
    path: string,
    options: { host: string; method?: string; body?: string; headers?: Record<string, string> },
): Promise<LoopbackAnswer> {
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: "127.0.0.1",
                port,
                path,
                method: options.method ?? (options.body === undefined ? "GET" : "POST"),
                headers: { host: options.host, "content-type": "application/json", ...options.headers },
            },
            (res) => {
                let body = "";
                res.on("data", (c) => (body += c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
            },
        );
        req.on("error", reject);
        req.end(options.body);
    });
}
