// Runs the real nginx on rendered configuration: `nginx -t`, or a real server on loopback.
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { render } from "../../components/templates";

export interface NginxSite {
    /** Rendered service files (http context), keyed by file name. */
    services?: Record<string, string>;
    /** Rendered bridge files, keyed by file name. */
    bridges?: Record<string, string>;
    /** More files, keyed by absolute path, rendered for the prefix directory (the model endpoint's: they name their paths). */
    files?: (dir: string) => Record<string, string>;
    /** Dynamic modules to load (e.g. njs), as the distribution's modules-enabled/ does. */
    modules?: string[];
}

function writeFiles(dir: string, site: NginxSite): void {
    for (const [file, text] of Object.entries(site.files?.(dir) ?? {})) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
    }
}

export function nginxBinary(): string {
    for (const candidate of ["/usr/sbin/nginx", "/usr/bin/nginx"]) {
        if (fs.existsSync(candidate)) {
            return candidate;
        }
    }
    throw new Error("nginx is not installed: run `bash scripts/setup.sh` (npm test does) to install it from Debian");
}

/** Lays out a prefix directory whose nginx.conf includes the site the way the gateway's does. */
export function layout(site: NginxSite): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-nginx-"));
    for (const kind of ["services", "bridges"] as const) {
        fs.mkdirSync(path.join(dir, kind));
        for (const [name, text] of Object.entries(site[kind] ?? {})) {
            fs.writeFileSync(path.join(dir, kind, name), text);
        }
    }
    writeFiles(dir, site);
    fs.mkdirSync(path.join(dir, "logs"));
    fs.writeFileSync(path.join(dir, "base.conf"), render("nginx/base.conf.njk", { gatewayName: "test", includeDir: dir }));
    fs.writeFileSync(
        path.join(dir, "nginx.conf"),
        [
            ...(site.modules ?? []).map((m) => `load_module ${m};`),
            "worker_processes 1;",
            `pid ${dir}/nginx.pid;`,
            `error_log ${dir}/logs/error.log;`,
            "events { worker_connections 256; }",
            "http {",
            `    client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
            `    fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
            `    access_log ${dir}/logs/access.log;`,
            `    include ${dir}/base.conf;`,
            "}",
            "",
        ].join("\n"),
    );
    return dir;
}

/** `nginx -t` on the site; returns nginx's output, throws with it when the test fails. */
export function nginxTest(site: NginxSite): string {
    const dir = layout(site);
    try {
        return execFileSync(nginxBinary(), ["-t", "-p", dir, "-c", `${dir}/nginx.conf`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
        const e = err as { stderr?: string };
        throw new Error(`nginx -t failed:\n${e.stderr}`);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** A real nginx serving the site in the foreground; stop() ends it and removes its files. */
export async function startNginx(site: NginxSite): Promise<{ dir: string; stop(): Promise<void>; reload(site: NginxSite): void; masterPid: number }> {
    const dir = layout(site);
    const child: ChildProcess = spawn(nginxBinary(), ["-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"], { stdio: ["ignore", "inherit", "inherit"] });
    const deadline = Date.now() + 10000;
    while (!fs.existsSync(`${dir}/nginx.pid`)) {
        if (Date.now() > deadline || child.exitCode !== null) {
            throw new Error(`nginx did not start: ${fs.existsSync(`${dir}/logs/error.log`) ? fs.readFileSync(`${dir}/logs/error.log`, "utf8") : ""}`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    return {
        dir,
        masterPid: child.pid as number,
        reload(next: NginxSite) {
            for (const kind of ["services", "bridges"] as const) {
                fs.rmSync(path.join(dir, kind), { recursive: true, force: true });
                fs.mkdirSync(path.join(dir, kind));
                for (const [name, text] of Object.entries(next[kind] ?? {})) {
                    fs.writeFileSync(path.join(dir, kind, name), text);
                }
            }
            writeFiles(dir, next);
            execFileSync(nginxBinary(), ["-p", dir, "-c", `${dir}/nginx.conf`, "-s", "reload"]);
        },
        async stop() {
            child.kill("SIGQUIT");
            await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}
