// `npm run bench`: fresh sandbox hosts, a real deploy, the measurements side by side, the sandbox down
// again; prints the tables and writes BENCHMARKS.md.
//
//   npm run bench                       the full run (about an hour on a busy 2-core machine)
//   npm run bench -- --quick            smaller counts, N = 1 and 2 only: a smoke run
//   npm run bench -- --out FILE         write the report elsewhere (default BENCHMARKS.md)
//   npm run bench -- --skip scaling     leave out phases (datapath, streams, priorart, scaling)
//
// Runs with the sandbox of $SGLANG_GATEWAY_CACHE (default ~/.cache/sglang-gateway), which it takes
// down first and leaves down; traffic goes only to its hosts and this machine's loopback.
import * as fs from "fs";
import * as path from "path";
import { gatewayCacheDir } from "../test/helpers/cache";
import type { PulumiProject } from "../test/helpers/pulumi-cli";
import { sandboxRun } from "../test/helpers/sandbox";
import { cpuTable, latencyTable, measureDataPath, type PathRun } from "./datapath";
import { connectAll, type HostSession } from "./hosts";
import { describeMachine, loadAverage, otherSandboxes } from "./machine";
import { fullMode, quickMode } from "./mode";
import { measurePriorArt, priorArtVariants } from "./prior-art";
import { renderReport, type BenchResults } from "./report";
import { measureScaling, scalingTable, type ScalingResult } from "./scaling";
import { measureStreams, noDelayLabel, streamTable, type StreamRun } from "./streams";
import { renderTable } from "./table";
import { measureTimeToServe, serveTable } from "./time-to-serve";
import { hops } from "./topology";

const repo = path.resolve(__dirname, "..");

function option(name: string): string | undefined {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
    const quick = process.argv.includes("--quick");
    const mode = quick ? quickMode : fullMode;
    const out = path.resolve(repo, option("--out") ?? "BENCHMARKS.md");
    const skip = new Set((option("--skip") ?? "").split(",").filter(Boolean));
    const started = new Date();
    const loads = [loadAverage()];
    let sessions: Record<"gw" | "r1" | "r2", HostSession> | undefined;
    let project: PulumiProject | undefined;
    const down = () => {
        for (const session of Object.values(sessions ?? {})) {
            session.end();
        }
        const { status, stderr } = sandboxRun("down");
        if (status !== 0) console.error(`bench: sandbox.sh down failed: ${stderr}`);
        project?.remove();
    };
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.once(signal, () => {
            console.error(`bench: ${signal}: taking the sandbox down`);
            down();
            process.exit(130);
        });
    }
    try {
        console.error(`bench: ${mode.name} mode, sandbox of ${gatewayCacheDir()}`);
        const serve = await measureTimeToServe(mode);
        project = serve.project;
        sessions = await connectAll();
        const others = otherSandboxes();
        const nginx = (await sessions.gw.exec("nginx -v")).stderr.trim().replace(/^nginx version: /, "");
        const routerPackage = (await project.run(["stack", "output", "routerPackage"])).stdout.trim();
        const path_ = hops();
        const phase = async <T>(name: string, empty: T, run: () => Promise<T>): Promise<T> => {
            if (skip.has(name)) return empty;
            loads.push(loadAverage());
            const result = await run();
            loads.push(loadAverage());
            return result;
        };
        const s = sessions;
        const dataPath = await phase<PathRun[]>("datapath", [], () => measureDataPath(s, path_, mode));
        const streams = await phase<StreamRun[]>("streams", [], () => measureStreams(s, path_, mode));
        const priorArt = await phase<PathRun[]>("priorart", [], () => measurePriorArt(s.gw, mode));
        const scaling = await phase<ScalingResult>("scaling", { runs: [] }, () => measureScaling(project as PulumiProject, s, mode, 1));
        const results: BenchResults = {
            mode,
            command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
            started,
            minutes: (Date.now() - started.getTime()) / 60000,
            machine: describeMachine(path.join(gatewayCacheDir(), "pulumi", "bin")),
            routerPackage,
            nginx,
            otherSandboxes: [...new Set([...others, ...otherSandboxes()])],
            loadAverages: loads,
            hops: path_,
            dataPath,
            streams,
            priorArt,
            scaling,
            timeToServe: serve.runs,
        };
        fs.writeFileSync(out, renderReport(results));
        const labels = { ...Object.fromEntries(path_.map((h) => [h.name, h.label])), tunnelNoDelay: noDelayLabel };
        for (const table of [
            latencyTable(dataPath, path_, "direct", mode.concurrencies),
            cpuTable(dataPath, path_, mode.concurrencies),
            streamTable(streams, labels, mode),
            latencyTable(priorArt, priorArtVariants, "ours", mode.concurrencies),
            scalingTable(scaling),
            serveTable(serve.runs),
        ]) {
            console.log(`${renderTable(table)}\n`);
        }
        console.log(`bench: wrote ${path.relative(process.cwd(), out) || out}`);
    } finally {
        down();
    }
}

main().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
});
