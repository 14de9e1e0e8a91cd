// The chat service's router on the sandbox gateway, as the e2e suites inspect it: its workers, its
// admin-call counts and the PIDs of the router and nginx.
import { systemUsers } from "../../components/naming";
import { onHost } from "./sandbox";

export const routerUnit = "sglang-gateway-router-chat.service";

/** The router's workers, not counting those smg still lists as draining after a removal (~5 s). */
export interface ListedWorker {
    id: string;
    url: string;
    is_healthy: boolean;
    status?: string;
    /** smg: regular, prefill or decode. */
    worker_type?: string;
    bootstrap_port?: number | null;
}

export async function workers(): Promise<ListedWorker[]> {
    const port = /--port (\d+)/.exec(await onHost("gw", "cat /etc/sglang-gateway/routers/chat/start.sh"))?.[1];
    const listed = (JSON.parse(await onHost("gw", `curl -s 127.0.0.1:${port}/workers`)) as { workers: ListedWorker[] }).workers;
    return listed.filter((w) => w.status !== "draining");
}

/** The router's own count of admin calls, from its Prometheus metrics. */
export async function adminCalls(): Promise<{ posts: number; deletes: number }> {
    const port = /--prometheus-port (\d+)/.exec(await onHost("gw", "cat /etc/sglang-gateway/routers/chat/start.sh"))?.[1];
    const metrics = await onHost("gw", `curl -s 127.0.0.1:${port}/metrics`);
    const sum = (pattern: RegExp) =>
        metrics
            .split("\n")
            .filter((line) => pattern.test(line))
            .reduce((total, line) => total + Number(line.split(" ").pop()), 0);
    // Both generations count HTTP requests as smg_http_requests_total{method, path, ...}; labels in any order.
    return {
        posts: sum(/^smg_http_requests_total\{(?=[^}]*method="POST")(?=[^}]*path="\/workers")[^}]*\}/),
        deletes: sum(/^smg_http_requests_total\{(?=[^}]*method="DELETE")(?=[^}]*path="\/workers\/[^"]+")[^}]*\}/),
    };
}

export async function pids(): Promise<{ router: string; nginx: string }> {
    return {
        router: (await onHost("gw", `systemctl show -p MainPID --value ${routerUnit}`)).trim(),
        nginx: (await onHost("gw", "cat /run/nginx.pid")).trim(),
    };
}

/**
 * What a destroyed gateway still has of this library: its units, its nginx base conf, its directories,
 * the routers' user, and the count of running routers of either generation. Clean is exactly "0".
 */
export async function leftOnGateway(): Promise<string> {
    const left = await onHost(
        "gw",
        "systemctl list-unit-files --plain --no-legend 'sglang-gateway*' | cut -d' ' -f1; ls /etc/nginx/conf.d/sglang-gateway*.conf 2>/dev/null; " +
            `ls -d /etc/nginx/sglang-gateway /opt/sglang-gateway /etc/sglang-gateway /var/lib/sglang-gateway 2>/dev/null; getent passwd ${systemUsers.router}; ` +
            "ps -eo comm | grep -cE 'sglang::router|smg::router' || true",
    );
    return left.trim();
}
