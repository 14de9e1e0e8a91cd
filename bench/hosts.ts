// The sandbox hosts as the benchmark drives them: one SSH connection per host for the whole run
// (no connection set-up inside a measurement), the load generator shipped to each, and commands.
import * as fs from "fs";
import * as path from "path";
import { Client } from "ssh2";
import * as ts from "typescript";
import { sandboxState, type SandboxHost } from "../test/helpers/sandbox";
import type { LoadResult, LoadSpec } from "./loadgen";

/** Where the generator lives on the sandbox hosts (their /tmp is their own). */
const remoteLoadgen = "/tmp/sgw-bench-loadgen.js";

export interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
}

export class HostSession {
    private constructor(
        readonly host: SandboxHost,
        private readonly client: Client,
    ) {}

    static connect(host: SandboxHost): Promise<HostSession> {
        const state = sandboxState();
        const client = new Client();
        return new Promise((resolve, reject) => {
            client.once("ready", () => resolve(new HostSession(host, client)));
            client.once("error", (err) => reject(new Error(`bench: cannot reach ${host} over SSH: ${err.message}`)));
            client.connect({
                host: state.hosts[host].address,
                port: state.hosts[host].port,
                username: "root",
                privateKey: fs.readFileSync(state.privateKeyPath),
                readyTimeout: 30000,
                keepaliveInterval: 10000,
            });
        });
    }

    /** Runs a command; `input` goes to its stdin. Never throws for an exit code: the caller decides. */
    exec(command: string, input?: string, timeoutMs = 600000): Promise<ExecResult> {
        return new Promise((resolve, reject) => {
            this.client.exec(command, (err, channel) => {
                if (err) {
                    return reject(new Error(`${this.host}: ${command}: ${err.message}`));
                }
                let stdout = "";
                let stderr = "";
                const timer = setTimeout(() => {
                    channel.close();
                    reject(new Error(`${this.host}: ${command.slice(0, 200)}: no end within ${timeoutMs / 1000} s`));
                }, timeoutMs);
                channel.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
                channel.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
                channel.on("close", (code: number | null) => {
                    clearTimeout(timer);
                    resolve({ code: code ?? -1, stdout, stderr });
                });
                channel.end(input ?? "");
            });
        });
    }

    /** Runs a command that must succeed; resolves with its stdout. */
    async run(command: string, input?: string, timeoutMs?: number): Promise<string> {
        const result = await this.exec(command, input, timeoutMs);
        if (result.code !== 0) {
            throw new Error(`${this.host}: ${command.slice(0, 300)} failed (exit ${result.code}): ${result.stderr.slice(-2000)}`);
        }
        return result.stdout;
    }

    /** Copies the load generator (transpiled to plain CommonJS: the hosts have node, not ts-node). */
    async installLoadgen(): Promise<void> {
        const source = fs.readFileSync(path.join(__dirname, "loadgen.ts"), "utf8");
        const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
        await this.run(`cat > ${remoteLoadgen}`, js);
    }

    /** One bounded run of the generator on this host. */
    async load(spec: LoadSpec): Promise<LoadResult> {
        const quoted = `'${JSON.stringify(spec).replace(/'/g, "'\\''")}'`;
        const out = await this.run(`node ${remoteLoadgen} ${quoted}`, undefined, (spec.maxSeconds * 2 + 60) * 1000);
        return JSON.parse(out) as LoadResult;
    }

    end(): void {
        this.client.end();
    }
}

/** Sessions to all three sandbox hosts, the generator on each. */
export async function connectAll(): Promise<Record<SandboxHost, HostSession>> {
    const [gw, r1, r2] = await Promise.all((["gw", "r1", "r2"] as const).map((h) => HostSession.connect(h)));
    await Promise.all([gw, r1, r2].map((s) => s.installLoadgen()));
    return { gw, r1, r2 };
}
