// `npm run gateway`: what to run on the gateway for a command, from the stack's outputs. Pure: the CLI
// (cli.ts) runs the result over SSH; the unit tests read it.
import type { GatewaySshAccess, ServiceObservability } from "../../components/observability";
import { render } from "../../components/templates";

/** The stack outputs the CLI reads (index.ts exports them). */
export interface StackOutputs {
    observability: { gateway: GatewaySshAccess; services: Record<string, ServiceObservability> };
    /** The gateway's SSH key: a secret output, read with --show-secrets. */
    gatewaySshKey: string;
}

export type Command =
    { kind: "logs"; service: string; router: boolean; nginx: boolean; follow: boolean; lines: number } | { kind: "metrics"; service: string; process: 1 | 2 };

export const usage = `usage: npm run gateway -- <command> <service> [options] [--stack NAME] [--cwd DIR]
  logs <service> [--router | --nginx] [-f] [-n LINES]   the service's nginx access log (JSON lines) and router journal
  metrics <service> [--process 2]                       its router's Prometheus metrics (the second router with --process 2)
Reads the outputs of the stack in DIR (default: here) with \`pulumi stack output --show-secrets\` and runs the command
on the gateway over SSH, checking the host key the stack pinned.`;

/** A usage error: the message says what was wrong, then how to call. */
export class UsageError extends Error {}

/** Parses the command line (after `--`): the command and the options for `pulumi` (`--stack`, `--cwd`). */
export function parseArgs(argv: string[]): { command: Command; stack?: string; cwd?: string } {
    const rest = [...argv];
    const take = (flag: string): string => {
        const value = rest.shift();
        if (value === undefined || value.startsWith("-")) {
            throw new UsageError(`${flag} needs a value`);
        }
        return value;
    };
    let stack: string | undefined;
    let cwd: string | undefined;
    let router = false;
    let nginx = false;
    let follow = false;
    let lines: number | undefined;
    let process: 1 | 2 = 1;
    const words: string[] = [];
    while (rest.length > 0) {
        const arg = rest.shift() as string;
        if (arg === "--stack" || arg === "-s") stack = take(arg);
        else if (arg === "--cwd" || arg === "-C") cwd = take(arg);
        else if (arg === "--router") router = true;
        else if (arg === "--nginx") nginx = true;
        else if (arg === "-f" || arg === "--follow") follow = true;
        else if (arg === "-n" || arg === "--lines") {
            const text = take(arg);
            lines = Number(text);
            if (!Number.isInteger(lines) || lines < 0 || lines > 100000) throw new UsageError(`${arg}: expected a whole number from 0 to 100000 (got ${text})`);
        } else if (arg === "--process") {
            const text = take(arg);
            if (text !== "1" && text !== "2") throw new UsageError(`--process: expected 1 or 2 (got ${text})`);
            process = Number(text) as 1 | 2;
        } else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        else words.push(arg);
    }
    const [kind, service, ...extra] = words;
    if (kind !== "logs" && kind !== "metrics") throw new UsageError(kind === undefined ? "no command" : `unknown command ${kind}`);
    if (service === undefined) throw new UsageError(`${kind}: which service?`);
    if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(" ")}`);
    const options = { ...(stack ? { stack } : {}), ...(cwd ? { cwd } : {}) };
    if (kind === "metrics") {
        if (router || nginx || follow || lines !== undefined) throw new UsageError("metrics takes no --router, --nginx, -f or -n");
        return { command: { kind, service, process }, ...options };
    }
    if (process !== 1) throw new UsageError("logs takes no --process: it shows every router process of the service");
    // Neither flag: both logs.
    const both = !router && !nginx;
    return { command: { kind, service, router: router || both, nginx: nginx || both, follow, lines: lines ?? (follow ? 10 : 100) }, ...options };
}

/** The outputs as `pulumi stack output --json --show-secrets` prints them, checked for what the CLI needs. */
export function readOutputs(json: string): StackOutputs {
    const outputs = JSON.parse(json) as Partial<StackOutputs>;
    const gateway = outputs.observability?.gateway;
    if (!gateway?.host || typeof outputs.gatewaySshKey !== "string" || !outputs.observability?.services) {
        throw new Error(
            "the stack has no observability outputs (observability.gateway, gatewaySshKey): run `pulumi up` with this version of the stack program first",
        );
    }
    return outputs as StackOutputs;
}

/** The shell script (run as root on the gateway) for a command. */
export function remoteScript(outputs: StackOutputs, command: Command): string {
    const services = outputs.observability.services;
    const service = services[command.service];
    if (!service) {
        const known = Object.keys(services).sort();
        throw new UsageError(`no service ${command.service} in this stack: it has ${known.length > 0 ? known.join(", ") : "none"}`);
    }
    if (command.kind === "logs") {
        if (command.router && !command.nginx && service.routers.length === 0) {
            throw new UsageError(`service ${command.service} has no router (a plain gateway): only --nginx`);
        }
        return render("scripts/observe-logs.sh.njk", {
            service: command.service,
            nginx: command.nginx,
            accessLog: service.accessLog,
            routerUnits: command.router ? service.routers.map((r) => r.unit) : [],
            follow: command.follow,
            lines: command.lines,
        });
    }
    const router = service.routers[command.process - 1];
    if (!router?.metricsUrl) {
        throw new UsageError(
            router
                ? `the router of ${command.service} serves no metrics`
                : service.routers.length === 0
                  ? `service ${command.service} has no router (a plain gateway), so no router metrics`
                  : `service ${command.service} runs ${service.routers.length} router process: --process ${command.process} is not one`,
        );
    }
    return render("scripts/observe-metrics.sh.njk", { service: command.service, unit: router.unit, metricsUrl: router.metricsUrl });
}
