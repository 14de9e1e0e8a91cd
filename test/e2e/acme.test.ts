// Certificates from an ACME server on sandbox hosts: Pebble (Let's Encrypt's test server) on this machine, the
// gateway on the sandbox. Each service gets its own certificate over HTTP-01 (Pebble really fetches the challenge
// from the gateway's port 80: no always-valid mode), HTTPS serves a chain that verifies against Pebble's root,
// HTTP redirects, the timer's renewal replaces a certificate the CA asks to renew without a failed request, a
// refused order fails `up` naming the name and the CA's answer while the rest keeps serving, and destroy cleans up.
import * as assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fakeWorkerCommand, token } from "../helpers/gateway-client";
import { startPebble, type PebbleServer } from "../helpers/pebble";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { chatOverTls, plainHttp, type TlsAnswer } from "../helpers/tls-client";

const domain = "sandbox.test";
const live = (service: string) => `/etc/sglang-gateway/acme/live/${service}`;

/** A plain gateway (no router: nothing here is about routing) whose certificates come from Pebble; one fake worker per service. */
function acmeStack(pebble: PebbleServer, services: { name: string; replicas?: number }[]) {
    const state = sandboxState();
    return {
        gateway: {
            type: "gateway",
            name: "secure",
            backend: "ssh",
            host: state.hosts.gw.address,
            privateKeyPath: state.privateKeyPath,
            domain,
            certificate: {
                acme: {
                    server: pebble.directory,
                    email: "ops@sandbox.test",
                    eab: pebble.eab,
                    caBundle: pebble.caBundle,
                    // certbot's pinned closure, served from the sandbox's wheel index (scripts/setup/acme.sh).
                    indexUrl: `http://${state.bridgeAddress}:8764/acme/simple`,
                },
            },
        },
        services: services.map(({ name, replicas }, i) => ({
            type: "service",
            name,
            port: 8000,
            model: "fake-model",
            commands: [fakeWorkerCommand],
            replicas: replicas ?? 1,
            hosts: [{ host: i % 2 === 0 ? state.hosts.r1.address : state.hosts.r2.address }],
        })),
        tokens: Object.fromEntries(services.map(({ name }) => [name, [token]])),
    };
}

/** `openssl s_client` from this machine: the chain the gateway serves for `name`, verified against `rootFile` alone. */
function opensslVerify(name: string, rootFile: string): Promise<string> {
    const gateway = sandboxState().hosts.gw.address;
    return new Promise((resolve, reject) => {
        const child = execFile(
            "openssl",
            ["s_client", "-connect", `${gateway}:443`, "-servername", name, "-CAfile", rootFile, "-verify_return_error", "-verify_hostname", name, "-brief"],
            { timeout: 20000 },
            (err, stdout, stderr) => (err ? reject(new Error(`openssl s_client ${name}: ${err.message}\n${stderr}`)) : resolve(`${stdout}${stderr}`)),
        );
        child.stdin?.end();
    });
}

describe("e2e: certificates from an ACME server (Pebble) per service, renewed on the gateway", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("acme");
    let project: PulumiProject;
    let pebble: PebbleServer;
    let root: string;
    let rootFile: string;
    before(async () => {
        const state = sandboxState();
        pebble = await startPebble({ bridgeAddress: state.bridgeAddress, gatewayAddress: state.hosts.gw.address, domain });
        root = await pebble.root();
        rootFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-acme-root-")), "root.pem");
        fs.writeFileSync(rootFile, root);
    });
    after(async () => {
        await pebble?.stop();
        if (rootFile) fs.rmSync(path.dirname(rootFile), { recursive: true, force: true });
    });
    beforeEach(() => (project = stack()));
    afterEach(function () {
        if (this.currentTest?.state === "failed") console.log(`--- pebble and challtestsrv ---\n${pebble?.logs()}`);
    });

    it("two services get a certificate each over HTTP-01; HTTPS serves chains that verify against Pebble's root; HTTP redirects", async () => {
        project.setConfig(acmeStack(pebble, [{ name: "chat" }, { name: "code" }]));
        await project.up();
        for (const service of ["chat", "code"]) {
            const answer = await chatOverTls(service, domain, root);
            assert.strictEqual(answer.status, 200, answer.body);
            assert.strictEqual(answer.subjectAltName, `DNS:${service}.${domain}`, "one certificate per service name");
            assert.ok(answer.chainLength >= 3, `leaf, Pebble's intermediate and root: ${answer.chainLength}`);
            assert.match(await opensslVerify(`${service}.${domain}`, rootFile), /Verification: OK/);
        }
        // Plain HTTP: redirected, the path kept; the challenge path is the webroot's (a missing token is a 404, not a redirect).
        const redirect = await plainHttp("chat", domain, "/v1/models?x=1");
        assert.deepStrictEqual([redirect.status, redirect.location], [308, `https://chat.${domain}/v1/models?x=1`]);
        assert.strictEqual((await plainHttp("code", domain, "/.well-known/acme-challenge/no-such-token")).status, 404);
        const outputs = JSON.parse((await project.run(["stack", "output", "--json"])).stdout) as { endpoints: Record<string, string> };
        assert.deepStrictEqual(outputs.endpoints, { chat: `https://chat.${domain}`, code: `https://code.${domain}` });
        const timer = await onHost("gw", "systemctl is-enabled sglang-gateway-acme-renew.timer; systemctl is-active sglang-gateway-acme-renew.timer");
        assert.deepStrictEqual(timer.trim().split("\n"), ["enabled", "active"]);
    });

    it("renewal: the CA asks for it (ARI); the timer's service renews chat's certificate and nginx serves it, no request failing; code's is not due", async () => {
        const before: Record<string, TlsAnswer> = { chat: await chatOverTls("chat", domain, root), code: await chatOverTls("code", domain, root) };
        await pebble.askRenewal(await onHost("gw", `cat ${live("chat")}/cert.pem`));
        const answers: (TlsAnswer | Error)[] = [];
        let running = true;
        const loop = (async () => {
            while (running && answers.length < 2000) {
                answers.push(await chatOverTls("chat", domain, root).catch((err: Error) => err));
                await new Promise((r) => setTimeout(r, 50));
            }
        })();
        let journal: string;
        try {
            // What the timer starts: a oneshot service; `start` returns when its run ended (and fails if it failed).
            await onHost("gw", "systemctl start sglang-gateway-acme-renew.service");
            journal = await onHost("gw", "journalctl -u sglang-gateway-acme-renew.service -n 40 --no-pager");
            await new Promise((r) => setTimeout(r, 1000));
        } finally {
            running = false;
            await loop;
        }
        const failed = answers.filter((a) => a instanceof Error || a.status !== 200);
        const served = answers.filter((a): a is TlsAnswer => !(a instanceof Error));
        console.log(
            `      renewal: ${answers.length} HTTPS requests during the run, ${failed.length} failed; ` +
                `${served.filter((a) => a.serial === before.chat.serial).length} on the old certificate, ${served.filter((a) => a.serial !== before.chat.serial).length} on the new`,
        );
        assert.deepStrictEqual(failed, [], "requests failed during the renewal");
        assert.ok(answers.length > 0);
        const after = { chat: await chatOverTls("chat", domain, root), code: await chatOverTls("code", domain, root) };
        assert.notStrictEqual(after.chat.serial, before.chat.serial, `chat's certificate was not renewed:\n${journal}`);
        assert.match(journal, /chat\.sandbox\.test|live\/chat/);
        assert.strictEqual(after.code.serial, before.code.serial, "code's certificate is not due and must stay");
        // nginx serves the file certbot wrote (the deploy hook reloaded it).
        const onDisk = await onHost("gw", `openssl x509 -noout -serial -in ${live("chat")}/cert.pem`);
        assert.strictEqual(
            onDisk
                .trim()
                .replace(/^serial=/, "")
                .replace(/^0+/, ""),
            after.chat.serial.replace(/^0+/, ""),
        );
        assert.ok(
            answers.some((a) => !(a instanceof Error) && a.serial === after.chat.serial),
            "the loop never saw the new certificate",
        );
    });

    it("a refused order fails up, naming the name and the CA's answer; nginx and the other services keep serving", async () => {
        const state = sandboxState();
        // The CA resolves bad.<domain> to r1, whose nginx knows no challenge: validation fails there.
        await pebble.answer(`bad.${domain}`, state.hosts.r1.address);
        project.setConfig(acmeStack(pebble, [{ name: "chat" }, { name: "code" }, { name: "bad", replicas: 0 }]));
        const failed = await project.up().then(
            () => undefined,
            (err: Error) => err,
        );
        assert.ok(failed, "up succeeded with a certificate the CA could not validate");
        assert.match(failed.message, /the ACME server https:\/\/\S+\/dir issued no certificate for bad\.sandbox\.test/);
        assert.match(failed.message, /Identifier: bad\.sandbox\.test/);
        // Pebble's problem detail: it fetched the challenge from r1, which answered 404.
        assert.match(failed.message, /Type:\s+unauthorized/);
        assert.match(failed.message, /Detail: .*http:\/\/bad\.sandbox\.test(:80)?\/\.well-known\/acme-challenge\/\S+ returned 404/);

        // A name the CA's policy refuses: the order itself is rejected.
        project.setConfig(acmeStack(pebble, [{ name: "chat" }, { name: "code" }, { name: "blocked", replicas: 0 }]));
        const refused = await project.up().then(
            () => undefined,
            (err: Error) => err,
        );
        assert.ok(refused, "up succeeded with a name the CA refuses");
        assert.match(refused.message, /issued no certificate for blocked\.sandbox\.test/);
        assert.match(refused.message, /forbidden by policy/);

        // Nothing of either is on the gateway, and nginx was never pointed at a missing file.
        const gw = await onHost("gw", `nginx -t 2>&1; ls /etc/nginx/sglang-gateway/services; ls ${live("")} | grep -v README || true`);
        assert.match(gw, /test is successful/);
        assert.doesNotMatch(gw, /bad|blocked/);
        for (const service of ["chat", "code"]) {
            assert.strictEqual((await chatOverTls(service, domain, root)).status, 200);
        }
        await pebble.forget(`bad.${domain}`);
        project.setConfig(acmeStack(pebble, [{ name: "chat" }, { name: "code" }]));
        await project.up();
    });

    it("destroy leaves no timer, unit, certificate, account or client on the gateway; nginx still runs", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        const left = await onHost(
            "gw",
            "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; " +
                "ls -d /etc/sglang-gateway /opt/sglang-gateway /var/lib/sglang-gateway /var/log/sglang-gateway /etc/nginx/sglang-gateway /etc/nginx/conf.d/sglang-gateway* 2>/dev/null || true",
        );
        assert.strictEqual(left.trim(), "", `left on the gateway: ${left}`);
        assert.strictEqual((await onHost("gw", "systemctl is-active nginx")).trim(), "active");
    });
});
