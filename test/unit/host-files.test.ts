// A replica's host files, rendered by pure functions from plain values (no Pulumi runtime).
import * as assert from "assert";
import { spawnSync } from "child_process";
import { bridgeFile, replicaProcessFiles, tunnelKeyFile, tunnelUnitFile } from "../../components/host-files/replica";

const base = {
    service: "chat",
    index: 2,
    port: 8001,
    model: "m/x",
    commands: ["echo start", "exec serve --port $PORT"],
    env: { HF_TOKEN: 'a "q" $x\\y' },
    reachMode: "tunnel" as const,
};

describe("replica host files", () => {
    it("process: run script runs the commands in order; the unit reads the env file; paths follow the replica", () => {
        const files = replicaProcessFiles(base);
        assert.strictEqual(files.runScript.path, "/opt/sglang-gateway/chat/replica-2/run.sh");
        assert.strictEqual(files.runScript.mode, "0755");
        assert.match(files.runScript.content, /echo start\nexec serve --port \$PORT/);
        assert.strictEqual(spawnSync("bash", ["-n"], { input: files.runScript.content }).status, 0);
        assert.strictEqual(files.unit.path, "/etc/systemd/system/sglang-gateway-chat-replica-2.service");
        assert.match(files.unit.content, /^EnvironmentFile=\/opt\/sglang-gateway\/chat\/replica-2\/env$/m);
        assert.match(files.unit.content, /^ExecStart=\/bin\/bash \/opt\/sglang-gateway\/chat\/replica-2\/run\.sh$/m);
    });

    it("env file: systemd quoting keeps the value verbatim; the replica's own variables follow the user's", () => {
        const { envFile } = replicaProcessFiles(base);
        assert.strictEqual(envFile.mode, "0600");
        assert.match(envFile.content, /^HF_TOKEN="a \\"q\\" \$x\\\\y"$/m);
        for (const line of ['SERVICE_NAME="chat"', 'REPLICA_INDEX="2"', 'MODEL="m/x"', 'PORT="8001"']) {
            assert.ok(envFile.content.includes(line), line);
        }
    });

    it("image: docker runs the commands with every variable passed by name, published on loopback for a tunnel", () => {
        const tunnel = replicaProcessFiles({ ...base, image: "lmsysorg/sglang:latest" }).runScript.content;
        assert.match(
            tunnel,
            /docker run --rm --init --name sglang-gateway-chat-2 --gpus all -e HF_TOKEN -e SERVICE_NAME -e REPLICA_INDEX -e MODEL -e PORT -p 127\.0\.0\.1:8001:8001 /,
        );
        const direct = replicaProcessFiles({ ...base, image: "img", reachMode: "direct" }).runScript.content;
        assert.match(direct, /-p 0\.0\.0\.0:8001:8001 /);
        assert.doesNotMatch(tunnel, /HF_TOKEN=/, "values stay in the env file, off the command line");
    });

    it("tunnel: a unix socket on the gateway forwarded to the model server's loopback port", () => {
        const unit = tunnelUnitFile({ service: "chat", index: 2, host: "10.0.0.3", port: 2222, user: "ops", remotePort: 8001 });
        assert.strictEqual(unit.path, "/etc/systemd/system/sglang-gateway-tunnel-chat-2.service");
        assert.match(unit.content, /-p 2222 .* -L \/run\/sglang-gateway\/chat\/replica-2\.sock:127\.0\.0\.1:8001 ops@10\.0\.0\.3 'exec sleep infinity'$/m);
        // A session with a pty (sshd then sets TCP_NODELAY: stream chunks are not held), not -N.
        assert.match(unit.content, /^ExecStart=\/usr\/bin\/ssh -tt /m);
        assert.match(unit.content, /-i \/etc\/sglang-gateway\/keys\/chat-replica-2 /);
        assert.deepStrictEqual(tunnelKeyFile("chat", 2, "  KEY\n\n"), { path: "/etc/sglang-gateway/keys/chat-replica-2", mode: "0600", content: "KEY\n" });
    });

    it("bridge: listens on the replica's bridge port on loopback and keeps upstream connections alive", () => {
        const bridge = bridgeFile({ service: "chat", index: 2, bridgePort: 12345, target: "unix:/run/x.sock" });
        assert.strictEqual(bridge.path, "/etc/nginx/sglang-gateway/bridges/chat-replica-2.conf");
        assert.match(bridge.content, /listen 127\.0\.0\.1:12345;/);
        assert.match(bridge.content, /upstream sgw_bridge_chat_2 \{\n\s+server unix:\/run\/x\.sock;\n\s+# .*\n\s+keepalive 16;/);
    });
});
