import type Router from '@koa/router';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';
import { INDEX_HEADER } from '../pool-access.js';

// prom-client writes a NaN sample (e.g. the event-loop lag before its first sample) as
// "Nan"; the exposition format spells it "NaN", and strict parsers refuse anything else.
const PROM_CLIENT_NAN = / Nan$/gm;

/** Node-level endpoints: liveness, readiness (active role), cluster view, metrics. */
export function nodeRoutes(router: Router<AdminState>, deps: ResolvedDeps): void {
  // Liveness: answers while the process can run JavaScript, whatever the cluster does.
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  // Readiness = "send traffic here": only the active node, so an external load
  // balancer or VIP health check follows the active role.
  router.get('/ready', (ctx) => {
    if (!deps.cluster.isActive()) throw new AdminError(503, 'NOT_ACTIVE', 'this node is passive; the active node serves traffic');
    ctx.body = { status: 'ready' };
  });

  router.get('/cluster', (ctx) => {
    const info = deps.cluster.info();
    ctx.set(INDEX_HEADER, String(info.appliedIndex));
    ctx.body = info;
  });

  router.get('/metrics', async (ctx) => {
    const text = await deps.metrics.metrics();
    ctx.type = deps.metrics.contentType;
    ctx.body = text.replace(PROM_CLIENT_NAN, ' NaN');
  });
}
