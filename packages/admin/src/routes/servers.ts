// /servers: the pool's origin list. POST is an idempotent upsert (201 on create, 200
// when the server already existed); DELETE removes immediately (the proxy drains
// in-flight requests); PATCH changes weight, health-check overrides and draining.
import type Router from '@koa/router';
import { serverId, validateIp, validatePort } from '@weldr/store';
import { refuseOwnListener } from './own-listener.js';
import { readJsonBody } from '../body.js';
import { AdminError, fromStoreError } from '../errors.js';
import type { Middleware } from 'koa';
import type { AdminState, ResolvedDeps } from '../context.js';
import { commit, readPool, serverOf } from '../pool-access.js';
import { commandFromBody } from './command-body.js';

/** `:ip` accepts "::1", "%3A%3A1" (the router decodes it) and "[::1]". */
const ONE = '/servers/:ip/:port';

export function serverRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  router.get('/servers', async (ctx) => {
    ctx.body = (await readPool(ctx, deps)).servers;
  });

  router.post('/servers', auth, async (ctx) => {
    const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
    const command = commandFromBody('AddServer', body);
    refuseOwnListener(deps, command);
    const { outcome } = await commit(ctx, deps, command);
    const server = serverOf(outcome);
    ctx.status = outcome.status === 'created' ? 201 : 200;
    if (outcome.status === 'created') ctx.set('Location', `/servers/${server.ip}/${server.port}`);
    ctx.body = server;
  });

  router.get(ONE, async (ctx) => {
    const id = idFromPath(ctx.params);
    const snapshot = await readPool(ctx, deps);
    const server = snapshot.servers.find((s) => s.id === id);
    if (server === undefined) throw new AdminError(404, 'NOT_FOUND', `server ${id} is not in the pool`);
    ctx.body = server;
  });

  router.patch(ONE, auth, async (ctx) => {
    const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
    const { outcome } = await commit(ctx, deps, commandFromBody('UpdateServer', body, pathAddress(ctx.params)));
    ctx.body = serverOf(outcome);
  });

  router.delete(ONE, auth, async (ctx) => {
    await commit(ctx, deps, { type: 'RemoveServer', ...pathAddress(ctx.params) });
    ctx.status = 204;
  });
}

function pathAddress(params: Record<string, string | undefined>): { ip: string | undefined; port: string | undefined } {
  return { ip: params['ip'], port: params['port'] };
}

function idFromPath(params: Record<string, string | undefined>): string {
  try {
    return serverId(validateIp(params['ip']), validatePort(params['port']));
  } catch (err) {
    throw fromStoreError(err, 'read');
  }
}
