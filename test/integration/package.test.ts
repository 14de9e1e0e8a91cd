// The package as a platform team gets it: `npm pack` ships the library only (compiled code, type
// declarations, templates, docs, README, licence), built on pack; `require` and `import` of the
// package name both give the API, and the packed code finds its templates.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repo = path.resolve(__dirname, "..", "..");

describe("the npm package", function () {
    this.timeout(180000);
    let dir: string;
    let files: string[];

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-pack-"));
        // prepack builds: a checkout without bin/ still packs the compiled library.
        const out = execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        const [packed] = JSON.parse(out.slice(out.indexOf("["))) as { filename: string; files: { path: string }[] }[];
        files = packed.files.map((f) => f.path);
        const project = path.join(dir, "project");
        const installed = path.join(project, "node_modules", "sglang-gateway");
        fs.mkdirSync(installed, { recursive: true });
        execFileSync("tar", ["-xzf", path.join(dir, packed.filename), "-C", installed, "--strip-components=1"]);
        // The package's dependencies, as npm would install them beside it.
        const pkg = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")) as { dependencies: Record<string, string> };
        for (const dep of Object.keys(pkg.dependencies)) {
            fs.mkdirSync(path.dirname(path.join(project, "node_modules", dep)), { recursive: true });
            fs.symlinkSync(path.join(repo, "node_modules", dep), path.join(project, "node_modules", dep));
        }
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("ships the library only: compiled code with type declarations, templates, docs, README, licence, changelog", () => {
        for (const needed of [
            "bin/components/index.js",
            "bin/components/index.d.ts",
            "templates/nginx/service.conf.njk",
            "templates/routers/smg-1.13.0.constraints.txt",
            "templates/acme/certbot-5.8.0.constraints.txt",
            "bin/components/certificates/acme.js",
            "README.md",
            "LICENSE",
            "CHANGELOG.md",
        ]) {
            assert.ok(files.includes(needed), `${needed} missing from the tarball`);
        }
        const stray = files.filter((f) => /^(test|scripts|examples|bench)\/|^bin\/(test|examples|bench|index)|Pulumi\.|\.ts$/.test(f) && !f.endsWith(".d.ts"));
        assert.deepStrictEqual(stray, []);
    });

    it("require and import of the package name give the typed API; the packed code renders its templates", () => {
        const project = path.join(dir, "project");
        const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: project, encoding: "utf8" }).trim();
        assert.strictEqual(
            run(["-e", "const g = require('sglang-gateway'); console.log([typeof g.Gateway, typeof g.Service, typeof g.buildStack].join(','))"]),
            "function,function,function",
        );
        assert.strictEqual(
            run(["--input-type=module", "-e", "import { Gateway, Service } from 'sglang-gateway'; console.log(typeof Gateway, typeof Service)"]),
            "function function",
        );
        const types = fs.readFileSync(path.join(project, "node_modules", "sglang-gateway", "bin", "components", "index.d.ts"), "utf8");
        assert.match(types, /GatewayArgs/);
        const rendered = run([
            "-e",
            "console.log(require('./node_modules/sglang-gateway/bin/components/templates.js').render('nginx/base.conf.njk', { gatewayName: 'g', includeDir: '/x' }))",
        ]);
        assert.match(rendered, /include \/x\/services\/\*\.conf;/);
    });

    it("the modules Pulumi's serialized providers require by package path resolve (`sglang-gateway/bin/components/...`)", () => {
        const project = path.join(dir, "project");
        // Closure serialization turns a provider's module references into requires of the package's files.
        const resolved = execFileSync(
            process.execPath,
            [
                "-e",
                "for (const m of ['host-script/ssh.js', 'routers/admin-session.js', 'routers/sglang/worker.js']) console.log(typeof require('sglang-gateway/bin/components/' + m))",
            ],
            { cwd: project, encoding: "utf8" },
        ).trim();
        assert.strictEqual(resolved, "object\nobject\nobject");
    });
});
