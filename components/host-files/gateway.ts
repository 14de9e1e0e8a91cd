// The gateway's own host files: nginx's base include and the TLS files.
import type { HostFile } from "../host-script/phases";
import { gatewayPaths } from "../naming";
import { render } from "../templates";

/** The base nginx conf: the log format and the includes of every bridge and service. */
export function gatewayBaseConf(gatewayName: string): HostFile {
    return { path: gatewayPaths.baseConf, mode: "0644", content: render("nginx/base.conf.njk", { gatewayName, includeDir: gatewayPaths.includeDir }) };
}
