// HTTPS to the sandbox gateway as a client that trusts one root only: every request a new TLS connection whose
// chain must verify against that root for the service's name, and the certificate nginx served with it.
import * as http from "http";
import * as https from "https";
import type { DetailedPeerCertificate, TLSSocket } from "tls";
import { token } from "./gateway-client";
import { sandboxState } from "./sandbox";

export interface TlsAnswer {
    status: number;
    body: string;
    /** The served leaf certificate's serial number (hex, as Node reports it). */
    serial: string;
    subjectAltName: string;
    /** Certificates in the verified chain, the leaf to the trusted root. */
    chainLength: number;
}

/** A chat completion to `https://<service>.<domain>` on the gateway host, verified against `root` (never anything else). */
export function chatOverTls(service: string, domain: string, root: string): Promise<TlsAnswer> {
    const gateway = sandboxState().hosts.gw.address;
    const body = JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hello" }], max_tokens: 4 });
    return new Promise((resolve, reject) => {
        const req = https.request(
            {
                host: gateway,
                port: 443,
                servername: `${service}.${domain}`,
                path: "/v1/chat/completions",
                method: "POST",
                ca: root,
                // A fresh connection each time: a renewed certificate shows on the next request.
                agent: false,
                timeout: 30000,
                headers: { host: `${service}.${domain}`, "content-type": "application/json", authorization: `Bearer ${token}` },
            },
            (res) => {
                const socket = res.socket as TLSSocket;
                const peer = socket.getPeerCertificate(true);
                // The verified chain, up to the trusted root (which issues itself).
                const seen = new Set<string>();
                for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
                    seen.add(c.fingerprint256);
                }
                let text = "";
                res.on("data", (c) => (text += c));
                res.on("end", () =>
                    resolve({
                        status: res.statusCode ?? 0,
                        body: text,
                        serial: peer.serialNumber,
                        subjectAltName: peer.subjectaltname ?? "",
                        chainLength: seen.size,
                    }),
                );
            },
        );
        req.on("timeout", () => req.destroy(new Error("request timed out")));
        req.on("error", reject);
        req.end(body);
    });
}

/** Plain HTTP to the gateway host's port 80 with the service's Host: the answer's status and Location. */
export function plainHttp(service: string, domain: string, path: string): Promise<{ status: number; location?: string; body: string }> {
    const gateway = sandboxState().hosts.gw.address;
    return new Promise((resolve, reject) => {
        const req = http.request({ host: gateway, port: 80, path, method: "GET", timeout: 10000, headers: { host: `${service}.${domain}` } }, (res) => {
            let text = "";
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }));
        });
        req.on("timeout", () => req.destroy(new Error("request timed out")));
        req.on("error", reject);
        req.end();
    });
}
