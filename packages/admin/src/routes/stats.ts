import type Router from '@koa/router';
import type { AdminState, ResolvedDeps } from '../context.js';
import type { ServerStatsView } from '../deps.js';

/**
 * Data-plane counters of this node (not replicated, so no X-Weldr-Index); with proxy
 * workers, summed over all of them (the node asks each one when the call comes). Fields are
 * copied explicitly so the documented shape does not change when the proxy adds some.
 */
export function statsRoutes(router: Router<AdminState>, deps: ResolvedDeps): void {
  router.get('/stats', async (ctx) => {
    // The totals alone when the node can give them: building every server's line only to
    // drop it costs a pool of 10,000 busy origins ~0.1 s on the node's thread.
    const { client, server, failOpen } = deps.stats.totals !== undefined ? await deps.stats.totals() : await deps.stats.stats();
    ctx.body = {
      client: { success: client.success, failed: client.failed },
      server: { success: server.success, failed: server.failed },
      failOpen,
    };
  });

  router.get('/stats/detail', async (ctx) => {
    ctx.body = (await deps.stats.stats()).servers.map(serverDetail);
  });
}

function serverDetail(s: ServerStatsView): ServerStatsView {
  return {
    id: s.id,
    ip: s.ip,
    port: s.port,
    weight: s.weight,
    success: s.success,
    failed: s.failed,
    health: s.health,
    ejected: s.ejected,
    ...(s.ejectedUntil === undefined ? {} : { ejectedUntil: s.ejectedUntil }),
    draining: s.draining,
    active: s.active,
    ...(s.lastCheck === undefined
      ? {}
      : {
          lastCheck: {
            at: s.lastCheck.at,
            ok: s.lastCheck.ok,
            ...(s.lastCheck.status === undefined ? {} : { status: s.lastCheck.status }),
            ...(s.lastCheck.error === undefined ? {} : { error: s.lastCheck.error }),
          },
        }),
    ...(s.recentChecks === undefined ? {} : { recentChecks: [...s.recentChecks] }),
  };
}
