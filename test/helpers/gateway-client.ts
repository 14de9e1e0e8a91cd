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
    seconds?: number;
}

/** A chat completion through the gateway's public listener, with the service's Host header. */
export function chat(options: { stream?: boolean; withToken?: boolean; tokens?: number } = {}): Promise<Answer> {
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
                headers: {
                    host: serviceHost,
                    "content-type": "application/json",
                    ...(options.withToken === false ? {} : { authorization: `Bearer ${token}` }),
                },
            },
            (res) => {
                let text = "";
                res.on("data", (c) => (text += c));
                const answer = () => ({ status: res.statusCode ?? 0, body: text, worker: res.headers["x-fake-worker"] as string | undefined, seconds: (Date.now() - started) / 1000 });
                res.on("end", () => resolve(answer()));
                // A response cut mid-way ends without "end": report it as a cut, never hang.
                res.on("close", () => (res.complete ? undefined : resolve({ ...answer(), status: -1, body: `${text}\n[cut after ${answer().seconds} s]` })));
            },
        );
        req.on("timeout", () => req.destroy(new Error("request timed out")));
        req.on("error", reject);
        req.end(body);
    });
}

/** Requests in a loop while `work` runs: every answer is recorded, so a lost request shows. */
export async function underLoad<T>(work: () => Promise<T>): Promise<{ result: T; answers: Answer[] }> {
    const answers: Answer[] = [];
    let running = true;
    const loop = (async () => {
        while (running && answers.length < 5000) {
            answers.push(await chat({ stream: answers.length % 2 === 1 }).catch((err: Error) => ({ status: 0, body: err.message })));
            await new Promise((r) => setTimeout(r, 20));
        }
    })();
    try {
        return { result: await work(), answers };
    } finally {
        running = false;
        await loop;
    }
}

