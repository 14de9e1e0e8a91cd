// SSH host keys: a step pins the key its host presents at first contact, and later steps refuse another
// one with an error that names the host and both fingerprints; a key given in config wins. Against an
// in-process SSH server (ssh2's) on loopback whose host key the test can change.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Server } from "ssh2";
import type { AddressInfo } from "net";
import { hostScriptProvider, learnedHostKeyMarker, type HostScriptInputs } from "../../components/host-script";
import { sshHostKeyScan } from "../../components/host-script/steps";
import { hostKeyFingerprint, hostKeyProblem, keyLine } from "../../components/host-script/ssh";
import { tunnelUnitFile } from "../../components/host-files/replica";
import { sshKeyPair } from "../helpers/ssh-keys";

const provider = hostScriptProvider as Required<pulumi.dynamic.ResourceProvider>;
const clientKey = sshKeyPair();

/**
 * An SSH server that accepts the test's key. By default it runs nothing: every exec reads its input and
 * exits 0. With runScripts, it runs each exec's command here (`bash -s` reading the script).
 */
async function sshServer(options: { runScripts?: boolean } = {}): Promise<{ port: number; hostKey: string; stop(): Promise<void> }> {
    const host = sshKeyPair();
    const connections = new Set<import("ssh2").Connection>();
    const server = new Server({ hostKeys: [host.private] }, (client) => {
        connections.add(client);
        client.on("close", () => connections.delete(client));
        client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
        client.on("session", (accept) =>
            accept().on("exec", (acceptExec, _reject, info) => {
                const stream = acceptExec();
                if (options.runScripts) {
                    const child = spawn("bash", ["-c", info.command], { stdio: ["pipe", "pipe", "pipe"] });
                    stream.pipe(child.stdin);
                    child.stdout.pipe(stream, { end: false });
                    child.stderr.pipe(stream.stderr, { end: false });
                    child.on("close", (code) => {
                        stream.exit(code ?? 1);
                        stream.end();
                    });
                    return;
                }
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
        // Whatever a failed test left connected goes too: a server with open connections never closes.
        stop: () =>
            new Promise((resolve) => {
                server.close(() => resolve());
                for (const connection of connections) connection.end();
            }),
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
        const other = keyLine(sshKeyPair().public);
        try {
            await assert.rejects(provider.create(inputs(server.port, other)), /changed: it presented ssh-ed25519 SHA256:/);
        } finally {
            await server.stop();
        }
    });

    it("the comparison ignores comments and spacing, and fingerprints match OpenSSH's format", () => {
        const key = keyLine(sshKeyPair().public);
        assert.strictEqual(hostKeyProblem({ host: "h" }, `${key}  root@host`, key), undefined);
        assert.match(hostKeyFingerprint(key), /^SHA256:[A-Za-z0-9+/]{43}$/);
    });

    it("a tunnel accepts no other key than its host's (StrictHostKeyChecking=yes, the key written first): the one given, else the learned one's marker", () => {
        const key = keyLine(sshKeyPair().public);
        const base = { service: "chat", index: 0, host: "10.0.0.3", user: "root", remotePort: 8000 };
        const pinnedUnit = tunnelUnitFile({ ...base, port: 2222, hostKey: key }).content;
        assert.match(pinnedUnit, /-o StrictHostKeyChecking=yes /);
        assert.ok(
            pinnedUnit.includes(`ExecStartPre=/bin/sh -c "echo '[10.0.0.3]:2222 ${key}' > /etc/sglang-gateway/keys/chat-replica-0.known_hosts"`),
            pinnedUnit,
        );
        const learning = tunnelUnitFile({ ...base, port: 22 }).content;
        assert.match(learning, /-o StrictHostKeyChecking=yes /);
        assert.doesNotMatch(learning, /accept-new/);
        assert.ok(
            learning.includes(`ExecStartPre=/bin/sh -c "echo '10.0.0.3 ${learnedHostKeyMarker}' > /etc/sglang-gateway/keys/chat-replica-0.known_hosts"`),
            learning,
        );
        assert.throws(() => tunnelUnitFile({ ...base, port: 22, hostKey: "ssh-ed25519 AAAA'; rm -rf /" }), /is not an SSH host key line/);
    });

    describe("a step that learns another host's key (a tunnel's replica host, as its gateway sees it)", () => {
        // The "gateway" runs scripts here (bash), so its ssh-keyscan reaches the "replica host" on loopback.
        let gateway: Awaited<ReturnType<typeof sshServer>>;
        let dir: string;
        before(async () => {
            gateway = await sshServer({ runScripts: true });
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-learn-"));
        });
        after(async () => {
            await gateway.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        });
        const learning = (replicaPort: number, file: string, variant = ""): HostScriptInputs => ({
            ...inputs(gateway.port, undefined, `printf '%s\\n' '[127.0.0.1]:${replicaPort} ${learnedHostKeyMarker}${variant}' > ${file}`),
            learnHostKey: { target: `127.0.0.1:${replicaPort}`, script: sshHostKeyScan("127.0.0.1", replicaPort) },
        });

        it("create learns the key and writes it in the marker's place; an update keeps it without asking again; another host is learned anew", async () => {
            const replica = await sshServer();
            const file = path.join(dir, "known_hosts");
            const created = await provider.create(learning(replica.port, file));
            assert.deepStrictEqual(created.outs.learnedHostKey, { target: `127.0.0.1:${replica.port}`, key: replica.hostKey });
            assert.strictEqual(fs.readFileSync(file, "utf8"), `[127.0.0.1]:${replica.port} ${replica.hostKey}\n`);
            // The replica host gone: an update of the same tunnel must not scan again (it would fail), it keeps the pin.
            await replica.stop();
            const updated = await provider.update(created.id, created.outs, learning(replica.port, file, " "));
            assert.deepStrictEqual(updated.outs?.learnedHostKey, created.outs.learnedHostKey);
            assert.strictEqual(fs.readFileSync(file, "utf8"), `[127.0.0.1]:${replica.port} ${replica.hostKey} \n`);
            // The tunnel moved to another host: that host's key is learned.
            const moved = await sshServer();
            try {
                const again = await provider.update(created.id, updated.outs as HostScriptInputs, learning(moved.port, file));
                assert.deepStrictEqual(again.outs?.learnedHostKey, { target: `127.0.0.1:${moved.port}`, key: moved.hostKey });
                assert.strictEqual(fs.readFileSync(file, "utf8"), `[127.0.0.1]:${moved.port} ${moved.hostKey}\n`);
            } finally {
                await moved.stop();
            }
        });

        it("a step from before learning (an upgrade) learns at its first update; nothing answering fails naming the host, before the script runs", async () => {
            const replica = await sshServer();
            const file = path.join(dir, "upgraded");
            try {
                const old = { ...inputs(gateway.port, undefined, "true"), hostKey: gateway.hostKey };
                const upgraded = await provider.update("id", old, learning(replica.port, file));
                assert.deepStrictEqual(upgraded.outs?.learnedHostKey, { target: `127.0.0.1:${replica.port}`, key: replica.hostKey });
            } finally {
                await replica.stop();
            }
            const gone = path.join(dir, "never");
            await assert.rejects(provider.create(learning(replica.port, gone)), (err: Error) => {
                assert.match(err.message, new RegExp(`could not read the SSH host key of 127\\.0\\.0\\.1:${replica.port}`));
                assert.match(err.message, /presented no SSH host key to this host/);
                return true;
            });
            assert.ok(!fs.existsSync(gone), "the script did not run");
        });
    });
});
