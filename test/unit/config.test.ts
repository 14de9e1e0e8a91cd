// The bad-config catalog: every message names the exact path; a good config parses with its defaults.
import * as assert from "assert";
import { ConfigError, parseStackConfig } from "../../components";
import { portSlots } from "../../components/config";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { checkPortSlots, checkRouterPolicies, readKey, resolveEnv } from "../../components/stack";
import { portSlot } from "../../components/naming";
import { sshStack, awsStack } from "../helpers/stack-configs";

type Stack = Omit<ReturnType<typeof sshStack>, "tokens"> & { tokens: Record<string, string[]> };
type Case = [title: string, change: (s: Stack & Record<string, unknown>) => void, path: string, says?: RegExp];

const gw = (s: Stack) => s.gateway as Record<string, unknown>;
const svc = (s: Stack, i = 0) => s.services[i] as Record<string, unknown>;

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
    ["unknown policy", (s) => (gw(s).router = { type: "sglang", policy: "least_loaded" }), "gateway.router.policy", /cache_aware, round_robin, random, power_of_two/],
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
    ["rate limit key header with a space", (s) => (svc(s).rate_limits = [{ rps: 1, key: { header: "X Api" } }]), "services[0].rate_limits[0].key.header", /header name/],
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
    ["policy override without a gateway router", (s) => { delete gw(s).router; svc(s).router = { policy: "random" }; }, "services[0].router", /needs a router on the gateway/],
    ["services not a list", (s) => ((s as Record<string, unknown>).services = { name: "chat" }), "services", /list of services/],
    ["unknown top-level key", (s) => ((s as Record<string, unknown>).gatway = {}), "gatway", /unknown key/],
    ["portSlot out of range", (s) => (svc(s).portSlot = 300), "services[0].portSlot", /0 to 299/],
];

function problemsOf(raw: unknown): string[] {
    try {
        parseStackConfig(raw);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
        return err.problems;
    }
    return [];
}

describe("config validation", () => {
    it("the catalog holds at least 30 bad configs", () => assert.ok(catalog.length >= 30, `${catalog.length}`));

    it("a valid ssh stack parses, with defaults filled in", () => {
        const parsed = parseStackConfig(sshStack(2));
        assert.deepStrictEqual(parsed.gateway.router, { type: "sglang", policy: "cache_aware", version: "0.3.2" });
        assert.strictEqual(parsed.gateway.backend === "ssh" && parsed.gateway.port, 22);
        assert.strictEqual(parsed.services[0].auth, true);
        assert.deepStrictEqual(parsed.services[0].hosts?.[0], { host: "10.213.0.3", port: 22, user: "root" });
    });

    it("a valid aws stack parses with the small default instance type", () => {
        const parsed = parseStackConfig(awsStack(1));
        assert.strictEqual(parsed.gateway.backend === "aws" && parsed.gateway.instanceType, "t3.small");
    });

    for (const [title, change, path, says] of catalog) {
        it(`rejects: ${title} (at ${path})`, () => {
            const raw = sshStack(2) as Stack & Record<string, unknown>;
            change(raw);
            const problems = problemsOf(raw);
            const line = problems.find((p) => p.startsWith(`${path}: `));
            assert.ok(line, `no problem at ${path}; got:\n${problems.join("\n")}`);
            if (says) {
                assert.match(line, says);
            }
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
        assert.ok(problems.some((p) => p.includes("(got -7)")), problems.join("\n"));
        const key = problems.find((p) => p.startsWith("gateway.privateKey"));
        assert.ok(key && !key.includes("12345"), key);
    });

    it("a bare env name takes its value from the environment, and is an error when unset", () => {
        const parsed = parseStackConfig({ ...sshStack(1), services: [{ ...sshStack(1).services[0], env: ["HF_TOKEN", "MODEL_ID=m"] }] });
        assert.deepStrictEqual(resolveEnv(parsed.services, { HF_TOKEN: "hf_x" }), [{ HF_TOKEN: "hf_x", MODEL_ID: "m" }]);
        assert.throws(() => resolveEnv(parsed.services, {}), /services\[0\]\.env\[0\]: HF_TOKEN has no value here/);
    });

    it("privateKeyPath: the key is read from the file, and an unreadable file stops the run before any resource", () => {
        const raw = sshStack(1) as Stack & Record<string, unknown>;
        delete gw(raw).privateKey;
        gw(raw).privateKeyPath = "/nonexistent/sglang-gateway-key";
        const parsed = parseStackConfig(raw);
        assert.throws(() => readKey(parsed.gateway, "gateway"), /gateway\.privateKeyPath: cannot read \/nonexistent\/sglang-gateway-key: ENOENT/);
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sgw-key-")), "id");
        fs.writeFileSync(file, "KEY TEXT");
        assert.strictEqual(readKey({ privateKeyPath: file }, "gateway"), "KEY TEXT");
    });

    it("power_of_two is refused up front: sglang-router 0.3.2 will not start it without 2 workers", () => {
        const raw = sshStack(2, { router: { type: "sglang", policy: "power_of_two" } });
        assert.throws(() => checkRouterPolicies(parseStackConfig(raw)), /gateway\.router\.policy: sglang-router 0\.3\.2 refuses to start power_of_two/);
        const perService = sshStack(2, { service: { router: { policy: "power_of_two" } } });
        assert.throws(() => checkRouterPolicies(parseStackConfig(perService)), /services\[0\]\.router\.policy: /);
        checkRouterPolicies(parseStackConfig(sshStack(2, { router: { type: "sglang", policy: "round_robin" } })));
    });

    it("two services whose names share a port slot are an error naming portSlot", () => {
        const names = Array.from({ length: 2000 }, (_, i) => `svc-${i}`);
        const first = names[0];
        const clash = names.find((n) => n !== first && portSlot(n) === portSlot(first)) as string;
        const base = parseStackConfig(sshStack(1)).services[0];
        assert.throws(() => checkPortSlots([{ ...base, name: first }, { ...base, name: clash }]), /services\[1\]\.portSlot: .*already taken by services\[0\]/);
        checkPortSlots([{ ...base, name: first }, { ...base, name: clash, portSlot: (portSlot(first) + 1) % portSlots }]);
    });
});
