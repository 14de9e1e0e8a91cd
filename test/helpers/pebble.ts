// Pebble, Let's Encrypt's test ACME server, with its DNS test server (pebble-challtestsrv), run on this machine
// for a sandbox (built by scripts/setup/acme.sh). The gateway host reaches Pebble's API on the sandbox bridge
// address; Pebble's HTTP-01 validation asks challtestsrv for a service name's address (the gateway host's, unless
// told otherwise) and fetches the challenge from its port 80. Pebble's API certificate is made here, by a CA of
// the test's own (its own test certificate names only localhost): the gateway trusts it through acme.caBundle.
import { execFileSync, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as https from "https";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { gatewayCacheDir } from "./cache";
import { terminate, track } from "./child-processes";
import { freePort } from "./ports";

export interface PebbleServer {
    /** The ACME directory URL, on the sandbox bridge address. */
    directory: string;
    /** PEM of the CA of Pebble's API certificate. */
    caBundle: string;
    /** The external account binding Pebble requires of every new account. */
    eab: { kid: string; hmacKey: string };
    /** A name Pebble's policy refuses (its order is rejected at once). */
    blockedName: string;
    /** Pebble's issuing root (`/roots/0` of its management API), which the gateway's chains must verify against. */
    root(): Promise<string>;
    /** Pebble's ACME renewal info for a certificate: a suggested window already past, i.e. "renew now". */
    askRenewal(certificatePem: string): Promise<void>;
    /** challtestsrv answers `name` with `address` instead of the gateway host's. */
    answer(name: string, address: string): Promise<void>;
    /** Its default again: the gateway host's address. */
    forget(name: string): Promise<void>;
    /** The two servers' output so far (for a failed test). */
    logs(): string;
    stop(): Promise<void>;
}

function binary(name: string): string {
    const file = path.join(gatewayCacheDir(), "pebble", "bin", name);
    if (!fs.existsSync(file)) {
        throw new Error(`${file} is missing: run \`bash scripts/setup/acme.sh\` (npm test's setup does)`);
    }
    return file;
}

/** A CA and, signed by it, a certificate for `address` (Pebble's API) and 127.0.0.1 (its management API). */
function apiCertificate(dir: string, address: string): { ca: string; cert: string; key: string } {
    const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sglang-gateway test ACME API CA"]);
    run(["req", ...ec, "-keyout", "api.key", "-out", "api.csr", "-subj", "/CN=pebble"]);
    fs.writeFileSync(path.join(dir, "api.ext"), `subjectAltName=IP:${address},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    run(["x509", "-req", "-in", "api.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "api.pem", "-days", "2", "-extfile", "api.ext"]);
    return { ca: path.join(dir, "ca.pem"), cert: path.join(dir, "api.pem"), key: path.join(dir, "api.key") };
}

function request(url: string, options: { ca?: string; method?: string; body?: string }): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const client = url.startsWith("https:") ? https : http;
        // Pebble refuses a request without a User-Agent ("All requests MUST include a User-Agent header").
        const headers = { "user-agent": "sglang-gateway-tests" };
        const req = client.request(url, { method: options.method ?? "GET", ca: options.ca, timeout: 10000, headers }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error(`${url}: timed out`)));
        req.on("error", reject);
        req.end(options.body);
    });
}

async function until(what: string, check: () => Promise<boolean>, seconds: number, logs: () => string): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    let last = "";
    while (Date.now() < deadline) {
        const ok = await check().catch((err: Error) => ((last = err.message), false));
        if (ok) {
            return;
        }
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} did not answer within ${seconds} s (last: ${last}):\n${logs()}`);
}

/** Starts challtestsrv and Pebble; `stop` ends both (and the test run's end does, whatever happens). */
export async function startPebble(options: { bridgeAddress: string; gatewayAddress: string; domain: string }): Promise<PebbleServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-pebble-"));
    const files = apiCertificate(dir, options.bridgeAddress);
    const caBundle = fs.readFileSync(files.ca, "utf8");
    const [apiPort, managementPort, dnsPort, challManagementPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const eab = { kid: "sandbox-gateway", hmacKey: crypto.randomBytes(32).toString("base64url") };
    const blockedName = `blocked.${options.domain}`;
    fs.writeFileSync(
        path.join(dir, "pebble.json"),
        JSON.stringify({
            pebble: {
                listenAddress: `${options.bridgeAddress}:${apiPort}`,
                managementListenAddress: `127.0.0.1:${managementPort}`,
                certificate: files.cert,
                privateKey: files.key,
                // HTTP-01 on the real port: the gateway's nginx answers it.
                httpPort: 80,
                tlsPort: 443,
                ocspResponderURL: "",
                externalAccountBindingRequired: true,
                externalAccountMACKeys: { [eab.kid]: eab.hmacKey },
                domainBlocklist: [blockedName],
                retryAfter: { authz: 1, order: 1 },
                keyAlgorithm: "ecdsa",
            },
        }),
    );
    const log = path.join(dir, "servers.log");
    const out = fs.openSync(log, "a");
    const logs = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").slice(-6000) : "");
    const started: { child: ReturnType<typeof spawn>; exited: Promise<void> }[] = [];
    const launch = (file: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
        const child = spawn(file, args, { detached: true, stdio: ["ignore", out, out], env: { ...process.env, ...env } });
        track(child);
        started.push({ child, exited: new Promise<void>((resolve) => child.once("exit", () => resolve())) });
    };
    const stop = async () => {
        await Promise.all(started.map((s) => terminate(s.child, s.exited, 5000)));
        fs.closeSync(out);
        fs.rmSync(dir, { recursive: true, force: true });
    };
    try {
        // Every name resolves to the gateway host, over IPv4 only; no challenge servers of its own (the gateway serves them).
        launch(binary("pebble-challtestsrv"), [
            "-dnsserver",
            `127.0.0.1:${dnsPort}`,
            "-management",
            `127.0.0.1:${challManagementPort}`,
            "-defaultIPv4",
            options.gatewayAddress,
            "-defaultIPv6",
            "",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-doh",
            "",
        ]);
        // Really validated (PEBBLE_VA_ALWAYS_VALID unset), without Pebble's random waits; no nonce refused on purpose
        // and no authorization reused, so each order fetches its challenge from the gateway.
        launch(binary("pebble"), ["-config", path.join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], {
            PEBBLE_VA_NOSLEEP: "1",
            PEBBLE_WFE_NONCEREJECT: "0",
            PEBBLE_AUTHZREUSE: "0",
        });
        const directory = `https://${options.bridgeAddress}:${apiPort}/dir`;
        await until("pebble", async () => (await request(directory, { ca: caBundle })).status === 200, 30, logs);
        await until("pebble-challtestsrv", async () => (await request(`http://127.0.0.1:${challManagementPort}/`, {})).status > 0, 30, logs);
        const challtestsrv = async (call: string, body: object) => {
            const answer = await request(`http://127.0.0.1:${challManagementPort}/${call}`, { method: "POST", body: JSON.stringify(body) });
            if (answer.status !== 200) {
                throw new Error(`challtestsrv ${call}: ${answer.status} ${answer.body}`);
            }
        };
        return {
            directory,
            caBundle,
            eab,
            blockedName,
            async root() {
                const answer = await request(`https://127.0.0.1:${managementPort}/roots/0`, { ca: caBundle });
                if (answer.status !== 200) {
                    throw new Error(`pebble /roots/0: ${answer.status} ${answer.body}`);
                }
                return answer.body;
            },
            async askRenewal(certificatePem: string) {
                const hourAgo = Date.now() - 3600 * 1000;
                const window = { start: new Date(hourAgo - 3600 * 1000).toISOString(), end: new Date(hourAgo).toISOString() };
                const answer = await request(`https://127.0.0.1:${managementPort}/set-renewal-info/`, {
                    ca: caBundle,
                    method: "POST",
                    body: JSON.stringify({ Certificate: certificatePem, ARIResponse: JSON.stringify({ suggestedWindow: window }) }),
                });
                if (answer.status !== 200) {
                    throw new Error(`pebble /set-renewal-info/: ${answer.status} ${answer.body}`);
                }
            },
            answer: (name, address) => challtestsrv("add-a", { host: `${name}.`, addresses: [address] }),
            forget: (name) => challtestsrv("clear-a", { host: `${name}.` }),
            logs,
            stop,
        };
    } catch (err) {
        await stop();
        throw err;
    }
}
