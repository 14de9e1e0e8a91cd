// The routers this library knows, by the name used in config.
import type { RouterType } from "../config";
import { sglangRouter } from "./sglang";
import type { Router } from "./types";

export type { Router, RouterLaunch, RouterWorkerArgs, RouterWorkerResource } from "./types";

const routers: Record<RouterType, Router> = { sglang: sglangRouter };

export function routerFor(type: RouterType): Router {
    const router = routers[type];
    if (!router) {
        throw new Error(`unknown router type '${type}'; known: ${Object.keys(routers).join(", ")}`);
    }
    return router;
}
