// Outermost middleware: request id, timing, access log and the admin request metrics.
// It runs outside the error middleware so it sees the final status of every request.
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AdminLogger } from '../deps.js';
import type { AdminState } from '../context.js';

const CLIENT_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'PUT']);

export function requestContext(log: AdminLogger, registry: Registry): Middleware<AdminState> {
  const { requests, duration } = adminMetrics(registry);
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    ctx.state.requestId = CLIENT_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Label by route pattern, never by raw path, to keep series bounded.
      const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const route = typeof matched === 'string' ? matched : 'unmatched';
      const method = KNOWN_METHODS.has(ctx.method) ? ctx.method : 'OTHER';
      requests.inc({ method, route, status: String(ctx.status) });
      duration.observe({ method, route }, seconds);
      const entry = { requestId: ctx.state.requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000) };
      if (ctx.method === 'GET' || ctx.method === 'HEAD') log.debug(entry, 'admin request');
      else log.info(entry, 'admin request');
    }
  };
}

/**
 * Registers (or reuses, when several apps share one registry, as tests do) the admin
 * request metrics.
 */
function adminMetrics(registry: Registry): { requests: Counter<'method' | 'route' | 'status'>; duration: Histogram<'method' | 'route'> } {
  const requests =
    (registry.getSingleMetric('weldr_admin_requests_total') as Counter<'method' | 'route' | 'status'> | undefined) ??
    new Counter({
      name: 'weldr_admin_requests_total',
      help: 'Admin API requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('weldr_admin_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ??
    new Histogram({
      name: 'weldr_admin_request_duration_seconds',
      help: 'Admin API request duration, including commit wait for writes',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  return { requests, duration };
}
