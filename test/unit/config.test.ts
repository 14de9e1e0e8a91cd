// The bad-config catalog, through the entry point `pulumi up` runs (index.ts: buildStack(readStackConfig()),
// the stack config keys handed over as the engine does): each bad config reports its own problem, at its
// exact path, no unrelated one, and registers no resource.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { buildStack, ConfigError, Gateway, ModelEndpoint, parseStackConfig, readStackConfig, Service, type GatewayArgs } from "../../components";
import { resolveEnv } from "../../components/env";
import { portSlot } from "../../components/naming";
import { RecordingMocks, settle } from "../helpers/mocks";
import { sshStack, awsStack } from "../helpers/stack-configs";

type Stack = Omit<ReturnType<typeof sshStack>, "tokens"> & { tokens: Record<string, string[]> };
type Case = [title: string, change: (s: Stack & Record<string, unknown>) => void, path: string, says?: RegExp];

const gw = (s: Stack) => s.gateway as Record<string, unknown>;
const svc = (s: Stack, i = 0) => s.services[i] as Record<string, unknown>;

/** Makes services[0] a PD service (1 prefill + 1 decode on the service's hosts), roles deep-merged with `roles`. */
function pd(s: Stack, roles: { prefill?: Record<string, unknown>; decode?: Record<string, unknown> } = {}, router?: unknown) {
    delete svc(s).replicas;
    // One host per role: on a shared host both roles would take the service's port.
    svc(s).pd = {
        prefill: { replicas: 1, hosts: [{ host: "10.213.0.3" }], ...roles.prefill },
        decode: { replicas: 1, hosts: [{ host: "10.213.0.4" }], ...roles.decode },
    };
    if (router === null) {
        delete gw(s).router;
    } else if (router !== undefined) {
        gw(s).router = router;
    }
}

/** Another service name whose port slot is `name`'s. */
function slotTwin(name: string): string {
    for (let i = 0; ; i++) {
        if (`svc-${i}` !== name && portSlot(`svc-${i}`) === portSlot(name)) {
            return `svc-${i}`;
        }
    }
}

/** Runs the stack program's entry point on `raw` as stack config; returns its problems and what it registered. */
function runProgram(raw: Record<string, unknown>, mocks = new RecordingMocks()): { problems: string[]; registered: number } {
    pulumi.runtime.setMocks(mocks, "sglang-gateway", "test", false);
    // The engine hands each structured key over as JSON text, secrets decrypted.
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(raw)) {
        config[`sglang-gateway:${key}`] = JSON.stringify(value);
    }
    pulumi.runtime.setAllConfig(config, ["sglang-gateway:tokens"]);
    try {
        buildStack(readStackConfig(), {});
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
        return { problems: err.problems, registered: mocks.resources.length };
    }
    return { problems: [], registered: mocks.resources.length };
}

function problemsOf(raw: unknown): string[] {
    return runProgram(raw as Record<string, unknown>).problems;
}

const catalog: Case[] = [
    ["gateway type is not gateway", (s) => (gw(s).type = "service"), "gateway.type", /expected 'gateway'/],
    ["gateway name is not a DNS label", (s) => (gw(s).name = "My Gateway"), "gateway.name", /DNS label/],
    ["domain without a dot", (s) => (gw(s).domain = "localhost"), "gateway.domain", /domain name/],
    ["domain with a space", (s) => (gw(s).domain = "exa mple.com"), "gateway.domain"],
    ["unknown backend", (s) => (gw(s).backend = "gcp"), "gateway.backend", /aws or ssh/],
    ["ssh backend without a key", (s) => delete gw(s).privateKey, "gateway.privateKey", /required/],
    ["both privateKey and privateKeyPath", (s) => (gw(s).privateKeyPath = "~/.ssh/id"), "gateway.privateKeyPath", /not both/],
    ["ssh backend without a host", (s) => delete gw(s).host, "gateway.host", /required/],
    ["ssh port out of range", (s) => (gw(s).port = 70000), "gateway.port", /1 to 65535/],
    ["ssh port as a string", (s) => (gw(s).port = "22"), "gateway.port", /port number/],
    ["unknown router shorthand", (s) => (gw(s).router = "nginx"), "gateway.router", /sglang/],
    ["unknown router type", (s) => (gw(s).router = { type: "vllm" }), "gateway.router.type", /sglang/],
    [
        "unknown policy",
        (s) => (gw(s).router = { type: "sglang", policy: "least_loaded" }),
        "gateway.router.policy",
        /expected one of cache_aware, round_robin, random, least_load, prefix_hash, consistent_hashing \(smg 1\.13\.0\)/,
    ],
    ["router version not exact", (s) => (gw(s).router = { type: "sglang", version: "latest" }), "gateway.router.version", /exact version/],
    ["router indexUrl not a URL", (s) => (gw(s).router = { type: "sglang", indexUrl: "pypi" }), "gateway.router.indexUrl", /URL/],
    ["unknown key in the router", (s) => (gw(s).router = { type: "sglang", polcy: "random" }), "gateway.router.polcy", /unknown key/],
    ["unknown key in the gateway", (s) => (gw(s).regoin = "eu-west-1"), "gateway.regoin", /unknown key/],
    ["aws key on the ssh backend", (s) => (gw(s).vpcId = "vpc-1"), "gateway.vpcId", /unknown key/],
    ["service type is not service", (s) => (svc(s).type = "task"), "services[0].type", /expected 'service'/],
    ["service name with an underscore", (s) => (svc(s).name = "my_service"), "services[0].name", /DNS label/],
    ["service name too long", (s) => (svc(s).name = "a".repeat(64)), "services[0].name", /DNS label/],
    ["negative replicas", (s) => (svc(s).replicas = -1), "services[0].replicas", /0 to 64/],
    ["fractional replicas", (s) => (svc(s).replicas = 1.5), "services[0].replicas", /whole number/],
    ["replicas as a string", (s) => (svc(s).replicas = "2"), "services[0].replicas", /whole number/],
    ["too many replicas", (s) => (svc(s).replicas = 65), "services[0].replicas", /0 to 64/],
    ["port 0", (s) => (svc(s).port = 0), "services[0].port", /1 to 65535/],
    ["port 65536", (s) => (svc(s).port = 65536), "services[0].port", /1 to 65535/],
    ["model missing", (s) => delete svc(s).model, "services[0].model", /required/],
    ["neither commands nor image", (s) => delete svc(s).commands, "services[0].commands", /commands, image, or both/],
    ["commands not a list", (s) => (svc(s).commands = "python -m x"), "services[0].commands", /list of shell commands/],
    ["rps zero", (s) => (svc(s).rate_limits = [{ rps: 0 }]), "services[0].rate_limits[0].rps", /rps > 0/],
    ["rps negative", (s) => (svc(s).rate_limits = [{ rps: -3 }]), "services[0].rate_limits[0].rps", /rps > 0/],
    ["negative burst", (s) => (svc(s).rate_limits = [{ rps: 1, burst: -1 }]), "services[0].rate_limits[0].burst", /burst >= 0/],
    ["rate limit prefix without slash", (s) => (svc(s).rate_limits = [{ rps: 1, prefix: "v1/" }]), "services[0].rate_limits[0].prefix", /starting with '\/'/],
    [
        "rate limit key header with a space",
        (s) => (svc(s).rate_limits = [{ rps: 1, key: { header: "X Api" } }]),
        "services[0].rate_limits[0].key.header",
        /header name/,
    ],
    ["rate limit key unknown", (s) => (svc(s).rate_limits = [{ rps: 1, key: "cookie" }]), "services[0].rate_limits[0].key", /'ip' or \{header: NAME\}/],
    ["service router policy unknown", (s) => (svc(s).router = { policy: "fastest" }), "services[0].router.policy", /cache_aware/],
    ["auth not a boolean", (s) => (svc(s).auth = "yes"), "services[0].auth", /true or false/],
    ["env with a bad name", (s) => (svc(s).env = ["1BAD=x"]), "services[0].env[0]", /NAME or NAME=VALUE/],
    ["ssh host without an address", (s) => (svc(s).hosts = [{ port: 22 }]), "services[0].hosts[0].host", /required/],
    ["empty hosts list", (s) => (svc(s).hosts = []), "services[0].hosts", /at least one host/],
    ["unknown key in a service", (s) => (svc(s).replica = 2), "services[0].replica", /unknown key/],
    ["duplicate service names", (s) => s.services.push({ ...s.services[0] }), "services[1].name", /duplicate service name.*services\[0\]/],
    ["auth on without a token", (s) => (s.tokens = {}), "tokens.chat", /pulumi config set --secret/],
    ["token too short", (s) => (s.tokens = { chat: ["abc"] }), "tokens.chat[0]", /8-512 characters/],
    ["tokens for an unknown service", (s) => (s.tokens = { chat: ["0123456789"], other: ["0123456789"] }), "tokens.other", /no service has that name/],
    ["ssh backend without replica hosts", (s) => delete svc(s).hosts, "services[0].hosts", /SSH hosts/],
    [
        "policy override without a gateway router",
        (s) => {
            delete gw(s).router;
            svc(s).router = { policy: "random" };
        },
        "services[0].router",
        /needs a router on the gateway/,
    ],
    ["services not a list", (s) => ((s as Record<string, unknown>).services = { name: "chat" }), "services", /list of services/],
    ["unknown top-level key", (s) => ((s as Record<string, unknown>).gatway = {}), "gatway", /unknown key/],
    ["portSlot out of range", (s) => (svc(s).portSlot = 300), "services[0].portSlot", /0 to 299/],
    [
        "rate limit prefix with an opening brace",
        (s) => (svc(s).rate_limits = [{ rps: 1, prefix: "/v1/{x" }]),
        "services[0].rate_limits[0].prefix",
        /braces or ';'/,
    ],
    [
        "rate limit prefix with a closing brace",
        (s) => (svc(s).rate_limits = [{ rps: 1, prefix: "/v1/}" }]),
        "services[0].rate_limits[0].prefix",
        /braces or ';'/,
    ],
    [
        "rate limit prefix with a semicolon",
        (s) => (svc(s).rate_limits = [{ rps: 1, prefix: "/v1/;return" }]),
        "services[0].rate_limits[0].prefix",
        /braces or ';'/,
    ],
    ["rateLimits (documented spelling) checked alike", (s) => (svc(s).rateLimits = [{ rps: 0 }]), "services[0].rateLimits[0].rps", /rps > 0/],
    // Nothing can break out of the file it is written into.
    [
        "a model with a newline (a unit comment would become a directive)",
        (s) => (svc(s).model = "m\nExecStartPre=/bin/sh -c id"),
        "services[0].model",
        /one line of text without control characters/,
    ],
    ["an image with a space", (s) => (svc(s).image = "img --privileged"), "services[0].image", /without spaces or control characters/],
    ["a login user with a space", (s) => (gw(s).user = "root -oProxyCommand=x"), "gateway.user", /login name/],
    ["a replica host's user with a newline", (s) => (svc(s).hosts = [{ host: "10.0.0.3", user: "ops\nx" }]), "services[0].hosts[0].user", /login name/],
    ["an env value with a NUL byte", (s) => (svc(s).env = { A: "x\u0000y" }), "services[0].env.A", /without NUL bytes/],
    ["a command with a NUL byte", (s) => (svc(s).commands = ["echo \u0000"]), "services[0].commands[0]", /without NUL bytes/],
    // Cross-field checks (config/checks.ts), one case each.
    [
        "a router version this library does not install",
        (s) => (gw(s).router = { type: "sglang", version: "0.3.1" }),
        "gateway.router.version",
        /pinned closure: 1\.13\.0 \(smg\), 0\.3\.2 \(sglang-router\)/,
    ],
    [
        "an smg policy on sglang-router 0.3.2",
        (s) => (gw(s).router = { type: "sglang", version: "0.3.2", policy: "least_load" }),
        "gateway.router.policy",
        /expected one of cache_aware, round_robin, random \(sglang-router 0\.3\.2\)/,
    ],
    [
        "gateway power_of_two (refused at start by smg)",
        (s) => (gw(s).router = { type: "sglang", policy: "power_of_two" }),
        "gateway.router.policy",
        /smg refuses to start power_of_two/,
    ],
    [
        "gateway power_of_two on 0.3.2",
        (s) => (gw(s).router = { type: "sglang", version: "0.3.2", policy: "power_of_two" }),
        "gateway.router.policy",
        /sglang-router 0\.3\.2 refuses to start power_of_two/,
    ],
    ["service power_of_two override", (s) => (svc(s).router = { policy: "power_of_two" }), "services[0].router.policy", /refuses to start power_of_two/],
    [
        "hosts on the aws backend",
        (s) => {
            Object.assign(gw(s), { backend: "aws", host: undefined });
            delete gw(s).host;
        },
        "services[0].hosts",
        /setting of the ssh backend.*backend is aws/,
    ],
    ["instanceType on the ssh backend", (s) => (svc(s).instanceType = "g5.xlarge"), "services[0].instanceType", /setting of the aws backend.*backend is ssh/],
    [
        "replica host with privateKey and privateKeyPath",
        (s) => (svc(s).hosts = [{ host: "10.0.0.3", privateKey: "k", privateKeyPath: "~/.ssh/id" }]),
        "services[0].hosts[0].privateKeyPath",
        /not both/,
    ],
    [
        "two services on one port slot",
        (s) => {
            s.services.push({ ...s.services[0], name: slotTwin("chat") });
            s.tokens[slotTwin("chat")] = s.tokens.chat;
        },
        "services[1].portSlot",
        /already taken by 'services\[0\] chat'/,
    ],
    // Prefill/decode disaggregation (pd), one problem each.
    [
        "pd on sglang-router 0.3.2",
        (s) => pd(s, {}, { type: "sglang", version: "0.3.2" }),
        "services[0].pd",
        /0\.3\.2 cannot add prefill and decode workers.*1\.13\.0/,
    ],
    ["pd without a router", (s) => pd(s, {}, null), "services[0].pd", /needs a router on the gateway/],
    ["pd and replicas both", (s) => (pd(s), (svc(s).replicas = 2)), "services[0].replicas", /per role: set pd\.prefill\.replicas and pd\.decode\.replicas/],
    [
        "a pd role with no way to start it",
        (s) => (pd(s, { prefill: { commands: ["serve --disaggregation-mode prefill"] } }), delete svc(s).commands),
        "services[0].pd.decode.commands",
        /commands or image for the decode role/,
    ],
    [
        "a bootstrap port that is the serving port",
        (s) => pd(s, { prefill: { bootstrapPort: 8000 } }),
        "services[0].pd.prefill.bootstrapPort",
        /the bootstrap port of prefill replica 0 \(8000\) is the serving port of prefill replica 0 on host 10\.213\.0\.3; give them different ports/,
    ],
    [
        "prefill ports that overlap on a shared host",
        (s) => pd(s, { prefill: { replicas: 3, bootstrapPort: 8001, hosts: [{ host: "10.213.0.3" }] } }),
        "services[0].pd.prefill.bootstrapPort",
        /the serving port of prefill replica 1 \(8001\) is the bootstrap port of prefill replica 0 on host 10\.213\.0\.3/,
    ],
    [
        "both roles on one host and one port",
        (s) => pd(s, { decode: { hosts: [{ host: "10.213.0.3" }] } }),
        "services[0].port",
        /the serving port of decode replica 0 \(8000\) is the serving port of prefill replica 0 on host 10\.213\.0\.3/,
    ],
    ["bucket for decode", (s) => pd(s, { decode: { policy: "bucket" } }), "services[0].pd.decode.policy", /decode role.*bucket is for the prefill role only/],
    [
        "power_of_two for prefill",
        (s) => pd(s, { prefill: { policy: "power_of_two" } }),
        "services[0].pd.prefill.policy",
        /prefill role: smg refuses to start power_of_two/,
    ],
    [
        "a pd role with an aws setting on ssh",
        (s) => pd(s, { prefill: { instanceType: "g5.xlarge" } }),
        "services[0].pd.prefill.instanceType",
        /setting of the aws backend/,
    ],
    ["a pd role of 65 replicas", (s) => pd(s, { decode: { replicas: 65 } }), "services[0].pd.decode.replicas", /0 to 64/],
    [
        "a pd role without hosts on ssh",
        (s) => (pd(s, { prefill: { hosts: undefined } }), delete svc(s).hosts),
        "services[0].pd.prefill.hosts",
        /list of SSH hosts/,
    ],
    ["a pd role of unknown shape", (s) => pd(s, { prefill: { bootstrap: 9000 } }), "services[0].pd.prefill.bootstrap", /unknown key/],
    ["a bootstrap port out of range", (s) => pd(s, { prefill: { bootstrapPort: 0 } }), "services[0].pd.prefill.bootstrapPort", /1 to 65535/],
    [
        "a replica host key that is not one",
        (s) => (svc(s).hosts = [{ host: "10.0.0.3", hostKey: "AAAAC3NzaC1lZDI1NTE5" }]),
        "services[0].hosts[0].hostKey",
        /SSH host key line/,
    ],
    ["a gateway host key with a newline", (s) => (gw(s).hostKey = "ssh-ed25519 AAAA\nExecStart=/bin/sh"), "gateway.hostKey", /SSH host key line/],
    ["three router processes", (s) => (gw(s).router = { type: "sglang", processes: 3 }), "gateway.router.processes", /expected 1 or 2 router processes/],
    ["a service's router processes as a string", (s) => (svc(s).router = { processes: "2" }), "services[0].router.processes", /expected 1 or 2/],
    // The model endpoint (gateway.endpoint).
    ["an endpoint name that is no DNS label", (s) => (gw(s).endpoint = { name: "API" }), "gateway.endpoint.name", /DNS label/],
    ["an endpoint of unknown shape", (s) => (gw(s).endpoint = { host: "api" }), "gateway.endpoint.host", /unknown key/],
    [
        "a service named like the endpoint",
        (s) => (gw(s).endpoint = { name: "chat" }),
        "services[0].name",
        /'chat' is also the name of the gateway's model endpoint \(gateway\.endpoint\.name\)/,
    ],
    [
        "two services with one model behind the endpoint",
        (s) => {
            gw(s).endpoint = {};
            s.services.push({ ...s.services[0], name: "code", portSlot: (portSlot("chat") + 1) % 300 } as never);
            s.tokens.code = s.tokens.chat;
        },
        "services[1].model",
        /'fake-model' is also the model of services\[0\] chat; the model endpoint \(gateway\.endpoint\) routes a request by its model/,
    ],
    ["a bare env name unset where pulumi up runs", (s) => (svc(s).env = ["SGW_TEST_UNSET_VARIABLE"]), "services[0].env[0]", /has no value here/],
    [
        "certificate beside tls",
        (s) => ((gw(s).tls = { certificate: "C", privateKey: "K" }), (gw(s).certificate = "letsencrypt")),
        "gateway.certificate",
        /give tls \(your own certificate\) or certificate \(letsencrypt, none, or an ACME server\), not both/,
    ],
    [
        "certificate none beside tls",
        (s) => ((gw(s).tls = { certificate: "C", privateKey: "K" }), (gw(s).certificate = "none")),
        "gateway.certificate",
        /not both/,
    ],
    [
        "letsencrypt for a documentation domain",
        (s) => (gw(s).certificate = "letsencrypt"),
        "gateway.certificate",
        /Let's Encrypt issues only for public names, and example\.com is under \.example\.com \(RFC 2606, documentation\): use certificate: none, your own tls, or \{acme: \{server\}\}/,
    ],
    [
        "an acme object without server (Let's Encrypt) for a .test domain",
        (s) => ((gw(s).domain = "sandbox.test"), (gw(s).certificate = { acme: { email: "ops@sandbox.dev" } })),
        "gateway.certificate",
        /sandbox\.test is under \.test \(RFC 6761\)/,
    ],
    [
        "a misspelt certificate choice",
        (s) => (gw(s).certificate = "letsencrpyt"),
        "gateway.certificate",
        /expected 'letsencrypt', 'none' or \{acme: \{server, email, eab, caBundle, indexUrl\}\} \(got "letsencrpyt"\)/,
    ],
    [
        "an ACME server over plain HTTP",
        (s) => (gw(s).certificate = { acme: { server: "http://ca.internal/dir" } }),
        "gateway.certificate.acme.server",
        /directory URL \(https/,
    ],
    ["an ACME contact that is no email address", (s) => (gw(s).certificate = { acme: { email: "ops" } }), "gateway.certificate.acme.email", /email address/],
    [
        "an external account binding without its HMAC key",
        (s) => (gw(s).certificate = { acme: { server: "https://ca.internal/dir", eab: { kid: "k1" } } }),
        "gateway.certificate.acme.eab.hmacKey",
        /required/,
    ],
    [
        "an ACME server's CA bundle that is not PEM",
        (s) => (gw(s).certificate = { acme: { server: "https://ca.internal/dir", caBundle: "my-ca" } }),
        "gateway.certificate.acme.caBundle",
        /PEM certificates/,
    ],
    ["unknown key in acme", (s) => (gw(s).certificate = { acme: { servr: "https://ca.internal/dir" } }), "gateway.certificate.acme.servr", /unknown key/],
    [
        "privateKeyPath that cannot be read",
        (s) => {
            delete gw(s).privateKey;
            gw(s).privateKeyPath = "/nonexistent/sglang-gateway-key";
        },
        "gateway.privateKeyPath",
        /cannot read \/nonexistent\/sglang-gateway-key: ENOENT/,
    ],
];

describe("config validation", () => {
    it("the catalog holds at least 60 bad configs", () => assert.ok(catalog.length >= 60, `${catalog.length}`));

    it("a valid ssh stack parses, with defaults filled in (the router's own defaults)", () => {
        const parsed = parseStackConfig(sshStack(2));
        assert.deepStrictEqual(parsed.gateway.router, { type: "sglang", policy: "cache_aware", version: "1.13.0" });
        assert.strictEqual(parsed.gateway.backend === "ssh" && (parsed.gateway as { port?: number }).port, 22);
        assert.strictEqual(parsed.services[0].auth, true);
        assert.deepStrictEqual(parsed.services[0].hosts?.[0], { host: "10.213.0.3", port: 22, user: "root" });
    });

    it("a valid aws stack parses with the small default instance type", () => {
        const parsed = parseStackConfig(awsStack(1));
        assert.strictEqual(parsed.gateway.backend === "aws" && (parsed.gateway as { instanceType?: string }).instanceType, "t3.small");
    });

    it("a valid stack runs through the entry point and registers resources", async () => {
        const mocks = new RecordingMocks();
        const { problems } = runProgram(sshStack(2) as unknown as Record<string, unknown>, mocks);
        assert.deepStrictEqual(problems, []);
        await settle();
        assert.ok(mocks.resources.length > 10, `${mocks.resources.length} registered`);
    });

    for (const [title, change, path, says] of catalog) {
        it(`rejects: ${title} (at ${path})`, () => {
            const raw = sshStack(2) as Stack & Record<string, unknown>;
            change(raw);
            const { problems, registered } = runProgram(raw);
            const line = problems.find((p) => p.startsWith(`${path}: `));
            assert.ok(line, `no problem at ${path}; got:\n${problems.join("\n")}`);
            if (says) {
                assert.match(line, says);
            }
            const unrelated = problems.filter((p) => !p.startsWith(`${path}: `) && !p.startsWith(`${path}.`) && !p.startsWith(`${path}[`));
            assert.deepStrictEqual(unrelated, [], `unrelated problems besides ${path}`);
            assert.strictEqual(registered, 0, "a bad config registers no resource");
        });
    }

    it("reports every problem at once, not only the first", () => {
        const raw = sshStack(2) as Stack & Record<string, unknown>;
        gw(raw).domain = "nodot";
        svc(raw).replicas = -1;
        svc(raw).port = 0;
        const problems = problemsOf(raw);
        assert.deepStrictEqual(problems.map((p) => p.split(":")[0]).sort(), ["gateway.domain", "services[0].port", "services[0].replicas"]);
    });

    it("messages show the value found but never a secret", () => {
        const raw = sshStack(2) as Stack & Record<string, unknown>;
        svc(raw).replicas = -7;
        gw(raw).privateKey = 12345;
        const problems = problemsOf(raw);
        assert.ok(
            problems.some((p) => p.includes("(got -7)")),
            problems.join("\n"),
        );
        const key = problems.find((p) => p.startsWith("gateway.privateKey"));
        assert.ok(key && !key.includes("12345"), key);
    });

    it("component args: a bad token is named by its path, and never echoed", () => {
        pulumi.runtime.setMocks(new RecordingMocks(), "sglang-gateway", "test", false);
        const { Gateway, Service } = require("../../components") as typeof import("../../components");
        const gateway = new Gateway("gw", { backend: "ssh", host: "10.0.0.2", domain: "example.com", privateKey: "k", router: "sglang" });
        assert.throws(
            () =>
                new Service("chat", {
                    gateway,
                    port: 8000,
                    model: "m",
                    commands: ["serve"],
                    tokens: ["sk-live SECRET-VALUE-123"],
                    hosts: [{ host: "10.0.0.3" }],
                }),
            (err: Error) => /Service chat: tokens\[0\]: expected a bearer token/.test(err.message) && !err.message.includes("SECRET-VALUE"),
        );
    });

    it("component args: errors are input errors with the argument path as the user wrote it (Pulumi's InputPropertiesError), and no stack trace (RunError)", () => {
        pulumi.runtime.setMocks(new RecordingMocks(), "sglang-gateway", "test", false);
        const { Gateway, Service } = require("../../components") as typeof import("../../components");
        const gateway = new Gateway("gw", { backend: "ssh", host: "10.0.0.2", domain: "example.com", privateKey: "k", router: "sglang" });
        let caught: unknown;
        try {
            new Service("chat", {
                gateway,
                port: 8000,
                model: "m",
                commands: ["serve"],
                tokens: ["tok-0123456789"],
                pd: { prefill: { replicas: 1, bootstrapPort: 8000, hosts: [{ host: "10.0.0.3" }] }, decode: { replicas: 70, hosts: [{ host: "10.0.0.4" }] } },
            });
        } catch (err) {
            caught = err;
        }
        assert.ok(pulumi.InputPropertiesError.isInstance(caught), `${caught}`);
        assert.ok(pulumi.RunError.isInstance(caught));
        assert.deepStrictEqual(
            (caught as InstanceType<typeof pulumi.InputPropertiesError>).errors.map((e) => e.propertyPath),
            ["pd.decode.replicas"],
        );
    });

    it("a bare env name takes its value from the environment of pulumi up", () => {
        assert.deepStrictEqual(resolveEnv(["HF_TOKEN", "MODEL_ID=m"], { HF_TOKEN: "hf_x" }, "env"), { HF_TOKEN: "hf_x", MODEL_ID: "m" });
        assert.throws(() => resolveEnv(["HF_TOKEN"], {}, "services[0].env"), /services\[0\]\.env\[0\]: HF_TOKEN has no value here/);
    });

    it("the model endpoint: off unless set, named api by default; two services with one model are fine without it", () => {
        assert.strictEqual(parseStackConfig(sshStack(1)).gateway.endpoint, undefined);
        const raw = sshStack(1) as Stack & Record<string, unknown>;
        gw(raw).endpoint = {};
        assert.deepStrictEqual(parseStackConfig(raw).gateway.endpoint, { name: "api" });
        const twins = sshStack(1) as Stack & Record<string, unknown>;
        twins.services.push({ ...twins.services[0], name: "code", portSlot: (portSlot("chat") + 1) % 300 } as never);
        twins.tokens.code = twins.tokens.chat;
        assert.deepStrictEqual(problemsOf(twins), []);
    });

    it("component args: a Service whose model another Service on the endpoint's gateway has, or named like the endpoint, is a ConfigError", () => {
        pulumi.runtime.setMocks(new RecordingMocks(), "sglang-gateway", "test", false);
        const gateway = new Gateway("gw", {
            backend: "ssh",
            host: "10.213.0.2",
            domain: "example.com",
            privateKey: "k",
            endpoint: { name: "api" },
        } as GatewayArgs);
        const args = { gateway, port: 8000, model: "m", commands: ["serve"], hosts: [{ host: "10.213.0.3" }], auth: false };
        new Service("chat", args);
        assert.throws(
            () => new Service("code", { ...args, portSlot: (portSlot("chat") + 1) % 300 }),
            (err: Error) => {
                assert.ok(err instanceof ConfigError);
                assert.match(err.message, /Service code: model: 'm' is also the model of service chat/);
                return true;
            },
        );
        assert.throws(() => new Service("api", { ...args, model: "other" }), /Service api: name: 'api' is also the name of the gateway's model endpoint/);
        assert.throws(
            () =>
                new ModelEndpoint("api", {
                    gateway: new Gateway("plain", { backend: "ssh", host: "10.213.0.2", domain: "example.com", privateKey: "k" } as GatewayArgs),
                    services: [],
                }),
            /ModelEndpoint api: gateway: the gateway's args have no endpoint/,
        );
    });

    it("two services sharing a port slot are fine once one pins another slot", () => {
        const raw = sshStack(1) as Stack & Record<string, unknown>;
        raw.services.push({ ...raw.services[0], name: slotTwin("chat"), portSlot: (portSlot("chat") + 1) % 300 } as never);
        raw.tokens[slotTwin("chat")] = raw.tokens.chat;
        assert.deepStrictEqual(problemsOf(raw), []);
    });
});
