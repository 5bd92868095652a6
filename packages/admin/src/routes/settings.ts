import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { readJsonBody } from '../body.js';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';
import { commit, readPool } from '../pool-access.js';
import { commandFromBody } from './command-body.js';

/** Cluster-wide balancer and health-check defaults. PATCH merges field by field. */
export function settingsRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  router.get('/settings', async (ctx) => {
    ctx.body = (await readPool(ctx, deps)).settings;
  });

  router.patch('/settings', auth, async (ctx) => {
    const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
    const { outcome } = await commit(ctx, deps, commandFromBody('UpdateSettings', body));
    if (!('settings' in outcome)) throw new AdminError(500, 'INTERNAL', `UpdateSettings answered ${outcome.status}`);
    ctx.body = outcome.settings;
  });
}
