// End to end on real hosts: many services on one gateway. Three services with their own policies, tokens
// and rate limits serve side by side; a fourth is added and one removed, each in its own `pulumi up`, while
// request loops (plain and streamed in turn) run against the others. The preview of each change names only
// the added or removed service's resources, and the other services lose no request.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { chat, fakeWorkerCommand, type Answer } from "../helpers/gateway-client";

type Name = "alpha" | "beta" | "gamma" | "delta";

const tokens: Record<Name, string> = {
    alpha: "alpha-token-0123456789abcdef",
    beta: "beta-token-0123456789abcdef",
    gamma: "gamma-token-0123456789abcdef",
    delta: "delta-token-0123456789abcdef",
};

/** Each its own policy and model-server port; beta with a rate limit per X-Client (the loops send a new value each time). */
function services() {
    const state = sandboxState();
    const r1 = { host: state.hosts.r1.address };
    const r2 = { host: state.hosts.r2.address };
    return {
        alpha: { port: 8000, replicas: 2, hosts: [r1, r2] }, // the gateway's policy: round_robin
        beta: {
            port: 8100,
            replicas: 1,
            hosts: [r2],
            router: { policy: "cache_aware" },
            rateLimits: [{ prefix: "/v1/", rps: 1, burst: 1, key: { header: "X-Client" } }],
        },
        gamma: { port: 8200, replicas: 1, hosts: [r1], router: { policy: "random" } },
        delta: { port: 8300, replicas: 1, hosts: [r2], router: { policy: "least_load" } },
    };
}
const policies: Record<Name, string> = { alpha: "round_robin", beta: "cache_aware", gamma: "random", delta: "least_load" };

function stackConfig(names: Name[]) {
    const { gateway } = sandboxStack({ gateway: "e2e-multi", replicas: 0 });
    const all = services();
    return {
        gateway,
        services: names.map((name) => ({
            type: "service",
            name,
            model: "fake-model",
            commands: [fakeWorkerCommand],
            readinessTimeoutSeconds: 60,
            ...all[name],
        })),
        tokens: Object.fromEntries(names.map((name) => [name, [tokens[name]]])),
    };
}

let client = 0;
/** A request to one service with its token; a fresh X-Client each time, so beta's per-client limit never trips. */
const request = (name: Name, stream: boolean, headers: Record<string, string> = {}) =>
    chat({ service: name, token: tokens[name], stream, headers: { "x-client": `loop-${client++}`, ...headers } }).catch(
        (err: Error) => ({ status: 0, body: err.message }) as Answer,
    );

/** A bounded request loop on each service (plain and streamed in turn) while `work` runs; every answer recorded. */
async function loadsDuring<T>(names: Name[], work: () => Promise<T>): Promise<{ result: T; answers: Record<string, Answer[]> }> {
    const answers: Record<string, Answer[]> = Object.fromEntries(names.map((n) => [n, []]));
    let running = true;
    const loops = names.map(async (name) => {
        while (running && answers[name].length < 3000) {
            answers[name].push(await request(name, answers[name].length % 2 === 1));
            await new Promise((r) => setTimeout(r, 20));
        }
    });
    try {
        return { result: await work(), answers };
    } finally {
        running = false;
        await Promise.all(loops);
    }
}

function assertNoneFailed(answers: Record<string, Answer[]>): void {
    for (const [name, list] of Object.entries(answers)) {
        const failed = list.filter((a) => a.status !== 200);
        assert.ok(list.length >= 10, `${name}: only ${list.length} requests ran during the change`);
        assert.deepStrictEqual(failed.slice(0, 5), [], `${name}: ${failed.length} of ${list.length} requests failed during the change`);
    }
}

/** The resource name of a step (the URN's last part). */
const nameOf = (urn: string) => urn.split("::").pop() ?? urn;

/** What one service owns in the resource tree: the component and everything under it. */
function ownedBy(name: Name, replicas: number): string[] {
    const replicaNames = Array.from({ length: replicas }, (_, i) =>
        ["", "-process", "-tunnel", "-bridge", "-worker"].map((suffix) => `${name}-replica-${i}${suffix}`),
    ).flat();
    return [name, `${name}-server`, `${name}-router`, `${name}-router-reconcile`, ...replicaNames].sort();
}

/** The MainPID of every router unit and nginx's master: what must not restart when another service comes or goes. */
async function processIds(names: Name[]): Promise<Record<string, string>> {
    const ids: Record<string, string> = { nginx: (await onHost("gw", "cat /run/nginx.pid")).trim() };
    for (const name of names) {
        ids[name] = (await onHost("gw", `systemctl show -p MainPID --value sglang-gateway-router-${name}.service`)).trim();
    }
    return ids;
}

describe("e2e many services on one gateway (sandbox, smg): add and remove one while the others serve", function () {
    this.timeout(1500000);
    const stack = onFreshSandbox("e2e-multi");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("three services, each with its own router, policy, token and rate limit", async () => {
        project.setConfig(stackConfig(["alpha", "beta", "gamma"]));
        const started = Date.now();
        await project.up();
        console.log(`      first up with three services: ${((Date.now() - started) / 1000).toFixed(0)} s`);
        for (const name of ["alpha", "beta", "gamma"] as const) {
            for (const stream of [false, true]) {
                const answer = await request(name, stream);
                assert.strictEqual(answer.status, 200, `${name} stream=${stream}: ${answer.body}`);
            }
            // Another service's token is no token here.
            const other = name === "alpha" ? "gamma" : "alpha";
            const refused = await chat({ service: name, token: tokens[other] });
            assert.strictEqual(refused.status, 401, `${name} with ${other}'s token`);
            const policy = await onHost("gw", `grep -o -- '--policy [a-z_]*' /etc/sglang-gateway/routers/${name}/start.sh | sort -u`);
            assert.strictEqual(policy.trim(), `--policy ${policies[name]}`, name);
            assert.strictEqual((await onHost("gw", `systemctl is-active sglang-gateway-router-${name}.service`)).trim(), "active");
        }
        // beta's limit (1 r/s, burst 1) is beta's: the same client three times at once is refused there once, never on alpha.
        const thrice = async (name: Name) => (await Promise.all([1, 2, 3].map(() => request(name, false, { "x-client": "same" })))).map((a) => a.status).sort();
        assert.deepStrictEqual(await thrice("beta"), [200, 200, 429]);
        assert.deepStrictEqual(await thrice("alpha"), [200, 200, 200]);
        // Each router on its own loopback ports.
        const ports = await onHost(
            "gw",
            "for f in /etc/sglang-gateway/routers/*/start.sh; do grep -o -- '--port [0-9]*\\|--prometheus-port [0-9]*' $f | sort -u; done | sort | uniq -d",
        );
        assert.strictEqual(ports.trim(), "", `ports two routers share: ${ports}`);
    });

    for (const change of [
        {
            what: "adding a fourth service (delta)",
            before: ["alpha", "beta", "gamma"],
            after: ["alpha", "beta", "gamma", "delta"],
            op: "create",
            subject: "delta",
        },
        { what: "removing beta", before: ["alpha", "beta", "gamma", "delta"], after: ["alpha", "gamma", "delta"], op: "delete", subject: "beta" },
    ] as const) {
        it(`${change.what}: the preview lists only its resources; the other services lose no request during the up`, async () => {
            const subject = change.subject;
            const others = change.before.filter((n) => n !== subject);
            project.setConfig(stackConfig([...change.after]));
            const steps = (await project.previewSteps()).filter((s) => s.op !== "same");
            assert.deepStrictEqual(
                steps.filter((s) => s.op !== change.op || !nameOf(s.urn).startsWith(subject)).map((s) => `${s.op} ${s.urn}`),
                [],
                "steps of something else than the service",
            );
            assert.deepStrictEqual(steps.map((s) => nameOf(s.urn)).sort(), ownedBy(subject, 1));

            const before = await processIds(others);
            const started = Date.now();
            const { answers } = await loadsDuring(others, () => project.up());
            const seconds = (Date.now() - started) / 1000;
            console.log(`      ${change.what}: up ${seconds.toFixed(0)} s; requests meanwhile: ${others.map((n) => `${n} ${answers[n].length}`).join(", ")}`);
            assertNoneFailed(answers);
            assert.deepStrictEqual(await processIds(others), before, "nginx's master and the other routers kept their PIDs");
            const { stdout: again } = await project.run(["preview", "--expect-no-changes"]);
            assert.match(again, /unchanged/);

            const gateway = await onHost(
                "gw",
                `ls /etc/nginx/sglang-gateway/services/ /etc/nginx/sglang-gateway/bridges/ /etc/sglang-gateway/routers/ /var/lib/sglang-gateway/routers/ /var/log/sglang-gateway/; ` +
                    // The tunnels' socket directory in /run stays, empty (tmpfs: gone at the next boot); no socket in it.
                    `find /run/sglang-gateway -mindepth 2; ` +
                    `systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1`,
            );
            if (change.op === "create") {
                assert.strictEqual((await request("delta", false)).status, 200);
                assert.strictEqual((await request("delta", true)).status, 200);
                assert.strictEqual((await chat({ service: "delta", token: tokens.alpha })).status, 401);
                assert.match(gateway, /delta\.conf/);
            } else {
                assert.doesNotMatch(gateway, /beta/, `beta left on the gateway: ${gateway}`);
                const gone = await request("beta", false);
                assert.notStrictEqual(gone.status, 200, "beta still answers");
                const r2 = await onHost("r2", "systemctl list-units --all --plain --no-legend 'sglang-gateway-*' | cut -d' ' -f1; ls /opt/sglang-gateway");
                assert.doesNotMatch(r2, /beta/, `beta left on r2: ${r2}`);
            }
        });
    }
});
