// SSH keys given as files (privateKeyPath): read at deploy time, before any resource needs them.
import * as fs from "fs";
import * as os from "os";
import { ConfigError } from "./config";

/** The text of the key file `path` names (`~` is the home directory); `where` names the setting in errors. */
export function readKeyFile(path: string, where: string): string {
    const file = path.replace(/^~(?=\/|$)/, os.homedir());
    try {
        return fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new ConfigError([`${where}: cannot read ${file}: ${(err as Error).message} (got "${path}")`]);
    }
}
