// The gateway on a second Debian release: the gw sandbox host boots trixie (Python 3.13; bookworm has
// 3.11), the replicas stay on bookworm. The gateway setup installs the default router (smg) from the
// sandbox's index, which serves the cp311 and cp313 wheels of the pinned closure: trixie's pip picks
// its own, the router runs on 3.13 and serves; destroy leaves the gateway clean.
import * as assert from "assert";
import { answeringWorkers, chat } from "../helpers/gateway-client";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { leftOnGateway } from "../helpers/gateway-router";

const venvPython = "/opt/sglang-gateway/routers/smg-1.13.0/bin/python";

describe("e2e: a gateway on Debian trixie (Python 3.13), replicas on bookworm", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("release", { releases: { gw: "trixie" } });
    let project: PulumiProject;
    beforeEach(() => (project = stack()));

    it("the gateway host is trixie with Python 3.13; a replica host is bookworm with 3.11", async () => {
        assert.deepStrictEqual(
            Object.values(sandboxState().hosts).map((h) => h.release),
            ["trixie", "bookworm", "bookworm"],
        );
        const gw = await onHost("gw", ". /etc/os-release && echo $VERSION_CODENAME; python3 --version");
        assert.match(gw, /^trixie\nPython 3\.13\.\d+\n$/);
        assert.match(await onHost("r1", "python3 --version"), /^Python 3\.11\.\d+\n$/);
    });

    it("up with the default router: its venv runs on Python 3.13 with cp313 wheels, requests pass", async () => {
        project.setConfig(sandboxStack({ gateway: "release", replicas: 2 }));
        await project.up();
        const venv = await onHost(
            "gw",
            `${venvPython} --version; ${venvPython} -c 'import smg.launch_router, grpc._cython.cygrpc as c; print(c.__file__)' 2>&1; ` +
                `ps -eo comm | grep -c 'smg::router' || true`,
        );
        const [version, extension, routers] = venv.trim().split("\n");
        assert.match(version, /^Python 3\.13\.\d+$/);
        // A compiled dependency of the closure (grpcio), importable: its cp313 wheel was installed.
        assert.match(extension, /\/cygrpc\.cpython-313-x86_64-linux-gnu\.so$/);
        assert.strictEqual(routers, "1", "one smg router runs");
        assert.deepStrictEqual(await answeringWorkers(4), ["sgw-r1-replica-0", "sgw-r2-replica-1"]);
        assert.strictEqual((await chat({ withToken: false })).status, 401);
    });

    it("destroy leaves the gateway clean", async () => {
        await project.run(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(await leftOnGateway(), "0", "left on the gateway");
    });
});
