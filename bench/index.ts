// `npm run bench`: fresh sandbox hosts, a real deploy, the measurements side by side, the sandbox down
// again; prints the tables and writes BENCHMARKS.md.
//
//   npm run bench                       the full run (about an hour on a busy 2-core machine)
//   npm run bench -- --quick            smaller counts, N = 1 and 2 only: a smoke run
//   npm run bench -- --out FILE         write the report elsewhere (default BENCHMARKS.md)
//   npm run bench -- --skip scaling     leave out phases (datapath, streams, priorart, tuning, scaling)
//   npm run bench -- --from-results F   only render the report again from a run's saved measurements
//
// Runs with the sandbox of $SGLANG_GATEWAY_CACHE (default ~/.cache/sglang-gateway), which it takes
// down first and leaves down; traffic goes only to its hosts and this machine's loopback.
import * as fs from "fs";
import * as os from "os";
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
import { measureStreams, noSessionLabel, streamTable, type StreamRun } from "./streams";
import { renderTable } from "./table";
import { measureTimeToServe, serveTable } from "./time-to-serve";
import { hops } from "./topology";
import { measureTuning } from "./tuning";

const repo = path.resolve(__dirname, "..");

function option(name: string): string | undefined {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Writes BENCHMARKS.md and prints its tables. */
function report(results: BenchResults, out: string): void {
    fs.writeFileSync(out, renderReport(results));
    const { mode } = results;
    const labels = { ...Object.fromEntries(results.hops.map((h) => [h.name, h.label])), tunnelNoSession: noSessionLabel };
    for (const table of [
        latencyTable(results.dataPath, results.hops, "direct", mode.concurrencies),
        cpuTable(results.dataPath, results.hops, mode.concurrencies),
        streamTable(results.streams, labels, mode),
        latencyTable(results.priorArt, priorArtVariants, "ours", mode.concurrencies),
        scalingTable(results.scaling),
        serveTable(results.timeToServe),
    ]) {
        console.log(`${renderTable(table)}\n`);
    }
    console.log(`bench: wrote ${path.relative(process.cwd(), out) || out}`);
}

async function main(): Promise<void> {
    const quick = process.argv.includes("--quick");
    const mode = quick ? quickMode : fullMode;
    const out = path.resolve(repo, option("--out") ?? "BENCHMARKS.md");
    const saved = option("--from-results");
    if (saved) {
        const results = JSON.parse(fs.readFileSync(saved, "utf8")) as BenchResults;
        return report({ ...results, started: new Date(results.started) }, out);
    }
    const resultsFile = path.join(os.tmpdir(), `sgw-bench-results-${Date.now()}.json`);
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
        const tuning = await phase<PathRun[]>("tuning", [], () => measureTuning(s.gw, mode));
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
            tuning,
            scaling,
            timeToServe: serve.runs,
        };
        // The measurements first: a report can be rendered again from them (--from-results) without measuring.
        fs.writeFileSync(resultsFile, JSON.stringify(results));
        console.error(`bench: measurements in ${resultsFile}`);
        report(results, out);
    } finally {
        down();
    }
}

main().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
});
