// The real Pulumi CLI on a throwaway project that runs this repo's stack program (index.ts),
// with local state and config files in a temp directory, never in the repo.
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { gatewayCacheDir } from "./cache";

const repo = path.resolve(__dirname, "..", "..");

export interface PulumiResult {
    stdout: string;
    stderr: string;
}

export class PulumiProject {
    readonly dir: string;
    readonly stateDir: string;
    /** The entry file of the program that runs; undefined: this repo's stack program. */
    private programEntry: string | undefined;

    /**
     * `program`: another program than this repo's stack program (a package user's), as the path of its
     * entry file; its directory holds its node_modules and tsconfig.json.
     */
    constructor(
        readonly stack: string,
        program?: string,
    ) {
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-project-"));
        this.stateDir = path.join(this.dir, "state");
        fs.mkdirSync(this.stateDir);
        this.useProgram(program);
    }

    /** The program's entry file from now on (another checkout's, e.g. an earlier commit's, for an upgrade); undefined: this repo's. */
    useProgram(program?: string): void {
        this.programEntry = program;
        fs.writeFileSync(
            path.join(this.dir, "Pulumi.yaml"),
            [
                "name: sglang-gateway",
                "runtime:",
                "  name: nodejs",
                "  options:",
                "    typescript: true",
                `main: ${program ?? path.join(repo, "index.ts")}`,
                "",
            ].join("\n"),
        );
    }

    /** The program's entry file (this repo's index.ts unless another was given). */
    get program(): string {
        return this.programEntry ?? path.join(repo, "index.ts");
    }

    env(): NodeJS.ProcessEnv {
        const cache = gatewayCacheDir();
        return {
            ...process.env,
            PATH: `${path.join(cache, "pulumi", "bin")}:${process.env.PATH}`,
            PULUMI_HOME: path.join(cache, "pulumi", "home"),
            PULUMI_BACKEND_URL: `file://${this.stateDir}`,
            PULUMI_CONFIG_PASSPHRASE: "",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_SKIP_CONFIRMATIONS: "true",
            TS_NODE_PROJECT: path.join(path.dirname(this.program), "tsconfig.json"),
        };
    }

    /** Runs `pulumi <args>` in the project; rejects with all output when it fails. */
    run(args: string[], timeoutMs = 600000): Promise<PulumiResult> {
        return new Promise((resolve, reject) => {
            execFile(
                "pulumi",
                [...args, "--non-interactive", "--stack", this.stack],
                { cwd: this.dir, env: this.env(), maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs },
                (err, stdout, stderr) => {
                    if (err) {
                        reject(
                            new Error(
                                `pulumi ${args.join(" ")} failed: ${err.message}\n--- stdout ---\n${stdout.slice(-8000)}\n--- stderr ---\n${stderr.slice(-4000)}`,
                            ),
                        );
                    } else {
                        resolve({ stdout, stderr });
                    }
                },
            );
        });
    }

    async init(): Promise<void> {
        await new Promise<void>((resolve, reject) =>
            execFile("pulumi", ["stack", "init", this.stack, "--non-interactive"], { cwd: this.dir, env: this.env() }, (err, _o, stderr) =>
                err ? reject(new Error(stderr)) : resolve(),
            ),
        );
    }

    /** Writes the whole stack config (plain values; the program marks keys and tokens secret itself). */
    setConfig(config: { gateway: unknown; services: unknown; tokens?: unknown }): void {
        const file = path.join(this.dir, `Pulumi.${this.stack}.yaml`);
        const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
        const salt = /^encryptionsalt: .*$/m.exec(existing)?.[0];
        const values = { "sglang-gateway:gateway": config.gateway, "sglang-gateway:services": config.services, "sglang-gateway:tokens": config.tokens ?? {} };
        // JSON is YAML flow syntax, so one `config:` line holds it all beside the salt.
        fs.writeFileSync(file, `${salt ? `${salt}\n` : ""}config: ${JSON.stringify(values)}\n`);
    }

    up(): Promise<PulumiResult> {
        return this.run(["up", "--yes", "--skip-preview", "--diff"]);
    }

    /** `pulumi preview --json`: the engine's planned steps. */
    async previewSteps(): Promise<{ op: string; urn: string; type: string }[]> {
        const { stdout } = await this.run(["preview", "--json"]);
        const parsed = JSON.parse(stdout) as { steps?: { op: string; urn: string; newState?: { type: string }; oldState?: { type: string } }[] };
        return (parsed.steps ?? []).map((s) => ({ op: s.op, urn: s.urn, type: s.newState?.type ?? s.oldState?.type ?? "" }));
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
