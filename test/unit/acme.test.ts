// Certificates from an ACME server: which domains get Let's Encrypt by default, the steps and their order under
// mocks, the files they write (real nginx -t), and the scripts run against a stand-in certbot that answers with
// certbot 5.8.0's own words (recorded against Pebble).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { buildStack, ConfigError, parseStackConfig } from "../../components";
import { acmeGatewayStep } from "../../components/certificates/acme";
import { certificateSource, isPublicDomain, letsEncryptDirectory } from "../../components/config";
import { serverBlockText } from "../../components/host-files/server-block";
import { render } from "../../components/templates";
import { AwsMocks } from "../helpers/aws-mocks";
import { recordDependencies, settle, valueOf } from "../helpers/mocks";
import { nginxTest } from "../helpers/nginx";
import { awsStack, sshStack, testKey } from "../helpers/stack-configs";
import { selfSignedCert } from "../helpers/tls";

const publicDomain = "llm.sglang-gateway.dev";
const hostScript = (name: string) => `pulumi-nodejs:dynamic/sglang-gateway:HostScript::${name}`;

/** The ssh stack with a plain (router-less) gateway on `domain`, `gateway` fields merged in. */
function stackOn(domain: string, gateway: Record<string, unknown> = {}) {
    const stack = sshStack(1, { router: null });
    return { ...stack, gateway: { ...stack.gateway, domain, ...gateway } };
}

async function build(raw: unknown) {
    const mocks = new AwsMocks({ region: "eu-west-1" });
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    const dependencies = recordDependencies();
    const { gateway, services } = buildStack(raw, {});
    const urns = new Map<string, string>();
    for (const r of [gateway.setup, gateway.acme, ...services.flatMap((s) => [s.certificate, s.serverBlock])]) {
        if (r) urns.set(await valueOf(r.urn).then((u) => u.split("::").pop() as string), await valueOf(r.urn));
    }
    await settle();
    const dependsOn = (name: string, on: string) => (dependencies.get(hostScript(name)) ?? []).includes(urns.get(on) ?? `(no ${on})`);
    return { mocks, gateway, services, dependencies, dependsOn };
}

/** Runs a rendered script as an activation line runs (bash, set -euo pipefail); `certbot` is a stand-in at that path. */
function runScript(script: string, env: NodeJS.ProcessEnv = {}) {
    return spawnSync("bash", ["-c", `set -euo pipefail\n${script}`], { encoding: "utf8", env: { ...process.env, ...env } });
}

/** A stand-in certbot: appends its arguments to `$CALLS`, then answers per subcommand from `$ANSWERS/<subcommand>.{out,code}`. */
function standInCertbot(dir: string): string {
    const file = path.join(dir, "certbot");
    fs.writeFileSync(
        file,
        [
            "#!/bin/bash",
            'echo "$*" >>"$CALLS"',
            'verb=$1; [ -f "$ANSWERS/$verb.out" ] && cat "$ANSWERS/$verb.out"',
            'exit "$(cat "$ANSWERS/$verb.code" 2>/dev/null || echo 0)"',
            "",
        ].join("\n"),
        { mode: 0o755 },
    );
    return file;
}

/** certbot 5.8.0's output when Pebble could not validate a name (stdout and stderr, as the script captures both). */
const refusedOrder = `Saving debug log to /var/log/sglang-gateway/acme/letsencrypt.log
Requesting a certificate for bad.sandbox.test

Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:
  Identifier: bad.sandbox.test
  Type:   unauthorized
  Detail: Non-200 status code from HTTP: http://bad.sandbox.test/.well-known/acme-challenge/Zctx returned 404

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot.
Some challenges have failed.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/sglang-gateway/acme/letsencrypt.log or re-run Certbot with -v for more details.
`;

describe("ACME certificates", () => {
    describe("which domain gets what", () => {
        for (const [domain, expected] of [
            ["llm.sglang-gateway.dev", true],
            ["gateway.co.uk", true],
            ["sandbox.test", false],
            ["chat.corp.internal", false],
            ["printer.local", false],
            ["router.home.arpa", false],
            ["example.com", false],
            ["llm.example.org", false],
            ["x.example", false],
            ["a.localhost", false],
            ["hidden.onion", false],
            ["name.alt", false],
            ["test.dev", true],
            ["examples.com", true],
        ] as const) {
            it(`${domain} is ${expected ? "public" : "reserved"}`, () => assert.strictEqual(isPublicDomain(domain), expected));
        }

        it("no certificate and no tls: Let's Encrypt for a public domain, HTTP only for a reserved one; tls is the user's", () => {
            const source = (domain: string, extra: Record<string, unknown> = {}) => certificateSource(parseStackConfig(stackOn(domain, extra)).gateway);
            assert.deepStrictEqual(source(publicDomain), { source: "acme", acme: { server: letsEncryptDirectory } });
            assert.deepStrictEqual(source("sandbox.test"), { source: "none" });
            assert.deepStrictEqual(source(publicDomain, { tls: { certificate: "C", privateKey: "K" } }), { source: "tls" });
            assert.deepStrictEqual(source(publicDomain, { certificate: "none" }), { source: "none" });
            assert.deepStrictEqual(source("sandbox.test", { certificate: { acme: { server: "https://10.0.0.1:14000/dir" } } }), {
                source: "acme",
                acme: { server: "https://10.0.0.1:14000/dir" },
            });
        });

        it("a bad HMAC key is named by its path and never echoed", () => {
            const raw = stackOn(publicDomain, { certificate: { acme: { eab: { kid: "k1", hmacKey: "not base64 !secret!" } } } });
            assert.throws(
                () => parseStackConfig(raw),
                (err: ConfigError) =>
                    err instanceof ConfigError &&
                    err.problems.some((p) => p.startsWith("gateway.certificate.acme.eab.hmacKey: ") && p.includes("got a secret value")) &&
                    !err.message.includes("!secret!"),
            );
        });
    });

    describe("the steps (mocks)", () => {
        it("a public domain: the gateway's ACME step after its setup; each service's certificate after it and before the server block", async () => {
            const { mocks, services, dependsOn } = await build(stackOn(publicDomain));
            assert.ok(dependsOn("gw-acme", "gw-setup"), "the ACME step runs after the setup (nginx, directories)");
            assert.ok(dependsOn("chat-certificate", "gw-acme"), "a certificate needs the client, the account and the challenge server");
            assert.ok(dependsOn("chat-server", "chat-certificate"), "nginx is pointed at the certificate only once it exists");
            const server = String(mocks.named("chat-server").inputs.create);
            assert.match(server, /listen 443 ssl;\n\s+ssl_certificate \/etc\/sglang-gateway\/acme\/live\/chat\/fullchain\.pem;/);
            assert.match(server, /ssl_certificate_key \/etc\/sglang-gateway\/acme\/live\/chat\/privkey\.pem;/);
            assert.doesNotMatch(server, /listen 80;/, "the gateway's port-80 server answers HTTP (challenges first)");
            const acme = String(mocks.named("gw-acme").inputs.create);
            assert.match(acme, new RegExp(`server = ${letsEncryptDirectory.replace(/[./]/g, "\\$&")}`));
            assert.match(acme, /server_name \*\.llm\.sglang-gateway\.dev;/);
            assert.match(acme, /certbot==5\.8\.0/);
            assert.match(acme, /register --agree-tos --register-unsafely-without-email/);
            assert.match(acme, /systemctl enable --now sglang-gateway-acme-renew\.timer/);
            assert.match(String(mocks.named("gw-setup").inputs.create), /python3-venv/, "the client's virtualenv needs it");
            const certificate = String(mocks.named("chat-certificate").inputs.create);
            assert.match(certificate, /certonly --webroot -w \/var\/lib\/sglang-gateway\/acme\/webroot --cert-name chat -d chat\.llm\.sglang-gateway\.dev /);
            const removal = String(mocks.named("chat-certificate").inputs.delete);
            for (const gone of ["live/chat", "archive/chat", "renewal/chat.conf"]) {
                assert.match(removal, new RegExp(`rm -rf /etc/sglang-gateway/acme/${gone.replace(".", "\\.")}\n`));
            }
            assert.match(String(mocks.named("gw-acme").inputs.delete), /systemctl disable --now sglang-gateway-acme-renew\.timer/);
            assert.strictEqual(await valueOf(services[0].url), `https://chat.${publicDomain}`);
        });

        it("a reserved domain (every existing test stack's): no ACME step, no certificate, HTTP on port 80 as before", async () => {
            const { mocks } = await build(stackOn("sandbox.test"));
            const names = mocks.resources.map((r) => r.name);
            assert.ok(!names.includes("gw-acme") && !names.includes("chat-certificate"), names.join(", "));
            assert.match(String(mocks.named("chat-server").inputs.create), /listen 80;/);
            assert.doesNotMatch(String(mocks.named("gw-setup").inputs.create), /python3-venv/, "a plain gateway without ACME installs no Python");
        });

        it("an external account binding: the HMAC key is only in the root-only cli.ini of a secret script, never in a summary", async () => {
            const hmacKey = "c2VjcmV0LWhtYWMta2V5LWZvci10aGUtdGVzdA";
            const { mocks } = await build(
                stackOn(publicDomain, { certificate: { acme: { email: "ops@sglang-gateway.dev", eab: { kid: "kid-7", hmacKey } } } }),
            );
            const acme = mocks.named("gw-acme");
            assert.ok(acme.secretInputs.includes("create"), "the script is secret");
            assert.match(String(acme.inputs.create), new RegExp(`eab-kid = kid-7\neab-hmac-key = ${hmacKey}\n`));
            assert.match(String(acme.inputs.create), /install -m 0600 "\$stage\/1\.new" \/etc\/sglang-gateway\/acme\/cli\.ini/);
            assert.ok(!JSON.stringify(acme.inputs.summary).includes(hmacKey), "a preview shows the summary");
            assert.match(String(acme.inputs.create), /register --agree-tos --email ops@sglang-gateway\.dev --no-eff-email/);
        });

        it("aws: the ACME step waits for the wildcard record; the gateway's security group opens 80 and 443", async () => {
            const raw = awsStack(1, { gateway: { domain: publicDomain } });
            const { mocks, dependencies, gateway } = await build(raw);
            assert.deepStrictEqual(mocks.violations(), []);
            assert.ok(gateway.acme);
            assert.strictEqual(mocks.named("gw-wildcard").inputs.name, `*.${publicDomain}`);
            const acmeDeps = dependencies.get(hostScript("gw-acme")) ?? [];
            assert.ok(
                acmeDeps.some((urn) => urn.endsWith("::gw-wildcard")),
                `gw-acme depends on ${acmeDeps.join(", ")}`,
            );
            const sg = mocks.ofType("aws:ec2/securityGroup:SecurityGroup").find((r) => r.name === "gw-gateway");
            const open = (sg?.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[])
                .filter((r) => r.cidrBlocks.includes("0.0.0.0/0"))
                .map((r) => r.fromPort);
            assert.ok(open.includes(80) && open.includes(443), `${open}`);
        });

        it("a domain known only at deploy time: HTTP only, and a warning that says how to choose", async () => {
            pulumi.runtime.setMocks(new AwsMocks({ region: "eu-west-1" }), "sglang-gateway", "test", false);
            const warnings: string[] = [];
            const original = pulumi.log.warn;
            pulumi.log.warn = (message: string) => {
                warnings.push(message);
                return Promise.resolve();
            };
            try {
                const { Gateway } = require("../../components") as typeof import("../../components");
                const gateway = new Gateway("gw", { backend: "ssh", host: "10.0.0.2", domain: pulumi.output(publicDomain), privateKey: testKey });
                assert.strictEqual(gateway.acme, undefined);
                assert.deepStrictEqual(gateway.certificates, { source: "none" });
                await settle();
            } finally {
                pulumi.log.warn = original;
            }
            assert.ok(
                warnings.some((w) => /known only at deploy time.*set certificate: letsencrypt/.test(w)),
                warnings.join("\n"),
            );
        });
    });

    describe("the files", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-acme-"));
        after(() => fs.rmSync(dir, { recursive: true, force: true }));
        const acme = { server: "https://acme.sglang-gateway.dev/directory", caBundle: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" };
        const step = acmeGatewayStep("gw", publicDomain, acme);
        const fileText = async (file: string) => valueOf(pulumi.output(step.write.find((f) => f.path === file)?.content ?? "(missing)"));

        it("nginx -t: the port-80 server of every service name beside HTTPS-only service blocks; challenges are served, the rest redirected", async () => {
            pulumi.runtime.setMocks(new AwsMocks({ region: "eu-west-1" }), "sglang-gateway", "test", false);
            const http = await fileText("/etc/nginx/conf.d/sglang-gateway-acme.conf");
            const { certificatePath: cert, privateKeyPath: key } = selfSignedCert();
            const block = (service: string) =>
                serverBlockText({
                    service,
                    serverName: `${service}.${publicDomain}`,
                    auth: false,
                    tokens: [],
                    upstreamServers: ["127.0.0.1:10042"],
                    rateLimits: [],
                    tls: { certificatePath: cert, privateKeyPath: key, httpElsewhere: true },
                });
            nginxTest({ services: { "chat.conf": block("chat"), "code.conf": block("code"), "_acme.conf": http.replace("/var/log/nginx/", `${dir}/`) } });
            assert.match(http, /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+root \/var\/lib\/sglang-gateway\/acme\/webroot;/);
            assert.match(http, /location \/ \{\n\s+return 308 https:\/\/\$host\$request_uri;/);
            assert.doesNotMatch(block("chat"), /listen 80;|\$scheme = http/);
        });

        it("certbot runs with the gateway's settings file and, for a private ACME server, its CA bundle", async () => {
            pulumi.runtime.setMocks(new AwsMocks({ region: "eu-west-1" }), "sglang-gateway", "test", false);
            const wrapper = await fileText("/opt/sglang-gateway/acme/certbot");
            assert.match(wrapper, /^REQUESTS_CA_BUNDLE=\/etc\/sglang-gateway\/acme\/server-ca\.pem$/m);
            assert.match(wrapper, /^exec \/opt\/sglang-gateway\/acme\/certbot-5\.8\.0\/bin\/certbot --config \/etc\/sglang-gateway\/acme\/cli\.ini "\$@"$/m);
            const ini = await fileText("/etc/sglang-gateway/acme/cli.ini");
            assert.match(ini, /^server = https:\/\/acme\.sglang-gateway\.dev\/directory$/m);
            assert.match(ini, /^config-dir = \/etc\/sglang-gateway\/acme$/m);
            assert.doesNotMatch(ini, /eab-/);
            assert.strictEqual(step.write.find((f) => f.path === "/etc/sglang-gateway/acme/cli.ini")?.mode, "0600");
            assert.strictEqual(await fileText("/etc/sglang-gateway/acme/server-ca.pem"), acme.caBundle);
            const noBundle = acmeGatewayStep("gw", publicDomain, { server: letsEncryptDirectory }).write.find(
                (f) => f.path === "/opt/sglang-gateway/acme/certbot",
            );
            assert.doesNotMatch(String(noBundle?.content), /REQUESTS_CA_BUNDLE/, "Let's Encrypt: the client's own public roots");
        });

        it("renewal: a timer twice a day at a random time, catching up after downtime; its oneshot service runs the renewal script", async () => {
            pulumi.runtime.setMocks(new AwsMocks({ region: "eu-west-1" }), "sglang-gateway", "test", false);
            const timer = await fileText("/etc/systemd/system/sglang-gateway-acme-renew.timer");
            assert.match(timer, /^OnCalendar=\*-\*-\* 00,12:00:00$/m);
            assert.match(timer, /^RandomizedDelaySec=12h$/m);
            assert.match(timer, /^Persistent=true$/m);
            assert.match(timer, /^WantedBy=timers\.target$/m);
            const service = await fileText("/etc/systemd/system/sglang-gateway-acme-renew.service");
            assert.match(service, /^Type=oneshot$/m);
            assert.match(service, /^ExecStart=\/opt\/sglang-gateway\/acme\/renew\.sh$/m);
        });

        it("the renewal holds the host's change lock while certbot runs, asks for no random sleep, and reloads nginx per renewed certificate", () => {
            const lockDir = path.join(dir, "run");
            const certbot = standInCertbot(dir);
            const calls = path.join(dir, "renew-calls");
            // The stand-in tries the lock itself: it must be held by the renewal.
            fs.writeFileSync(
                path.join(dir, "certbot-lock-check"),
                `#!/bin/bash\nflock -n ${lockDir}/apply.lock true && echo "lock free" >>"$CALLS" || echo "lock held" >>"$CALLS"\nexec ${certbot} "$@"\n`,
                { mode: 0o755 },
            );
            const script = render("scripts/acme-renew.sh.njk", {
                gatewayName: "gw",
                certbot: path.join(dir, "certbot-lock-check"),
                cliIni: "/dev/null",
                lockDir,
                lockFile: `${lockDir}/apply.lock`,
                reload: "nginx -t -q && systemctl reload nginx",
            });
            const result = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, CALLS: calls, ANSWERS: dir } });
            assert.strictEqual(result.status, 0, result.stderr);
            assert.deepStrictEqual(fs.readFileSync(calls, "utf8").trim().split("\n"), [
                "lock held",
                "renew --no-random-sleep-on-renew --deploy-hook nginx -t -q && systemctl reload nginx",
            ]);
        });
    });

    describe("the scripts, against a stand-in certbot", () => {
        let dir: string;
        beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-acme-script-"))));
        afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
        const answer = (verb: string, out: string, code: number) => {
            fs.writeFileSync(path.join(dir, `${verb}.out`), out);
            fs.writeFileSync(path.join(dir, `${verb}.code`), String(code));
        };
        const certificateScript = (certbot: string) =>
            render("scripts/acme-certificate.sh.njk", {
                certbot,
                server: "https://10.213.7.1:14000/dir",
                webroot: "/var/lib/sglang-gateway/acme/webroot",
                logsDir: "/var/log/sglang-gateway/acme",
                certName: "bad",
                renewalConf: path.join(dir, "bad.conf"),
                serverName: "bad.sandbox.test",
                reload: "nginx -t -q && systemctl reload nginx",
            });

        it("a refused order fails naming the name, the ACME server and the CA's answer, without certbot's boilerplate", () => {
            answer("certonly", refusedOrder, 1);
            const result = runScript(certificateScript(standInCertbot(dir)), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.strictEqual(result.status, 1);
            const lines = result.stderr.trim().split("\n");
            assert.strictEqual(
                lines[0],
                "sglang-gateway: the ACME server https://10.213.7.1:14000/dir issued no certificate for bad.sandbox.test; its answer, as certbot reports it:",
            );
            assert.match(result.stderr, /^ {4}Identifier: bad\.sandbox\.test$/m);
            assert.match(result.stderr, /^ {4}Type: {3}unauthorized$/m);
            assert.match(result.stderr, /^ {4}Detail: Non-200 status code from HTTP: .* returned 404$/m);
            assert.doesNotMatch(result.stderr, /Saving debug log|Ask for help|Hint:/);
            assert.match(lines[lines.length - 1], /certbot's log on the gateway: \/var\/log\/sglang-gateway\/acme\/letsencrypt\.log/);
            assert.match(
                fs.readFileSync(path.join(dir, "calls"), "utf8"),
                /--keep-until-expiring --renew-with-new-domains --deploy-hook nginx -t -q && systemctl reload nginx/,
            );
        });

        it("an issued (or kept) certificate succeeds quietly", () => {
            answer("certonly", "Certificate not yet due for renewal; no action taken.\n", 0);
            const result = runScript(certificateScript(standInCertbot(dir)), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.strictEqual(result.status, 0, result.stderr);
            assert.strictEqual(result.stderr, "");
        });

        it("a certificate another ACME server issued (the config's server changed) is replaced now, not at its renewal", () => {
            answer("certonly", "", 0);
            const env = { CALLS: path.join(dir, "calls"), ANSWERS: dir };
            fs.writeFileSync(path.join(dir, "bad.conf"), "version = 5.8.0\n[renewalparams]\nserver = https://10.213.7.1:14000/dir\n");
            runScript(certificateScript(standInCertbot(dir)), env);
            fs.writeFileSync(path.join(dir, "bad.conf"), "version = 5.8.0\n[renewalparams]\nserver = https://acme-staging-v02.api.letsencrypt.org/directory\n");
            runScript(certificateScript(standInCertbot(dir)), env);
            const [same, other] = fs.readFileSync(env.CALLS, "utf8").trim().split("\n");
            assert.doesNotMatch(same, /--force-renewal/);
            assert.match(other, /--force-renewal$/);
        });

        const accountScript = (certbot: string, email: string) =>
            render("scripts/acme-account.sh.njk", { certbot, server: "https://ca.example.dev/dir", email });

        it("the account: registered once when there is none, agreeing to the terms, with the contact configured", () => {
            answer("show_account", "Could not find an existing account for server https://ca.example.dev/dir.\n", 1);
            const result = runScript(accountScript(standInCertbot(dir), "ops@example.dev"), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.strictEqual(result.status, 0, result.stderr);
            assert.deepStrictEqual(fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"), [
                "show_account",
                "register --agree-tos --email ops@example.dev --no-eff-email",
            ]);
        });

        it("the account: kept when it exists; its contact updated when the configured one differs", () => {
            answer("show_account", "Account details for server https://ca.example.dev/dir:\n  Email contact: old@example.dev\n", 0);
            runScript(accountScript(standInCertbot(dir), "old@example.dev"), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.deepStrictEqual(fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"), ["show_account"]);
            fs.rmSync(path.join(dir, "calls"));
            runScript(accountScript(standInCertbot(dir), "new@example.dev"), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.deepStrictEqual(fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"), [
                "show_account",
                "update_account --email new@example.dev --no-eff-email",
            ]);
        });

        it("the account: an unreachable server or a refused registration fails naming the server and certbot's answer", () => {
            answer("show_account", "Could not find an existing account for server https://ca.example.dev/dir.\n", 1);
            answer(
                "register",
                "Unable to register an account with ACME server. Server requires external account binding. Please use --eab-kid and --eab-hmac-key.\n",
                1,
            );
            const refused = runScript(accountScript(standInCertbot(dir), ""), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.strictEqual(refused.status, 1);
            assert.match(
                refused.stderr,
                /the ACME server https:\/\/ca\.example\.dev\/dir did not register this gateway's account:\n {2}Unable to register .*external account binding/,
            );
            answer(
                "show_account",
                "An unexpected error occurred:\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='ca.example.dev', port=443)\n",
                1,
            );
            const down = runScript(accountScript(standInCertbot(dir), ""), { CALLS: path.join(dir, "calls"), ANSWERS: dir });
            assert.strictEqual(down.status, 1);
            assert.match(
                down.stderr,
                /cannot look up this gateway's account at the ACME server https:\/\/ca\.example\.dev\/dir:\n.*\n {2}requests\.exceptions\.ConnectionError/,
            );
        });
    });
});
