// Rendered nginx configuration passes `nginx -t` with the real nginx, and says what it should.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    serverBlockText,
    planLocations,
    rateLimitZones,
    nginxRate,
    headerVariable,
    tokenPattern,
    type ServerBlockInput,
} from "../../components/host-files/server-block";
import { sglangRouter } from "../../components/routers/sglang/router";
import { bridgeFile } from "../../components/host-files/replica";
import { bridgePort } from "../../components/naming";
import { nginxServerTokensOff } from "../../components/host-script/steps";
import { nginxBinary, nginxTest } from "../helpers/nginx";
import { selfSignedCert } from "../helpers/tls";

const base: ServerBlockInput = {
    service: "chat",
    serverName: "chat.example.com",
    auth: true,
    tokens: ["tok-aaaaaaaa", "tok-bbbbbbbb"],
    upstreamServers: ["127.0.0.1:10042"],
    allow: sglangRouter.inferencePaths,
    rateLimits: [],
};

function bridges(count: number): Record<string, string> {
    return Object.fromEntries(
        Array.from({ length: count }, (_, i) => [
            `chat-replica-${i}.conf`,
            bridgeFile({ service: "chat", index: i, bridgePort: bridgePort(42, i), target: `unix:/run/sglang-gateway/chat/replica-${i}.sock` }).content,
        ]),
    );
}

describe("nginx templates (real nginx -t)", () => {
    it("service block with a router, auth and rate limits", () => {
        const text = serverBlockText({
            ...base,
            rateLimits: [
                { prefix: "/", rps: 4, burst: 9, key: { header: "Authorization" } },
                { prefix: "/v1/chat/", rps: 0.5, burst: 0, key: "ip" },
            ],
        });
        nginxTest({ services: { "chat.conf": text } });
        assert.match(text, /limit_req_zone \$http_authorization zone=sgw_chat_0:10m rate=4r\/s;/);
        assert.match(text, /limit_req_zone \$binary_remote_addr zone=sgw_chat_1:10m rate=30r\/m;/);
        assert.match(text, /'~\^\[Bb\]\[Ee\]\[Aa\]\[Rr\]\[Ee\]\[Rr\] \+tok-aaaaaaaa\$' 1;/);
        assert.match(text, /location \/ \{\s+return 403/);
        assert.match(text, /proxy_pass http:\/\/sgw_service_chat;/);
    });

    it("service block without a router: the upstream lists the replicas and everything is passed", () => {
        const text = serverBlockText({
            ...base,
            allow: undefined,
            upstreamServers: ["unix:/run/sglang-gateway/chat/replica-0.sock", "unix:/run/sglang-gateway/chat/replica-1.sock"],
        });
        nginxTest({ services: { "chat.conf": text } });
        assert.doesNotMatch(text, /return 403/);
        assert.match(text, /server unix:\/run\/sglang-gateway\/chat\/replica-1\.sock;/);
    });

    it("service block without a router and no replicas answers 503 (no empty upstream)", () => {
        const text = serverBlockText({ ...base, allow: undefined, upstreamServers: [] });
        nginxTest({ services: { "chat.conf": text } });
        assert.doesNotMatch(text, /upstream /);
        assert.match(text, /return 503;/);
    });

    it("tokens of 48 and 512 characters pass nginx -t (plain map keys would overflow map_hash_bucket_size)", () => {
        nginxTest({ services: { "chat.conf": serverBlockText({ ...base, tokens: ["x".repeat(48), "y.+/=~-".repeat(73).slice(0, 512)] }) } });
    });

    it("service block without auth has no token map", () => {
        const text = serverBlockText({ ...base, auth: false, tokens: [] });
        nginxTest({ services: { "chat.conf": text } });
        assert.doesNotMatch(text, /map \$http_authorization/);
    });

    it("auth without tokens is refused before anything is rendered", () => {
        assert.throws(() => serverBlockText({ ...base, tokens: [] }), /auth is on but no token/);
    });

    it("TLS: listens on 443 with the certificate and redirects HTTP", () => {
        const tls = selfSignedCert();
        const text = serverBlockText({ ...base, tls });
        nginxTest({ services: { "chat.conf": text } });
        assert.match(text, /listen 443 ssl;/);
        assert.match(text, /return 308 https:\/\/\$host\$request_uri;/);
    });

    for (const count of [0, 1, 5]) {
        it(`${count} bridge(s) beside the service block`, () => {
            const files = bridges(count);
            nginxTest({ services: { "chat.conf": serverBlockText(base) }, bridges: files });
            for (const [i, text] of Object.values(files).entries()) {
                assert.match(text, new RegExp(`listen 127\\.0\\.0\\.1:${bridgePort(42, i)};`));
                assert.match(text, /keepalive 16;/);
            }
        });
    }

    it("two services on one gateway do not clash (zones, maps, upstreams)", () => {
        const other = serverBlockText({ ...base, service: "code", serverName: "code.example.com", rateLimits: [{ prefix: "/", rps: 1, burst: 0, key: "ip" }] });
        const chat = serverBlockText({ ...base, rateLimits: [{ prefix: "/", rps: 1, burst: 0, key: "ip" }] });
        nginxTest({ services: { "chat.conf": chat, "code.conf": other } });
    });

    it("a service named like another's bridge (chat-replica-0) does not clash with it", () => {
        const other = serverBlockText({ ...base, service: "chat-replica-0", serverName: "chat-replica-0.example.com" });
        nginxTest({ services: { "chat.conf": serverBlockText(base), "chat-replica-0.conf": other }, bridges: bridges(1) });
    });

    for (const [what, distribution, kept] of [
        ["a distribution's nginx.conf without server_tokens (Debian bookworm)", "", true],
        ["a distribution's nginx.conf that sets server_tokens itself (Debian trixie)", "    server_tokens off;", false],
    ] as const) {
        it(`server_tokens off for the whole http block, the default server too: ${what}`, () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-tokens-"));
            try {
                fs.mkdirSync(path.join(dir, "conf.d"));
                const conf = ["events {}", "http {", `    include ${dir}/conf.d/*.conf;`, distribution, "    server { listen 127.0.0.1:8; }", "}", ""];
                fs.writeFileSync(path.join(dir, "nginx.conf"), conf.join("\n"));
                const test = `${nginxBinary()} -t -p ${dir} -c ${dir}/nginx.conf`;
                const file = path.join(dir, "conf.d", "sglang-gateway-server-tokens.conf");
                execFileSync("bash", ["-c", `set -euo pipefail\n${nginxServerTokensOff(file, test)}`], { stdio: "pipe" });
                assert.strictEqual(
                    fs.existsSync(file),
                    kept,
                    kept ? "nginx.conf says nothing: the gateway's file says off" : "a second server_tokens would fail nginx -t",
                );
                if (kept) {
                    assert.match(fs.readFileSync(file, "utf8"), /^server_tokens off;$/m);
                }
                execFileSync("bash", ["-c", test], { stdio: "pipe" });
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    }

    it("a broken config fails nginx -t (the check is real)", () => {
        assert.throws(() => nginxTest({ services: { "bad.conf": "server { listen 80; location / { proxy_pass http://; } }" } }), /nginx -t failed/);
    });
});

describe("tokens and rate-limit keys", () => {
    /** nginx map keys starting with `~` are PCRE; these patterns mean the same in JavaScript. */
    const accepts = (token: string, header: string) => new RegExp(tokenPattern(token).slice(1)).test(header);

    it("a token pattern accepts exactly that token: every special character is literal", () => {
        const token = "ab.cd+ef/gh=ij~kl_mn-op";
        assert.ok(accepts(token, `Bearer ${token}`));
        for (const [i, ch] of [...token].entries()) {
            if (/[A-Za-z]/.test(ch)) continue;
            const other = token.slice(0, i) + "X" + token.slice(i + 1);
            assert.ok(!accepts(token, `Bearer ${other}`), `'${ch}' at ${i} matched 'X': ${tokenPattern(token)}`);
        }
        assert.ok(!accepts(token, `Bearer ${token}x`), "a longer token");
        assert.ok(!accepts(token, `Bearer x${token}`), "a prefixed token");
        assert.ok(!accepts(token, `Bearer ${token.toUpperCase()}`), "the token's case matters");
        // RFC 7235: the scheme is case-insensitive, and one or more spaces follow it.
        for (const scheme of ["bearer", "BEARER", "BeArEr"]) assert.ok(accepts(token, `${scheme} ${token}`), scheme);
        assert.ok(accepts(token, `Bearer   ${token}`), "several spaces");
        assert.ok(!accepts(token, `Bearer${token}`), "no space");
        assert.ok(!accepts(token, `Basic ${token}`), "another scheme");
    });

    it("a header-keyed limit uses nginx's variable for the header: lowercase, dashes as underscores", () => {
        assert.strictEqual(headerVariable("X-Api-Key"), "$http_x_api_key");
        const [zone] = rateLimitZones("chat", [{ prefix: "/", rps: 1, burst: 0, key: { header: "X-Tenant-Id" } }]);
        assert.strictEqual(zone.key, "$http_x_tenant_id");
    });
});

describe("location planning", () => {
    const prefixAllowList = { exact: ["/generate"], prefix: ["/v1/"] };

    it("the sglang router's public paths are the inference API only: its control-plane routes under /v1/ answer 403", () => {
        const plan = planLocations(sglangRouter.inferencePaths, []).map((l) => l.match);
        assert.ok(plan.includes("= /v1/chat/completions") && plan.includes("= /generate") && plan.includes("/v1/models/"), JSON.stringify(plan));
        assert.ok(!plan.includes("/v1/"), "the whole /v1/ prefix is not public (smg serves /v1/tokenizers, /v1/conversations there)");
    });

    it("a rate limit narrower than an allowed prefix gets a location of its own, with the broader limits too", () => {
        const zones = rateLimitZones("chat", [
            { prefix: "/", rps: 10, burst: 0, key: "ip" },
            { prefix: "/v1/chat/", rps: 1, burst: 0, key: "ip" },
        ]);
        const plan = planLocations(prefixAllowList, zones);
        const chat = plan.find((l) => l.match === "/v1/chat/");
        assert.ok(chat, JSON.stringify(plan));
        assert.deepStrictEqual(
            chat.zones.map((z) => z.zone),
            ["sgw_chat_0", "sgw_chat_1"],
        );
        assert.deepStrictEqual(
            plan.find((l) => l.match === "/v1/")?.zones.map((z) => z.zone),
            ["sgw_chat_0"],
        );
        assert.deepStrictEqual(
            plan.find((l) => l.match === "= /generate")?.zones.map((z) => z.zone),
            ["sgw_chat_0"],
        );
    });

    it("a rate limit outside the allow-list plans no location (those paths answer 403)", () => {
        const plan = planLocations(prefixAllowList, rateLimitZones("chat", [{ prefix: "/api/auth/", rps: 1, burst: 0, key: "ip" }]));
        assert.deepStrictEqual(
            plan.map((l) => l.match),
            ["= /generate", "/v1/"],
        );
    });

    it("fractional rates go per minute", () => {
        assert.strictEqual(nginxRate(4), "4r/s");
        assert.strictEqual(nginxRate(0.5), "30r/m");
    });
});
