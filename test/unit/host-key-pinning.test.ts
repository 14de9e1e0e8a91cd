// SSH host keys: a step pins the key its host presents at first contact, and later steps refuse another
// one with an error that names the host and both fingerprints; a key given in config wins. Against an
// in-process SSH server (ssh2's) on loopback whose host key the test can change.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { Server, utils } from "ssh2";
import type { AddressInfo } from "net";
import { hostScriptProvider, type HostScriptInputs } from "../../components/host-script";
import { hostKeyFingerprint, hostKeyProblem, keyLine } from "../../components/host-script/ssh";
import { tunnelUnitFile } from "../../components/host-files/replica";

const provider = hostScriptProvider as Required<pulumi.dynamic.ResourceProvider>;
const clientKey = utils.generateKeyPairSync("ed25519");

/** An SSH server that accepts the test's key and runs nothing: every exec reads its input and exits 0. */
async function sshServer(): Promise<{ port: number; hostKey: string; stop(): Promise<void> }> {
    const host = utils.generateKeyPairSync("ed25519");
    const server = new Server({ hostKeys: [host.private] }, (client) => {
        client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
        client.on("session", (accept) =>
            accept().on("exec", (acceptExec) => {
                const stream = acceptExec();
                stream.on("data", () => undefined);
                stream.on("end", () => {
                    stream.exit(0);
                    stream.end();
                });
            }),
        );
        client.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        port: (server.address() as AddressInfo).port,
        hostKey: keyLine(host.public),
        stop: () => new Promise((resolve) => server.close(() => resolve())),
    };
}

const inputs = (port: number, hostKey?: string, create = "true"): HostScriptInputs => ({
    connection: { host: "127.0.0.1", port, user: "root", privateKey: clientKey.private, ...(hostKey ? { hostKey } : {}) },
    description: "test step",
    create,
    delete: "true",
});

describe("SSH host key pinning", () => {
    it("create pins the key the host presents; an update and a delete to the same host pass", async () => {
        const server = await sshServer();
        try {
            const created = await provider.create(inputs(server.port));
            assert.strictEqual(created.outs.hostKey, server.hostKey);
            const updated = await provider.update(created.id, created.outs, inputs(server.port, undefined, "echo changed"));
            assert.strictEqual(updated.outs?.hostKey, server.hostKey);
            await provider.delete(created.id, updated.outs);
        } finally {
            await server.stop();
        }
    });

    it("another key at the same address fails with the host, both fingerprints and what to do; the configured new key is then accepted", async () => {
        const first = await sshServer();
        const created = await provider.create(inputs(first.port));
        await first.stop();
        // The same address, a rebuilt host: a new host key.
        const rebuilt = await sshServer();
        try {
            const moved = { ...created.outs, connection: { ...created.outs.connection, port: rebuilt.port } };
            await assert.rejects(provider.update(created.id, moved, inputs(rebuilt.port, undefined, "echo changed")), (err: Error) => {
                assert.match(err.message, new RegExp(`the SSH host key of root@127\\.0\\.0\\.1:${rebuilt.port} changed`));
                assert.ok(err.message.includes(hostKeyFingerprint(rebuilt.hostKey)) && err.message.includes(hostKeyFingerprint(first.hostKey)), err.message);
                assert.match(err.message, /set its hostKey to the new key \(`ssh-keyscan -p \d+ 127\.0\.0\.1`\)/);
                return true;
            });
            await assert.rejects(provider.delete(created.id, moved), /changed/);
            // Given in config, the new key wins over the pin.
            const accepted = await provider.update(created.id, moved, inputs(rebuilt.port, rebuilt.hostKey, "echo changed"));
            assert.strictEqual(accepted.outs?.hostKey, rebuilt.hostKey);
        } finally {
            await rebuilt.stop();
        }
    });

    it("a key given in config is checked at the very first contact", async () => {
        const server = await sshServer();
        const other = keyLine(utils.generateKeyPairSync("ed25519").public);
        try {
            await assert.rejects(provider.create(inputs(server.port, other)), /changed: it presented ssh-ed25519 SHA256:/);
        } finally {
            await server.stop();
        }
    });

    it("the comparison ignores comments and spacing, and fingerprints match OpenSSH's format", () => {
        const key = keyLine(utils.generateKeyPairSync("ed25519").public);
        assert.strictEqual(hostKeyProblem({ host: "h" }, `${key}  root@host`, key), undefined);
        assert.match(hostKeyFingerprint(key), /^SHA256:[A-Za-z0-9+/]{43}$/);
    });

    it("a tunnel with a pinned key accepts no other (StrictHostKeyChecking=yes and the key written first); without one it learns (accept-new)", () => {
        const key = keyLine(utils.generateKeyPairSync("ed25519").public);
        const base = { service: "chat", index: 0, host: "10.0.0.3", user: "root", remotePort: 8000 };
        const pinnedUnit = tunnelUnitFile({ ...base, port: 2222, hostKey: key }).content;
        assert.match(pinnedUnit, /-o StrictHostKeyChecking=yes /);
        assert.ok(
            pinnedUnit.includes(`ExecStartPre=/bin/sh -c "echo '[10.0.0.3]:2222 ${key}' > /etc/sglang-gateway/keys/chat-replica-0.known_hosts"`),
            pinnedUnit,
        );
        const learning = tunnelUnitFile({ ...base, port: 22 }).content;
        assert.match(learning, /-o StrictHostKeyChecking=accept-new /);
        assert.doesNotMatch(learning, /known_hosts"/);
        assert.throws(() => tunnelUnitFile({ ...base, port: 22, hostKey: "ssh-ed25519 AAAA'; rm -rf /" }), /is not an SSH host key line/);
    });
});
