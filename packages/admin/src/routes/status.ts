// Views the status page reads besides /cluster and /stats: this node's own settings,
// what it saw happen and its recent request counters (node-local), and the audit log of
// admin changes (replicated).
import type Router from '@koa/router';
import { AUDIT_RETENTION, EMPTY_AUDIT, auditAfter } from '@weldr/store';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';
import { readPool } from '../pool-access.js';

/** Entries per page of GET /audit, at most and by default. */
export const AUDIT_PAGE_MAX = 500;

export function statusRoutes(router: Router<AdminState>, deps: ResolvedDeps): void {
  router.get('/node', (ctx) => {
    ctx.body = deps.node?.() ?? { id: deps.cluster.info().nodeId };
  });

  router.get('/events', (ctx) => {
    const since = sinceParam(ctx.query['since']);
    ctx.body = deps.events?.since(since) ?? { events: [], next: 0 };
  });

  // The audit log is replicated: read like the pool (linearizable, or ?stale=true for this
  // node's copy), paged by log index. `next` is the index to pass as `since` next time;
  // `oldest` says where retention cut the log, so a client that fell behind knows.
  router.get('/audit', async (ctx) => {
    const since = sinceParam(ctx.query['since']);
    const limit = limitParam(ctx.query['limit']);
    const snapshot = await readPool(ctx, deps);
    const log = snapshot.audit ?? EMPTY_AUDIT;
    const entries = auditAfter(log, since, limit);
    ctx.body = {
      index: snapshot.index,
      retention: AUDIT_RETENTION,
      oldest: log.at(0)?.index ?? null,
      entries,
      next: entries.length === 0 ? since : entries[entries.length - 1]!.index,
    };
  });

  router.get('/stats/history', (ctx) => {
    ctx.body = deps.history?.view() ?? { intervalMs: 0, samples: [] };
  });
}

/** `?limit=N`: 1…AUDIT_PAGE_MAX; absent is AUDIT_PAGE_MAX. */
function limitParam(raw: string | string[] | undefined): number {
  if (raw === undefined) return AUDIT_PAGE_MAX;
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  const n = value !== undefined && /^[1-9][0-9]{0,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= AUDIT_PAGE_MAX)) throw new AdminError(400, 'INVALID_QUERY', `limit must be an integer from 1 to ${AUDIT_PAGE_MAX}`, { field: 'limit' });
  return n;
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
