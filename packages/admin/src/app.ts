import Router from '@koa/router';
import Koa from 'koa';
import { DEFAULT_BATCH_BODY_LIMIT_BYTES, DEFAULT_BODY_LIMIT_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, type AdminDeps } from './deps.js';
import type { AdminState, ResolvedDeps } from './context.js';
import { requireToken, requireTokenForReads } from './middleware/auth.js';
import { errorMiddleware } from './middleware/errors.js';
import { requestContext } from './middleware/request-context.js';
import { memberRoutes } from './routes/members.js';
import { batchRoutes } from './routes/batch.js';
import { faultRoutes } from './routes/faults.js';
import { servingRoutes } from './routes/serving.js';
import { nodeRoutes } from './routes/node.js';
import { serverRoutes } from './routes/servers.js';
import { settingsRoutes } from './routes/settings.js';
import { statsRoutes } from './routes/stats.js';
import { statusRoutes } from './routes/status.js';
import { UI_PATHS, uiRoutes } from './routes/ui.js';

/**
 * Builds the admin API as a Koa app. No module state: every dependency comes in through
 * `deps`, so tests run several apps side by side with in-memory fakes and the node
 * mounts it with `http.createServer(app.callback())`.
 */
export function createAdminApp(deps: AdminDeps): Koa<AdminState> {
  const resolved: ResolvedDeps = {
    ...deps,
    bodyLimitBytes: positive(deps.bodyLimitBytes, DEFAULT_BODY_LIMIT_BYTES, 'bodyLimitBytes'),
    batchBodyLimitBytes: positive(deps.batchBodyLimitBytes, DEFAULT_BATCH_BODY_LIMIT_BYTES, 'batchBodyLimitBytes'),
    requestTimeoutMs: positive(deps.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs'),
  };
  const auth = requireToken(deps.auth?.token);
  const readAuth = deps.auth?.reads === true ? requireTokenForReads(auth, [...(deps.auth.openPaths ?? []), ...UI_PATHS]) : undefined;
  const router = new Router<AdminState>();
  batchRoutes(router, resolved, auth);
  serverRoutes(router, resolved, auth);
  settingsRoutes(router, resolved, auth);
  statsRoutes(router, resolved);
  nodeRoutes(router, resolved, auth);
  statusRoutes(router, resolved);
  uiRoutes(router);
  servingRoutes(router, resolved);
  faultRoutes(router, resolved, auth);
  memberRoutes(router, resolved, auth);

  const app = new Koa<AdminState>();
  // We log errors ourselves (middleware/errors.ts); Koa's default handler would print to stderr.
  app.silent = true;
  app.use(requestContext(resolved.log, resolved.metrics));
  app.use(errorMiddleware(resolved.log));
  if (readAuth !== undefined) app.use(readAuth);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
