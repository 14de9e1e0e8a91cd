// End to end on real hosts: the real Pulumi engine runs this repo's stack program against three
// sandbox hosts (systemd-nspawn, sshd, systemd, nginx), with the real router and fake SGLang workers
// as replicas. The default router (smg) gets the whole suite: scaling, scale to zero, drift, TLS and
// rate limits, destroy. sglang-router 0.3.2, for stacks that pinned it, a shorter one.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { adminCalls, leftOnGateway, pids, routerUnit, workers } from "../helpers/gateway-router";
import { sglangWorkersDir, sglangWorkersLock } from "../../components/routers/sglang/paths";
import { answeringWorkers, assertNothingLost, chat, serviceHost, token, underLoad, whileStreaming } from "../helpers/gateway-client";

/** A self-signed certificate for `*.<domain>`, as a user would bring one. */
function selfSignedWildcard(domain: string): { certificate: string; privateKey: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-e2e-tls-"));
    try {
        execFileSync(
            "openssl",
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                `/CN=*.${domain}`,
                "-addext",
                `subjectAltName=DNS:*.${domain}`,
                "-keyout",
                `${dir}/key.pem`,
                "-out",
                `${dir}/cert.pem`,
            ],
            { stdio: "ignore" },
        );
        return { certificate: fs.readFileSync(`${dir}/cert.pem`, "utf8"), privateKey: fs.readFileSync(`${dir}/key.pem`, "utf8") };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const replicaUrn = (i: number) => new RegExp(`::chat-replica-${i}(-(process|tunnel|bridge|worker))?$`);

function scalingSuite(version: string | undefined, whole: boolean) {
    const stackConfig = (replicas: number) => sandboxStack({ gateway: "e2e", replicas, router: { version } });
    // The shorter suite leaves these out (not skipped: they are the default router's).
    const wholeOnly = (title: string, test: () => Promise<void>) => whole && it(title, test);
    const label = version ?? "the default router (smg)";
    describe(`e2e on sandbox hosts with ${label}: real engine, router, nginx, sshd, systemd`, function () {
        this.timeout(900000);
        const stack = onFreshSandbox("e2e");
        let project: PulumiProject;
        beforeEach(() => (project = stack()));

        it("up with 2 replicas: requests with the token succeed and both replicas serve; no token is 401", async () => {
            project.setConfig(stackConfig(2));
            await project.up();
            assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
            assert.strictEqual((await chat({ withToken: false })).status, 401);
            // Nothing of the router's internals reaches a client, streamed or not.
            for (const stream of [false, true]) {
                const answer = await chat({ stream });
                assert.strictEqual(answer.status, 200);
                const leaked = (answer.headerNames ?? []).filter((h) => h.startsWith("x-smg-") || h.startsWith("access-control-"));
                assert.deepStrictEqual(leaked, [], `stream=${stream}`);
            }
        });

        wholeOnly("secrets never in plaintext: not in the state, not in preview or up output, not in any host file others can read", async () => {
            const key = fs.readFileSync(sandboxState().privateKeyPath, "utf8");
            // A line from the middle of the key's base64: any copy of the key contains it.
            const keyLine = key.split("\n").filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l))[1];
            assert.ok(keyLine, "a key line to look for");
            // As a user keeps it: the token as a secret in the stack config (the suite's config holds it plain).
            const config = stackConfig(2);
            project.setConfig({ ...config, tokens: {} });
            await project.run(["config", "set", "--secret", "--path", "tokens.chat[0]", token]);
            const { stdout: preview } = await project.run(["preview", "--diff"]);
            const { stdout: up } = await project.up();
            const { stdout: state } = await project.run(["stack", "export"]);
            for (const [where, text] of [
                ["the state", state],
                ["preview --diff", preview],
                ["up --diff", up],
            ] as const) {
                const at = text.indexOf(token);
                assert.ok(at < 0, `the token in ${where}: …${text.slice(Math.max(0, at - 400), at + 40)}…`);
                assert.ok(!text.includes(keyLine), `the SSH key in ${where}`);
            }
            for (const host of ["gw", "r1", "r2"] as const) {
                // Every file holding the token or key material, with its mode: none may be readable by others.
                const found = await onHost(host, `grep -rlsF -e ${token} -e '${keyLine}' /etc /opt /var/lib /run 2>/dev/null | xargs -r stat -c '%a %U %n'`);
                const open = found
                    .trim()
                    .split("\n")
                    .filter((line) => line && /[4-7]$/.test(line.split(" ")[0]));
                assert.deepStrictEqual(open, [], `files on ${host} that others can read`);
            }
        });

        it("2→3: the preview creates only replica 2; up makes exactly one POST /workers, no restart, ids kept", async () => {
            project.setConfig(stackConfig(3));
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
            assert.ok(steps.length > 0, "the preview planned nothing");
            for (const step of steps) {
                assert.strictEqual(step.op, "create", `${step.op} ${step.urn}`);
                assert.match(step.urn, replicaUrn(2));
            }
            assert.deepStrictEqual(steps.map((s) => s.urn.split("::").pop()).sort(), [
                "chat-replica-2",
                "chat-replica-2-bridge",
                "chat-replica-2-process",
                "chat-replica-2-tunnel",
                "chat-replica-2-worker",
            ]);

            const before = { pids: await pids(), calls: await adminCalls(), workers: await workers() };
            const { answers } = await underLoad(() => project.up());
            const after = { pids: await pids(), calls: await adminCalls(), workers: await workers() };

            assert.strictEqual(after.calls.posts - before.calls.posts, 1, "exactly one POST /workers");
            assert.strictEqual(after.calls.deletes - before.calls.deletes, 0);
            assert.deepStrictEqual(after.pids, before.pids, "router and nginx master kept their PIDs");
            for (const w of before.workers) {
                assert.strictEqual(after.workers.find((a) => a.url === w.url)?.id, w.id, `worker ${w.url} kept its router id`);
            }
            assert.strictEqual(after.workers.length, 3);
            assert.ok(
                answers.length > 0 && answers.every((a) => a.status === 200),
                `failed requests during scale-up: ${JSON.stringify(answers.filter((a) => a.status !== 200))}`,
            );
            const seen = new Set<string>();
            for (let i = 0; i < 6; i++) {
                seen.add((await chat()).worker ?? "");
            }
            assert.ok(seen.has("sgw-r1-replica-2"), `replica 2 serves: ${[...seen].join(", ")}`);
        });

        it("3→1: exactly two DELETE /workers; replicas 1 and 2 are gone from the hosts; no request fails", async () => {
            project.setConfig(stackConfig(1));
            const before = await adminCalls();
            const routerPid = (await pids()).router;
            // Long streams on every replica, open while their replicas are removed.
            const result = await whileStreaming(6, () => project.up());
            const after = await adminCalls();
            assert.strictEqual(after.deletes - before.deletes, 2, "exactly two DELETE /workers/{id}");
            assert.strictEqual(after.posts - before.posts, 0);
            assert.strictEqual((await pids()).router, routerPid);
            assertNothingLost(result);
            assert.deepStrictEqual(new Set(result.streams.map((s) => s.worker)).size, 3, "the long streams ran on all three replicas, removed ones included");
            assert.deepStrictEqual((await workers()).length, 1);

            const gateway = await onHost(
                "gw",
                "ls /etc/nginx/sglang-gateway/bridges/ /run/sglang-gateway/chat/; systemctl list-units --all --plain --no-legend 'sglang-gateway-tunnel-*' | cut -d' ' -f1",
            );
            assert.match(gateway, /chat-replica-0\.conf/);
            assert.doesNotMatch(gateway, /replica-1|replica-2|tunnel-chat-1|tunnel-chat-2/);
            const r1 = await onHost("r1", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1; ls /opt/sglang-gateway/chat");
            const r2 = await onHost(
                "r2",
                "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1; ls -d /opt/sglang-gateway/chat 2>/dev/null || true",
            );
            assert.match(r1, /sglang-gateway-chat-replica-0\.service/);
            assert.doesNotMatch(r1, /replica-2/);
            assert.strictEqual(r2.trim(), "", `r2 still has: ${r2}`);
            for (let i = 0; i < 3; i++) {
                assert.strictEqual((await chat()).worker, "sgw-r1-replica-0");
            }
        });

        it("scale to 0: the router keeps running and the endpoint answers 503 with a clear body; 0→2 serves again", async () => {
            const routerPid = (await pids()).router;
            project.setConfig(stackConfig(0));
            await project.up();
            assert.strictEqual((await pids()).router, routerPid, "router not restarted");
            assert.strictEqual((await onHost("gw", `systemctl is-active ${routerUnit}`)).trim(), "active");
            const answer = await chat();
            assert.strictEqual(answer.status, 503);
            assert.match(JSON.parse(answer.body).error.message, /service chat has no replica ready to serve/);

            project.setConfig(stackConfig(2));
            await project.up();
            const seen = new Set<string>();
            for (let i = 0; i < 4; i++) {
                const again = await chat();
                assert.strictEqual(again.status, 200, again.body);
                seen.add(again.worker ?? "");
            }
            assert.strictEqual(seen.size, 2);
        });

        wholeOnly("drift: a worker removed behind Pulumi's back shows in refresh; the next up registers it again", async () => {
            // Bridge ports grow with the replica index: the highest is replica 1's.
            const portOf = (url: string) => Number(url.split(":").pop());
            const [victim] = (await workers()).sort((a, b) => portOf(b.url) - portOf(a.url));
            const port = /--port (\d+)/.exec(await onHost("gw", "cat /etc/sglang-gateway/routers/chat/start.sh"))?.[1];
            // With the gateway's record of it (as a RouterWorker's delete does): the reconcile adds back a worker whose file is left.
            const workersDir = sglangWorkersDir("chat");
            await onHost("gw", `flock ${sglangWorkersLock(workersDir)} sh -c 'rm -f $(grep -lxF ${victim.url} ${workersDir}/*)'`);
            await onHost("gw", `curl -s -X DELETE 127.0.0.1:${port}/workers/${victim.id}`);
            for (let i = 0; i < 40 && (await workers()).some((w) => w.url === victim.url); i++) {
                await new Promise((r) => setTimeout(r, 250));
            }
            const { stdout } = await project.run(["refresh", "--yes", "--skip-preview"]);
            assert.match(stdout, /chat-replica-1-worker\s+deleted/, stdout.slice(-3000));
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
            assert.deepStrictEqual(
                steps.map((s) => `${s.op} ${s.urn.split("::").pop()}`),
                ["create chat-replica-1-worker"],
            );
            await project.up();
            assert.ok(
                (await workers()).some((w) => w.url === victim.url && w.is_healthy),
                "the worker is registered again",
            );
        });

        wholeOnly("TLS and rate limits on the real gateway: HTTPS with the given certificate, HTTP redirected, 429 past the burst", async () => {
            const tls = selfSignedWildcard("sandbox.test");
            const config = stackConfig(2);
            Object.assign(config.gateway, { tls });
            Object.assign(config.services[0], { rateLimits: [{ prefix: "/v1/", rps: 1, burst: 1, key: { header: "X-Client" } }] });
            project.setConfig(config);
            await project.up();
            const gateway = sandboxState().hosts.gw.address;
            const get = (scheme: "http" | "https", client: string) =>
                new Promise<{ status: number; location?: string }>((resolve, reject) => {
                    const lib = scheme === "https" ? https : http;
                    lib.get(
                        {
                            host: gateway,
                            port: scheme === "https" ? 443 : 80,
                            path: "/v1/models",
                            servername: serviceHost,
                            ca: tls.certificate,
                            headers: { host: serviceHost, authorization: `Bearer ${token}`, "x-client": client },
                        },
                        (res) => {
                            res.resume();
                            resolve({ status: res.statusCode ?? 0, location: res.headers.location });
                        },
                    ).on("error", reject);
                });
            const redirect = await get("http", "a");
            assert.strictEqual(redirect.status, 308);
            assert.strictEqual(redirect.location, `https://${serviceHost}/v1/models`);
            const statuses = [];
            for (let i = 0; i < 5; i++) {
                statuses.push((await get("https", "a")).status);
            }
            assert.strictEqual(statuses[0], 200, `the certificate verified and the request passed: ${statuses}`);
            assert.ok(statuses.includes(429), `no 429 past the burst: ${statuses}`);
            assert.strictEqual((await get("https", "b")).status, 200, "another client has its own budget");
        });

        it("destroy leaves the hosts clean: no units, no nginx files, no router", async () => {
            await project.run(["destroy", "--yes", "--skip-preview"]);
            assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
            for (const host of ["r1", "r2"] as const) {
                const left = await onHost(
                    host,
                    "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ls -d /opt/sglang-gateway 2>/dev/null || true",
                );
                assert.strictEqual(left.trim(), "", `left on ${host}: ${left}`);
            }
            assert.strictEqual((await onHost("gw", "systemctl is-active nginx")).trim(), "active", "nginx itself keeps running");
        });
    });
}

scalingSuite(undefined, true);
scalingSuite("0.3.2", false);
