// `npm run gateway -- logs|metrics <service>`: reads the stack's outputs and runs the command on the gateway
// over SSH (the host key checked as every deploy step checks it), streaming what it prints.
import { execFileSync } from "child_process";
import { openSsh, rootShell } from "../../components/host-script/ssh";
import { shellQuote } from "../../components/templates";
import { parseArgs, readOutputs, remoteScript, usage, UsageError } from "./remote";

function stackOutputs(stack: string | undefined, cwd: string | undefined): string {
    const args = ["stack", "output", "--json", "--show-secrets", ...(stack ? ["--stack", stack] : []), ...(cwd ? ["--cwd", cwd] : [])];
    try {
        return execFileSync("pulumi", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
        const e = err as { stderr?: string; message: string; code?: string };
        if (e.code === "ENOENT") {
            throw new Error("pulumi is not on the PATH (`source scripts/env.sh` puts this project's there)");
        }
        throw new Error(`pulumi ${args.join(" ")} failed: ${(e.stderr ?? "").trim() || e.message}`);
    }
}

async function main(argv: string[]): Promise<number> {
    const { command, stack, cwd } = parseArgs(argv);
    const outputs = readOutputs(stackOutputs(stack, cwd));
    const script = remoteScript(outputs, command);
    const gateway = outputs.observability.gateway;
    const client = await openSsh({ ...gateway, privateKey: outputs.gatewaySshKey }, 3);
    process.once("SIGINT", () => {
        client.end();
        process.exit(130);
    });
    // Following: on a terminal of its own, so the tails end with the connection (the terminal's hangup ends
    // them), not at their next line, which may never come. Otherwise the script on standard input.
    const follow = command.kind === "logs" && command.follow;
    const shell = rootShell(gateway.user);
    return new Promise((resolve, reject) =>
        client.exec(follow ? `${shell.replace(/ -s$/, "")} -c ${shellQuote(script)}` : shell, follow ? { pty: true } : {}, (err, stream) => {
            if (err) {
                client.end();
                return reject(err);
            }
            // Braces: bash reads the whole script before it runs any of it.
            stream.end(follow ? "" : `{\n${script}\n}\n`);
            stream.pipe(process.stdout, { end: false });
            stream.stderr.pipe(process.stderr, { end: false });
            stream.on("close", (code: number | null) => {
                client.end();
                resolve(code ?? 1);
            });
        }),
    );
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`gateway: ${err.message}`);
        if (err instanceof UsageError) console.error(usage);
        process.exit(err instanceof UsageError ? 2 : 1);
    },
);
