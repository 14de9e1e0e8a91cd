// A replica's environment from the settings: `{NAME: value}`, or `[NAME=value, NAME]` where a bare
// NAME takes its value from the environment of `pulumi up`.
import type * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";

export function resolveEnv(
    env: Record<string, pulumi.Input<string>> | string[] | undefined,
    environment: NodeJS.ProcessEnv,
    where: string,
): Record<string, pulumi.Input<string>> {
    if (!Array.isArray(env)) {
        return env ?? {};
    }
    const problems: string[] = [];
    const out: Record<string, string> = {};
    env.forEach((entry, j) => {
        const eq = entry.indexOf("=");
        if (eq >= 0) {
            out[entry.slice(0, eq)] = entry.slice(eq + 1);
        } else if (environment[entry] !== undefined) {
            out[entry] = environment[entry] as string;
        } else {
            problems.push(`${where}[${j}]: ${entry} has no value here: set it in the environment of \`pulumi up\`, or write ${entry}=VALUE (got "${entry}")`);
        }
    });
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return out;
}
