// End to end on real hosts: where a request shows. One request through the gateway carries nginx's request id
// in its answer, the service's JSON access log and the router's log; `npm run gateway -- logs|metrics` read
// them over SSH from the stack's outputs; the router's metrics and log ports answer only on the gateway.
import * as assert from "assert";
import { execFile, spawn } from "child_process";
import * as net from "net";
import * as path from "path";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { chat, underLoad } from "../helpers/gateway-client";
import { pids } from "../helpers/gateway-router";
import { exportCommit } from "../helpers/previous-release";
import { portSlot, servicePorts } from "../../components/naming";

const repo = path.resolve(__dirname, "..", "..");
const units = ["sglang-gateway-router-chat.service", "sglang-gateway-router2-chat.service"];

/** `npm run gateway -- <args>` against the suite's stack; resolves with its output and exit code. */
function gatewayCli(project: PulumiProject, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) =>
        execFile(
            "npm",
            ["run", "--silent", "gateway", "--", ...args, "--cwd", project.dir, "--stack", project.stack],
            { cwd: repo, env: project.env(), maxBuffer: 16 * 1024 * 1024, timeout: 120000 },
            (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
    );
}

/** The Prometheus text's count of chat completions a router has answered (both generations: smg_http_requests_total). */
function chatRequests(metrics: string): number {
    return metrics
        .split("\n")
        .filter((line) => /^smg_http_requests_total\{(?=[^}]*method="POST")(?=[^}]*path="\/v1\/chat\/completions")[^}]*\}/.test(line))
        .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

/** Whether a TCP connection from this machine to host:port is refused (nothing listens there for us). */
function refused(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port, timeout: 5000 });
        socket.once("connect", () => {
            socket.destroy();
            resolve(false);
        });
        socket.once("timeout", () => {
            socket.destroy();
            resolve(false);
        });
        socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
    });
}

describe("e2e observability on sandbox hosts (smg, two router processes): request ids, logs, metrics", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-observe");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("up: the stack's outputs say where each service's logs and metrics are, and the key only as a secret", async () => {
        const config = sandboxStack({ gateway: "e2e-observe", replicas: 2 });
        Object.assign(config.gateway.router as Record<string, unknown>, { processes: 2 });
        project.setConfig(config);
        await project.up();
        const { stdout } = await project.run(["stack", "output", "--json"]);
        const outputs = JSON.parse(stdout) as { observability: { gateway: Record<string, unknown>; services: Record<string, unknown> }; gatewaySshKey: string };
        const ports = servicePorts(portSlot("chat"));
        assert.deepStrictEqual(outputs.observability.services.chat, {
            accessLog: "/var/log/nginx/sglang-gateway-chat.access.log",
            routers: [
                { unit: units[0], logDir: "/var/log/sglang-gateway/chat", metricsUrl: `http://127.0.0.1:${ports.routerMetricsPort}/metrics` },
                { unit: units[1], logDir: "/var/log/sglang-gateway/chat/second", metricsUrl: `http://127.0.0.1:${ports.secondRouterMetricsPort}/metrics` },
            ],
        });
        const { hostKey, ...reach } = outputs.observability.gateway;
        assert.deepStrictEqual(reach, { host: sandboxState().hosts.gw.address, port: 22, user: "root" });
        // The key the gateway's setup pinned: one of the gateway's own.
        const blob = String(hostKey).split(" ")[1] ?? "none";
        assert.strictEqual((await onHost("gw", `grep -lF '${blob}' /etc/ssh/ssh_host_*_key.pub | wc -l`)).trim(), "1", String(hostKey));
        assert.strictEqual(outputs.gatewaySshKey, "[secret]");
    });

    it("a request's id is in its answer, in the service's JSON access log and in the router's log; `logs` shows both", async () => {
        const answer = await chat({ headers: { "x-request-id": "client-chosen" } });
        assert.strictEqual(answer.status, 200, answer.body);
        const id = answer.requestId ?? "";
        assert.match(id, /^[0-9a-f]{32}$/, "nginx's id in the answer, not the client's");

        const line = (await onHost("gw", `grep -F '"request_id":"${id}"' /var/log/nginx/sglang-gateway-chat.access.log`)).trim();
        const entry = JSON.parse(line) as Record<string, string | number>;
        assert.strictEqual(entry.service, "chat");
        assert.strictEqual(entry.status, "200");
        assert.strictEqual(entry.upstream_status, "200");
        assert.strictEqual(entry.uri, "/v1/chat/completions");
        assert.match(String(entry.upstream_response_time), /^\d+\.\d{3}$/);
        assert.ok(Number(entry.body_bytes_sent) > 0 && Number(entry.request_length) > 0, line);
        // The router's journal and its log directory both have the id: one JSON line per request, with its status.
        const journal = await onHost("gw", `journalctl --no-pager -o cat ${units.map((u) => `-u ${u}`).join(" ")} | grep -F '"${id}"' || true`);
        const journalLines = journal.trim().split("\n").filter(Boolean);
        assert.strictEqual(journalLines.length, 1, `the router logged the request once, with its id: ${journal}`);
        const logged = JSON.parse(journalLines[0]) as { message: string; span: { request_id: string; status_code: number; latency: number } };
        assert.strictEqual(logged.message, "finished processing request");
        assert.deepStrictEqual([logged.span.request_id, logged.span.status_code], [id, 200]);
        const files = await onHost(
            "gw",
            `cat /var/log/sglang-gateway/chat/smg.* /var/log/sglang-gateway/chat/second/smg.* 2>/dev/null | grep -cF '"${id}"' || true`,
        );
        assert.strictEqual(files.trim(), "1", `the router's log files: ${files}`);

        const router = await gatewayCli(project, ["logs", "chat", "--router", "-n", "200"]);
        assert.strictEqual(router.code, 0, router.stderr);
        assert.ok(router.stdout.includes(`"${id}"`), `logs --router lacks ${id}: ${router.stdout.slice(-2000)}`);
        assert.doesNotMatch(router.stdout, /request_time/, "logs --router showed the access log");
        const nginx = await gatewayCli(project, ["logs", "chat", "--nginx"]);
        assert.strictEqual(nginx.code, 0, nginx.stderr);
        assert.ok(nginx.stdout.includes(`"request_id":"${id}"`), nginx.stdout.slice(-2000));
        const unknown = await gatewayCli(project, ["logs", "nope"]);
        assert.strictEqual(unknown.code, 2);
        assert.match(unknown.stderr, /no service nope in this stack: it has chat/);
    });

    it("`logs -f` tails both logs as requests arrive, and leaves nothing running on the gateway when it ends", async () => {
        const child = spawn("npm", ["run", "--silent", "gateway", "--", "logs", "chat", "-f", "--cwd", project.dir, "--stack", project.stack], {
            cwd: repo,
            env: project.env(),
            detached: true,
        });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        try {
            // The tail has started once the last lines are shown.
            // Connected once the journal's last lines show (a line written before the tail starts is among its last 10 anyway).
            for (let i = 0; i < 120 && !output.includes("smg::"); i++) await new Promise((r) => setTimeout(r, 250));
            const id = (await chat({ stream: true })).requestId ?? "none";
            // Both are JSON with the id: nginx's line names the service, the router's its target.
            const linesOf = (text: string, kind: string) => text.split("\n").filter((l) => l.includes(`"${id}"`) && l.includes(kind));
            const [nginxLine, routerLine] = ['"service":"chat"', '"target":"smg::response"'];
            for (let i = 0; i < 60 && !(linesOf(output, nginxLine).length >= 1 && linesOf(output, routerLine).length >= 1); i++) {
                await new Promise((r) => setTimeout(r, 250));
            }
            assert.ok(linesOf(output, nginxLine).length >= 1, `the access log line did not follow: ${output.slice(0, 3000)}`);
            assert.ok(linesOf(output, routerLine).length >= 1, `the router's line did not follow: ${output.slice(-2000)}`);
        } finally {
            process.kill(-(child.pid as number), "SIGINT");
            await new Promise((r) => child.once("exit", r));
        }
        let left = "";
        for (let i = 0; i < 40; i++) {
            // `[j]`: the pattern does not match the shell that runs pgrep.
            left = (await onHost("gw", "pgrep -a -f '[j]ournalctl --no-pager --all -o short-iso -n 10 -f|[t]ail -n 10 -F' || true")).trim();
            if (left === "") break;
            await new Promise((r) => setTimeout(r, 250));
        }
        assert.strictEqual(left, "", "the tail still runs on the gateway");
    });

    it("`metrics` shows each router process's Prometheus text; its request counters go up with requests through the gateway", async () => {
        const read = async (process: 1 | 2) => {
            const result = await gatewayCli(project, ["metrics", "chat", ...(process === 2 ? ["--process", "2"] : [])]);
            assert.strictEqual(result.code, 0, result.stderr);
            assert.match(result.stdout, /^# (HELP|TYPE) smg_/m);
            return chatRequests(result.stdout);
        };
        const before = (await read(1)) + (await read(2));
        for (let i = 0; i < 6; i++) {
            assert.strictEqual((await chat({ stream: i % 2 === 1 })).status, 200);
        }
        const after = (await read(1)) + (await read(2));
        assert.strictEqual(after - before, 6, `chat completions counted by the two routers: ${before} → ${after}`);
    });

    it("the routers' metrics and HTTP ports answer on the gateway's loopback only: from outside, connections are refused", async () => {
        const ports = servicePorts(portSlot("chat"));
        const address = sandboxState().hosts.gw.address;
        for (const port of [ports.routerMetricsPort, ports.secondRouterMetricsPort, ports.routerPort, ports.secondRouterPort]) {
            const inside = await onHost("gw", `curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:${port}/metrics || true`);
            assert.notStrictEqual(inside.trim(), "000", `nothing listens on 127.0.0.1:${port} on the gateway: the check below would prove nothing`);
            assert.ok(await refused(address, port), `${address}:${port} is reachable from outside the gateway`);
        }
        // Nothing but nginx and sshd listens beyond loopback on the gateway.
        const open = await onHost("gw", "ss -Hltnp | awk '$4 !~ /^(127\\.[0-9.]+|\\[::1\\]):/' | grep -vE '\"(nginx|sshd)\"' || true");
        assert.strictEqual(open.trim(), "", `listening beyond loopback: ${open}`);
    });
});

/** The commit this feature was built on: the stacks it upgrades write plain access-log lines. */
const beforeObservability = "9769fd80cf7091359140230ed1583b3474cee2c9";

describe("e2e: upgrading a running stack to the JSON access log and request ids (sandbox, smg)", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-observe-upgrade");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));
    const config = () => sandboxStack({ gateway: "e2e-observe-upgrade", replicas: 2 });

    it("the preview updates the service's server block, its router, the tunnels and the bridges; up under load reloads nginx, rolls the tunnels, restarts the router once (its JSON log), fails only in that gap", async () => {
        const previous = exportCommit(beforeObservability);
        try {
            project.useProgram(path.join(previous.root, "index.ts"));
            project.setConfig(config());
            await project.up();
        } finally {
            project.useProgram();
            previous.remove();
        }
        // Before: the router's own id (`chatcmpl-…`) reached the client, nginx's went nowhere.
        assert.doesNotMatch((await chat()).requestId ?? "", /^[0-9a-f]{32}$/);
        project.setConfig(config());
        const steps = (await project.previewSteps()).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        // The tunnels too, since that commit: each pins its host's key and holds a pty session (CHANGELOG); they roll.
        // The bridges too: each closes an idle connection to its tunnel after 10 s (CHANGELOG).
        assert.deepStrictEqual(steps.sort(), [
            "update chat-replica-0-bridge",
            "update chat-replica-0-tunnel",
            "update chat-replica-1-bridge",
            "update chat-replica-1-tunnel",
            "update chat-router",
            "update chat-server",
        ]);

        const before = await pids();
        const { answers } = await underLoad(() => project.up());
        const failed = answers.filter((a) => a.status !== 200);
        const report = `upgrade: ${answers.length} requests, ${failed.length} failed (${[...new Set(failed.map((a) => a.status))].join(", ") || "none"})`;
        console.log(`      ${report}`);
        // Since that commit smg logs one JSON line per request (its flags and unit changed, CHANGELOG): the router
        // restarts once, and only its restart gap may fail a request (nginx's 502, the gateway's 503 while its workers come back).
        assert.ok(
            failed.every((a) => a.status === 502 || a.status === 503),
            report,
        );
        assert.ok(failed.length <= 40, `more failures than a restart gap explains: ${report}`);
        const after = await pids();
        assert.strictEqual(after.nginx, before.nginx, "nginx's master kept its PID (reloaded, not restarted)");
        assert.notStrictEqual(after.router, before.router, "the router restarted with its new log format");
        const answer = await chat();
        assert.match(answer.requestId ?? "", /^[0-9a-f]{32}$/);
        const line = await onHost("gw", `grep -F '"request_id":"${answer.requestId}"' /var/log/nginx/sglang-gateway-chat.access.log`);
        assert.strictEqual((JSON.parse(line) as { status: string }).status, "200");
        await project.run(["preview", "--expect-no-changes"]);
    });
});
