// End to end on real hosts: the hostile requests of test/integration/hostile-requests.test.ts, sent to
// the sandbox gateway's public listener after a real `pulumi up` (smg, 2 replicas on r1 and r2), with the
// service's Host and token. Each must answer 4xx from nginx, leak nothing internal (loopback bridge and
// router ports, the replicas' addresses, the tunnels' sockets, router headers, nginx's version), reach
// no model server, and leave the router's workers as they were; the service still serves afterwards.
import * as assert from "assert";
import { servicePaths } from "../../components/naming";
import { answeringWorkers, serviceHost, token } from "../helpers/gateway-client";
import { workers } from "../helpers/gateway-router";
import { alwaysLeaks, hostileAnswerProblems, hostileRequests, raw } from "../helpers/hostile-requests";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("e2e hostile requests on the sandbox gateway (smg): the public listener, after a real pulumi up", function () {
    this.timeout(600000);
    const stack = onFreshSandbox("e2e-hostile");
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("up with 2 replicas serves", async () => {
        project.setConfig(sandboxStack({ gateway: "e2e-hostile", replicas: 2 }));
        await project.up();
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
    });

    it("every hostile request answers 4xx, leaks nothing internal and reaches no model server; the router's workers are unchanged; the service still serves", async () => {
        const state = sandboxState();
        const listed = await workers();
        const before = listed.map((w) => `${w.id} ${w.url}`).sort();
        assert.strictEqual(before.length, 2);
        const routerPort = Number(/--port (\d+)/.exec(await onHost("gw", "cat /etc/sglang-gateway/routers/chat/start.sh"))?.[1]);
        const cases = hostileRequests({ host: serviceHost, token, routerPort, workerUrl: listed[0].url });
        assert.ok(cases.length >= 40, `${cases.length} cases`);
        const leaks = [
            ...alwaysLeaks,
            ...[state.hosts.r1.address, state.hosts.r2.address].map((address) => new RegExp(escaped(address))),
            new RegExp(escaped(servicePaths("chat").socketDir)),
            // The fake model server names itself in this header: a hostile request that reached one.
            /x-fake-worker[^\r\n]*/i,
        ];
        const wrong: string[] = [];
        const statuses: number[] = [];
        for (const [title, request] of cases) {
            const answer = await raw(state.hosts.gw.address, 80, request);
            statuses.push(...answer.statuses);
            wrong.push(...hostileAnswerProblems(title, answer, leaks));
        }
        const counts = [...new Set(statuses)].sort().map((s) => `${statuses.filter((x) => x === s).length}× ${s}`);
        console.log(
            `      ${cases.length} hostile requests to ${serviceHost} on port 80: ${statuses.length} answers (${counts.join(", ")}), ${wrong.length} wrong`,
        );
        assert.deepStrictEqual(wrong, []);
        assert.deepStrictEqual((await workers()).map((w) => `${w.id} ${w.url}`).sort(), before, "the router's workers are unchanged");
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"], "and the service still serves");
    });
});
