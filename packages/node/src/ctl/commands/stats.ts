// `weldr stats`: the data-plane counters of one member (each proxy counts what it served;
// nothing here is replicated), with the health of every origin as that member sees it.
import type { CtlContext, NounSpec } from '../context.js';
import { age, cell, json, table } from '../render.js';
import type { ClusterView } from './cluster.js';

interface CounterPair {
  readonly success: number;
  readonly failed: number;
}
interface StatsView {
  readonly client: CounterPair;
  readonly server: CounterPair;
  readonly failOpen: boolean;
}
interface ServerStats {
  readonly id: string;
  readonly weight: number;
  readonly success: number;
  readonly failed: number;
  readonly health: string;
  readonly ejected: boolean;
  readonly ejectedUntil?: number;
  readonly draining: boolean;
  readonly active: number;
  readonly lastCheck?: { readonly at: number; readonly ok: boolean; readonly status?: number; readonly error?: string };
}

export const STATS: NounSpec = {
  summary: "a member's proxy counters and origin health",
  defaultVerb: 'show',
  verbs: {
    show: {
      args: '',
      summary: "request counters and per-origin health of the first member that answers",
      details: "Counters are per member (each proxy counts what it served since it started); name the\nmember with --endpoints. In active-passive mode the active member carries the traffic.\n",
      minArgs: 0,
      maxArgs: 0,
      async run(ctx: CtlContext) {
        const totals = await ctx.client.get<StatsView>('/stats');
        const only = { only: totals.endpoint };
        const [detail, cluster] = await Promise.all([ctx.client.get<ServerStats[]>('/stats/detail', only), ctx.client.get<ClusterView>('/cluster', only)]);
        if (ctx.common.json) {
          ctx.io.out(json({ nodeId: cluster.body.nodeId, role: cluster.body.role, endpoint: totals.endpoint, ...totals.body, servers: detail.body }));
          return;
        }
        const t = totals.body;
        ctx.io.out(`member ${cluster.body.nodeId} (${cluster.body.role}) at ${totals.endpoint}\n`);
        ctx.io.out(`client requests: ${t.client.success} answered, ${t.client.failed} failed; origin attempts: ${t.server.success} answered, ${t.server.failed} failed; fail-open: ${cell(t.failOpen)}\n`);
        if (detail.body.length === 0) return ctx.io.out('no origins in the pool\n');
        const now = Date.now();
        ctx.io.out(
          table(
            ['server', 'health', 'ejected', 'draining', 'in flight', 'answered', 'failed', 'last check'],
            detail.body.map((s) => [
              s.id,
              s.health,
              s.ejected ? (s.ejectedUntil === undefined ? 'yes' : `for ${Math.max(0, Math.round((s.ejectedUntil - now) / 1000))}s`) : 'no',
              cell(s.draining),
              String(s.active),
              String(s.success),
              String(s.failed),
              s.lastCheck === undefined ? 'none yet' : `${s.lastCheck.ok ? 'ok' : 'failed'} ${s.lastCheck.status ?? s.lastCheck.error ?? ''} ${age(now - s.lastCheck.at)}`.replace(/\s+/g, ' '),
            ]),
          ),
        );
      },
    },
  },
};
