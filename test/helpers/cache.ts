// Where scripts/setup.sh caches the toolchain: ${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}.
import * as os from "os";
import * as path from "path";

export function gatewayCacheDir(): string {
    const env = process.env.SGLANG_GATEWAY_CACHE;
    return env !== undefined && env !== "" ? env : path.join(os.homedir(), ".cache", "sglang-gateway");
}
