// What the SGLang router keeps on the gateway, below the names naming.ts gives each service's router.
import { routerPaths } from "../../naming";

/** One file per registered worker URL, read by the start script: a restarted router keeps its workers. */
export function sglangWorkersDir(service: string): string {
    return `${routerPaths(service).stateDir}/workers`;
}

/**
 * Held while the reconcile (beside the router) adds a worker back, and while a RouterWorker removes a
 * worker's file: a worker whose file is gone is never added back. A dot file: the workers' globs skip it.
 */
export function sglangWorkersLock(workersDir: string): string {
    return `${workersDir}/.lock`;
}
