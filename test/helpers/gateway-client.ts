// A client of the gateway on the sandbox: requests with the service's Host header and token,
// and a request loop that records every answer while a change runs.
import * as http from "http";
import { sandboxState } from "./sandbox";

export const token = "e2e-token-0123456789abcdef";
export const serviceHost = "chat.sandbox.test";

/** The fake SGLang worker as a replica's command, on the sandbox hosts (streams at 20 tokens/s). */
export const fakeWorkerCommand =
    'exec /usr/bin/node /opt/sglang-gateway-fixtures/fake-worker.js --host 127.0.0.1 --port "$PORT" --name "$(hostname)-replica-$REPLICA_INDEX" --model "$MODEL" --tokens-per-second 20';

export interface Answer {
    status: number;
    body: string;
    worker?: string;
    /** A PD service's answer: the prefill the router paired the decode with (the fake decode's X-Fake-Prefill). */
    prefill?: string;
    seconds?: number;
    /** Response header names, lowercase. */
    headerNames?: string[];
    /** The gateway's id of the request (X-Request-Id of the answer). */
    requestId?: string;
    /** Sent again on a new connection: the kept-alive one it went out on was closed before any answer (see chat). */
    resentOnNewConnection?: boolean;
}

/** Which service and credentials a request goes with: default the `chat` service with `token`. */
export interface ServiceTarget {
    /** The service's name: the request's Host is `<service>.sandbox.test`. */
    service?: string;
    token?: string;
    headers?: Record<string, string>;
}

/**
 * A chat completion through the gateway's public listener, with the service's Host header. Like any HTTP
 * client, it sends a request once more on a new connection when the kept-alive connection it reused was
 * closed before a byte of the answer came (RFC 9112 §9.3.1): an nginx reload closes its old workers' idle
 * connections, and a request sent in that instant never reached nginx (Node flags it `reusedSocket`).
 */
export async function chat(options: { stream?: boolean; withToken?: boolean; tokens?: number } & ServiceTarget = {}): Promise<Answer> {
    try {
        return await chatOnce(options);
    } catch (err) {
        if ((err as { reusedSocket?: boolean }).reusedSocket && ["ECONNRESET", "EPIPE"].includes((err as NodeJS.ErrnoException).code ?? "")) {
            return { ...(await chatOnce(options, false)), resentOnNewConnection: true };
        }
        throw err;
    }
}

function chatOnce(options: { stream?: boolean; withToken?: boolean; tokens?: number } & ServiceTarget, keepAlive = true): Promise<Answer> {
    const gateway = sandboxState().hosts.gw.address;
    const started = Date.now();
    const body = JSON.stringify({
        model: "fake-model",
        messages: [{ role: "user", content: "hello" }],
        max_tokens: options.tokens ?? 4,
        ...(options.tokens ? { ignore_eos: true } : {}),
        stream: options.stream ?? false,
    });
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: gateway,
                port: 80,
                path: "/v1/chat/completions",
                method: "POST",
                timeout: 30000,
                ...(keepAlive ? {} : { agent: false }),
                headers: {
                    host: options.service ? `${options.service}.sandbox.test` : serviceHost,
                    "content-type": "application/json",
                    ...(options.withToken === false ? {} : { authorization: `Bearer ${options.token ?? token}` }),
                    ...options.headers,
                },
            },
            (res) => {
                let text = "";
                res.on("data", (c) => (text += c));
                const answer = () => ({
                    status: res.statusCode ?? 0,
                    body: text,
                    worker: res.headers["x-fake-worker"] as string | undefined,
                    prefill: res.headers["x-fake-prefill"] as string | undefined,
                    seconds: (Date.now() - started) / 1000,
                    headerNames: Object.keys(res.headers),
                    requestId: res.headers["x-request-id"] as string | undefined,
                });
                res.on("end", () => resolve(answer()));
                // A response cut mid-way ends without "end": report it as a cut, never hang.
                res.on("close", () => (res.complete ? undefined : resolve({ ...answer(), status: -1, body: `${text}\n[cut after ${answer().seconds} s]` })));
            },
        );
        req.on("timeout", () => req.destroy(new Error("request timed out")));
        req.on("error", (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
        req.end(body);
    });
}

/** Requests in a loop while `work` runs: every answer is recorded, so a lost request shows. `work` sees the answers so far. */
export async function underLoad<T>(
    work: (answers: readonly Answer[]) => Promise<T>,
    target: ServiceTarget | ((n: number) => ServiceTarget) = {},
): Promise<{ result: T; answers: Answer[] }> {
    const answers: Answer[] = [];
    let running = true;
    const loop = (async () => {
        while (running && answers.length < 5000) {
            const to = typeof target === "function" ? target(answers.length) : target;
            answers.push(await chat({ ...to, stream: answers.length % 2 === 1 }).catch((err: Error) => ({ status: 0, body: err.message })));
            await new Promise((r) => setTimeout(r, 20));
        }
    })();
    try {
        return { result: await work(answers), answers };
    } finally {
        running = false;
        await loop;
    }
}

/** Which replicas answer `count` requests (plain and streamed in turn); every answer must be a 200. */
export async function answeringWorkers(count: number): Promise<string[]> {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
        const answer = await chat({ stream: i % 2 === 1 });
        if (answer.status !== 200) {
            throw new Error(`request ${i} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
        }
        seen.add(answer.worker ?? "");
    }
    return [...seen].sort();
}

/** Runs `change` with `count` long streams (300 tokens at 20/s, ~15 s) open and a request loop going. */
export async function whileStreaming(count: number, change: () => Promise<unknown>): Promise<{ streams: Answer[]; answers: Answer[] }> {
    const open = Promise.all(
        Array.from({ length: count }, () => chat({ stream: true, tokens: 300 }).catch((err: Error) => ({ status: 0, body: err.message }) as Answer)),
    );
    await new Promise((r) => setTimeout(r, 500));
    const { answers } = await underLoad(change);
    return { streams: await open, answers };
}

/**
 * A stream that ran to its end: the model's last chunk (its `finish_reason`), then `data: [DONE]`, and no
 * error event. `[DONE]` alone proves nothing: smg ends a stream whose worker went away mid-way with a
 * `stream_error` event and `data: [DONE]`, under status 200.
 */
export function streamComplete(answer: Answer): boolean {
    return (
        answer.status === 200 &&
        /"finish_reason":"(length|stop)"/.test(answer.body) &&
        !/^data: \{"error"/m.test(answer.body) &&
        answer.body.trimEnd().endsWith("data: [DONE]")
    );
}

/** Nothing lost: every loop request a 200, every stream complete (`streamComplete`) and long enough to overlap the change. */
export function assertNothingLost(result: { streams: Answer[]; answers: Answer[] }): void {
    const failed = result.answers.filter((a) => a.status !== 200);
    if (result.answers.length === 0 || failed.length > 0) {
        throw new Error(`failed requests during the change: ${JSON.stringify(failed.slice(0, 5))}`);
    }
    for (const stream of result.streams) {
        if (!streamComplete(stream)) {
            throw new Error(`a stream was cut (status ${stream.status}): ...${stream.body.slice(-300)}`);
        }
        if ((stream.seconds ?? 0) < 10) {
            throw new Error(`stream too short to overlap the change: ${stream.seconds} s`);
        }
    }
}
