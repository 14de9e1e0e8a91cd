// What the SGLang router keeps on the gateway, below the names naming.ts gives each service's router.
import { routerPaths } from "../../naming";

/** One file per registered worker URL, read by the start script: a restarted router keeps its workers. */
export function sglangWorkersDir(service: string): string {
    return `${routerPaths(service).stateDir}/workers`;
}
