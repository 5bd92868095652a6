// Node-local views the status page reads besides /cluster and /stats: this node's own
// settings, what it saw happen, and its recent request counters. None is replicated.
import type Router from '@koa/router';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';

export function statusRoutes(router: Router<AdminState>, deps: ResolvedDeps): void {
  router.get('/node', (ctx) => {
    ctx.body = deps.node?.() ?? { id: deps.cluster.info().nodeId };
  });

  router.get('/events', (ctx) => {
    const since = sinceParam(ctx.query['since']);
    ctx.body = deps.events?.since(since) ?? { events: [], next: 0 };
  });

  router.get('/stats/history', (ctx) => {
    ctx.body = deps.history?.view() ?? { intervalMs: 0, samples: [] };
  });
}

/** `?since=N`: a non-negative integer; absent is 0. */
export function sinceParam(raw: string | string[] | undefined): number {
  if (raw === undefined) return 0;
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new AdminError(400, 'INVALID_QUERY', 'since must be a non-negative integer', { field: 'since' });
  }
  return Number(value);
}
