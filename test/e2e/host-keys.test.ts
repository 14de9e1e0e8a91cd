// End to end on real hosts: SSH host keys are pinned at first contact. The gateway's tunnels accept only
// the pinned key (given in config, or learned by the tunnel's step on the gateway); a replica host that comes back with another key makes `pulumi up` fail naming it, and
// its tunnel stops; giving the new key in config (hosts[i].hostKey) is how a user accepts it.
import * as assert from "assert";
import type { PulumiProject } from "../helpers/pulumi-cli";
import { onFreshSandbox, onHost, sandboxState } from "../helpers/sandbox";
import { sandboxStack } from "../helpers/sandbox-stacks";
import { answeringWorkers } from "../helpers/gateway-client";

const tunnelUnit = (i: number) => `sglang-gateway-tunnel-chat-${i}.service`;

describe("e2e SSH host keys on sandbox hosts: pinned at first contact, a changed key refused", function () {
    this.timeout(900000);
    const stack = onFreshSandbox("e2e-hostkeys");
    let project: PulumiProject;
    let r1Key = "";
    const config = (env: Record<string, string>, r2HostKey?: string, r1HostKey?: string) => {
        const raw = sandboxStack({ gateway: "e2e-hostkeys", replicas: 2 });
        Object.assign(raw.services[0], { env, readinessTimeoutSeconds: 30 });
        if (r2HostKey) Object.assign(raw.services[0].hosts[1], { hostKey: r2HostKey });
        if (r1HostKey) Object.assign(raw.services[0].hosts[0], { hostKey: r1HostKey });
        return raw;
    };
    beforeEach(() => (project = stack()));

    it("a tunnel pins its replica host's key: the one given in config, else the one its step learned on the gateway", async () => {
        r1Key = (await onHost("r1", "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).trim();
        project.setConfig(config({ GENERATION: "1" }, undefined, r1Key));
        await project.up();
        const strict = await onHost("gw", `systemctl cat ${tunnelUnit(0)}`);
        assert.match(strict, /StrictHostKeyChecking=yes/);
        assert.ok(strict.includes(`${sandboxState().hosts.r1.address} ${r1Key}`), "the tunnel to r1 pins its configured key");
        const learned = await onHost("gw", `systemctl cat ${tunnelUnit(1)}; cat /etc/sglang-gateway/keys/chat-replica-1.known_hosts`);
        assert.match(learned, /StrictHostKeyChecking=yes/);
        assert.doesNotMatch(learned, /accept-new|SGLANG_GATEWAY_LEARNED_HOST_KEY/);
        const r2Key = (await onHost("r2", "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).trim();
        assert.ok(learned.includes(`echo '${sandboxState().hosts.r2.address} ${r2Key}' >`), "the tunnel to r2 pins the key its step learned");
        assert.strictEqual((await answeringWorkers(4)).length, 2);
    });

    it("a replica host with a new key: its tunnel refuses it, and up fails naming the host and both fingerprints", async () => {
        const r2 = sandboxState().hosts.r2.address;
        await onHost("r2", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh");
        await onHost("gw", `systemctl restart ${tunnelUnit(1)} || true; sleep 3`);
        const journal = await onHost("gw", `journalctl -u ${tunnelUnit(1)} -n 30 --no-pager`);
        assert.match(journal, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
        project.setConfig(config({ GENERATION: "2" }, undefined, r1Key));
        const failed = await project.up().then(
            () => "",
            (err: Error) => err.message,
        );
        assert.match(failed, new RegExp(`the SSH host key of root@${r2.replace(/\./g, "\\.")}:22 changed: it presented ssh-ed25519 SHA256:`));
        assert.match(failed, /set its hostKey to the new key/);
    });

    it("giving the new key in config accepts it: up succeeds and the tunnel serves again", async () => {
        const newKey = (await onHost("r2", "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).trim();
        project.setConfig(config({ GENERATION: "2" }, newKey, r1Key));
        await project.up();
        assert.strictEqual((await onHost("gw", `systemctl is-active ${tunnelUnit(1)}`)).trim(), "active");
        assert.strictEqual((await answeringWorkers(4)).length, 2);
        await project.run(["destroy", "--yes", "--skip-preview"]);
    });
});
