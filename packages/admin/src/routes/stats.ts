import { Readable } from 'node:stream';
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
    const servers = (await deps.stats.stats()).servers;
    if (servers.length <= DETAIL_SLICE) {
      ctx.body = servers.map(serverDetail);
      return;
    }
    // A large pool (10,000 busy origins: ~2.3 MB) is written a slice at a time, with a
    // turn of the event loop between slices: the same JSON, without holding the node's
    // thread — which also runs Raft — for the whole serialization.
    ctx.type = 'application/json';
    ctx.body = Readable.from(detailChunks(servers), { objectMode: false });
  });
}

/** Servers serialized between two yields to the event loop. */
const DETAIL_SLICE = 500;

async function* detailChunks(servers: readonly ServerStatsView[]): AsyncGenerator<string> {
  for (let i = 0; i < servers.length; i += DETAIL_SLICE) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    const slice = JSON.stringify(servers.slice(i, i + DETAIL_SLICE).map(serverDetail));
    // Each slice is a JSON array: its elements, joined to the others' by commas.
    yield (i === 0 ? '[' : ',') + slice.slice(1, -1);
  }
  yield ']';
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
