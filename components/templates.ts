// Renders the text files in templates/ (nginx, systemd, shell) from plain data objects.
import * as fs from "fs";
import * as path from "path";
import * as nunjucks from "nunjucks";

function templatesDir(): string {
    // Source (ts-node) sits one level below the package root, compiled output (bin/components) two.
    const candidates = [path.resolve(__dirname, "..", "templates"), path.resolve(__dirname, "..", "..", "templates")];
    const found = candidates.find((dir) => fs.existsSync(path.join(dir, "nginx")));
    if (!found) {
        throw new Error(`sglang-gateway: templates/ not found next to ${__dirname}; the package is incomplete`);
    }
    return found;
}

/** POSIX shell single-quoting: the value reaches the command verbatim. */
export function shellQuote(value: string | number): string {
    const text = String(value);
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'"'"'`)}'`;
}

let environment: nunjucks.Environment | undefined;

function env(): nunjucks.Environment {
    if (!environment) {
        environment = new nunjucks.Environment(new nunjucks.FileSystemLoader(templatesDir()), {
            autoescape: false,
            throwOnUndefined: true,
            trimBlocks: true,
            lstripBlocks: true,
        });
        environment.addFilter("shq", shellQuote);
        environment.addFilter("systemdQuote", (v: string) => `"${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
        environment.addFilter("nginxString", (v: string) => `'${String(v).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);
    }
    return environment;
}

/** Renders `templates/<name>` with `data`; an undefined variable is an error, not an empty string. */
export function render(name: string, data: object): string {
    return env().render(name, data);
}

/** A data file shipped under templates/ (e.g. pinned requirements), or undefined when there is none. */
export function templateFile(name: string): string | undefined {
    const file = path.join(templatesDir(), name);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
}
