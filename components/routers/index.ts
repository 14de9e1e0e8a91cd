// The routers this library knows, by the name used in config. A new router: its files, and one line here.
import { sglangRouter } from "./sglang/router";
import type { Router } from "./types";

export type {
    NoWorkerAnswer,
    PathAllowList,
    Router,
    RouterInstall,
    RouterLaunch,
    RouterLaunchOptions,
    RouterReconcile,
    RouterReconcileOptions,
    RouterSettings,
    RouterWorkerArgs,
    RouterWorkerResource,
} from "./types";

const routers = new Map<string, Router>([[sglangRouter.type, sglangRouter]]);

/** Adds a router implementation (for a router this package does not ship). */
export function registerRouter(router: Router): void {
    routers.set(router.type, router);
}

export function routerTypes(): string[] {
    return [...routers.keys()];
}

export function routerFor(type: string): Router {
    const router = routers.get(type);
    if (!router) {
        throw new Error(`unknown router type '${type}'; known: ${routerTypes().join(", ")}`);
    }
    return router;
}
