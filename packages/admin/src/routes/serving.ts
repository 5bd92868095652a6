import type Router from '@koa/router';
import type { AdminState, ResolvedDeps } from '../context.js';
import type { ServingView } from '../deps.js';

/**
 * GET /serving — "this node can serve now": the probe for load balancers and Kubernetes
 * readiness. 200 while serving, 503 otherwise, with the same JSON body either way (the
 * mode, whether the node is active, why, and how stale its pool may be). GET /ready
 * stays "this node holds the active role" (routes/node.ts).
 */
export function servingRoutes(router: Router<AdminState>, deps: ResolvedDeps): void {
  router.get('/serving', (ctx) => {
    const view: ServingView = deps.cluster.serving?.() ?? fromActive(deps.cluster.isActive());
    ctx.status = view.serving ? 200 : 503;
    if (!view.serving) ctx.set('cache-control', 'no-store');
    ctx.body = view;
  });
}

/** A node without a serving policy (single node) serves while it is active. */
function fromActive(active: boolean): ServingView {
  return { mode: 'active-passive', serving: active, active, reason: active ? 'active' : 'not active', stalenessMs: active ? 0 : null, quorumLoss: 'stop' };
}
