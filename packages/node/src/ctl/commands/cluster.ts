// `weldr cluster status|transfer`. Status asks every member it can reach for its own view
// (GET /cluster): a member knows its own term, indexes and whether it is active; only the
// leader knows how far each follower's log matches. Whatever no reachable member reports
// is shown as unknown — never guessed.
import { stringFlag } from '../common-options.js';
import type { CtlContext, NounSpec } from '../context.js';
import { CtlError } from '../errors.js';
import { age, cell, json, table, UNKNOWN } from '../render.js';

/** One member as GET /cluster lists it (extra fields pass through). */
export interface ClusterMemberView {
  readonly id: string;
  readonly role: 'voter' | 'learner';
  readonly address?: string;
  readonly raftRole?: string;
  readonly matchIndex?: number;
  readonly replication?: string;
  readonly [extra: string]: unknown;
}

/** GET /cluster: one member's view of the cluster. */
export interface ClusterView {
  readonly nodeId: string;
  readonly role: 'active' | 'passive';
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly members: readonly ClusterMemberView[];
}

/** A member's row in `weldr cluster status`; null = unknown. */
export interface MemberStatus {
  readonly id: string;
  readonly raftAddress: string | null;
  readonly adminUrl: string | null;
  readonly proxyAddress: string | null;
  /** voter or learner. */
  readonly role: string;
  readonly raftRole: string | null;
  readonly active: boolean | null;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly matchIndex: number | null;
  /** Leader's commit index minus the member's match index, as the leader sees it. */
  readonly lag: number | null;
  /** The leader heard from it within two election timeouts (as the leader reports it). */
  readonly live: boolean | null;
  /** Milliseconds since the leader last received a message from the member (its /cluster lastContactMs). */
  readonly lastContactMs: number | null;
  /** Whether its admin API answered this command; null when no address for it was known. */
  readonly reachable: boolean | null;
}

export interface ClusterStatusReport {
  readonly clusterId: string | null;
  readonly leaderId: string | null;
  readonly term: number | null;
  readonly members: readonly MemberStatus[];
  /** Every admin URL asked, with the member that answered or the error. */
  readonly endpoints: readonly { readonly url: string; readonly nodeId: string | null; readonly error: string | null }[];
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The admin URL of a member's record (`adminAddress`: host:port or http(s)://host:port),
 * when the cluster keeps member records. A bare host:port takes the scheme of the
 * endpoint that told us, so an https cluster stays https.
 */
export function memberAdminUrl(m: Readonly<Record<string, unknown>>, scheme: string): string | null {
  const raw = str(m['adminAddress']);
  if (raw === null) return null;
  return /^https?:\/\//.test(raw) ? raw.replace(/\/+$/, '') : `${scheme}//${raw}`;
}

export async function clusterStatus(ctx: CtlContext): Promise<ClusterStatusReport> {
  // The first answer (with failover) proves the cluster is reachable and names the members.
  const first = await ctx.client.get<ClusterView>('/cluster');
  const views = new Map<string, { url: string; view: ClusterView }>();
  const asked = new Map<string, { nodeId: string | null; error: string | null }>();
  const record = (url: string, view: ClusterView): void => {
    asked.set(url, { nodeId: view.nodeId, error: null });
    if (!views.has(view.nodeId)) views.set(view.nodeId, { url, view });
  };
  record(first.endpoint, first.body);
  const ask = async (urls: readonly string[]): Promise<void> => {
    await Promise.all(
      urls
        .filter((u) => !asked.has(u))
        .map(async (url) => {
          asked.set(url, { nodeId: null, error: 'pending' });
          try {
            record(url, (await ctx.client.get<ClusterView>('/cluster', { only: url })).body);
          } catch (err) {
            asked.set(url, { nodeId: null, error: err instanceof CtlError ? err.message : String(err) });
          }
        }),
    );
  };
  await ask(ctx.client.endpoints);
  // Members whose records carry an admin address can be asked even if not in --endpoints.
  const scheme = new URL(first.endpoint).protocol;
  const adminUrl = (m: ClusterMemberView | undefined): string | null => (m === undefined ? null : memberAdminUrl(m, scheme));
  await ask([...views.values()].flatMap(({ view }) => view.members.map(adminUrl)).filter((u): u is string => u !== null));

  // The newest term's view of the leader: a member cut off may still name an old one.
  const byTerm = [...views.values()].map(({ view }) => view).sort((a, b) => b.term - a.term);
  const leaderId = byTerm.find((v) => v.leaderId !== null)?.leaderId ?? null;
  const leader = leaderId === null ? undefined : views.get(leaderId)?.view;
  const membership = (leader ?? first.body).members;
  const ids = [...new Set([...membership.map((m) => m.id), ...[...views.values()].flatMap(({ view }) => view.members.map((m) => m.id))])];
  const members = ids.map((id): MemberStatus => {
    const record = leader?.members.find((m) => m.id === id) ?? membership.find((m) => m.id === id) ?? [...views.values()].map(({ view }) => view.members.find((m) => m.id === id)).find((m) => m !== undefined);
    const own = views.get(id);
    const url = own?.url ?? adminUrl(record);
    const matchIndex = num(record?.matchIndex);
    const live = record?.['live'];
    return {
      id,
      raftAddress: str(record?.address),
      adminUrl: url,
      proxyAddress: str(record?.['proxyAddress']),
      role: record?.role ?? UNKNOWN,
      // What the member says of itself, else what the others say of it.
      raftRole: str(own?.view.members.find((m) => m.id === id)?.raftRole) ?? str(record?.raftRole) ?? (own?.view.leaderId === id ? 'leader' : null),
      active: own === undefined ? null : own.view.role === 'active',
      term: own?.view.term ?? null,
      commitIndex: own?.view.commitIndex ?? null,
      appliedIndex: own?.view.appliedIndex ?? null,
      matchIndex,
      lag: leader !== undefined && matchIndex !== null ? Math.max(0, leader.commitIndex - matchIndex) : null,
      live: typeof live === 'boolean' ? live : null,
      lastContactMs: num(record?.['lastContactMs']),
      reachable: own !== undefined ? true : url === null ? null : false,
    };
  });
  const clusterId = [...views.values()].map(({ view }) => str((view as unknown as Record<string, unknown>)['clusterId'])).find((c) => c !== null) ?? null;
  return {
    clusterId,
    leaderId,
    term: byTerm[0]?.term ?? null,
    members,
    endpoints: [...asked.entries()].map(([url, a]) => ({ url, nodeId: a.nodeId, error: a.error })),
  };
}

function printStatus(ctx: CtlContext, report: ClusterStatusReport): void {
  if (ctx.common.json) return ctx.io.out(json(report));
  const active = report.members.filter((m) => m.active === true).map((m) => m.id);
  const rows = report.members.map((m) => [
    m.id,
    m.raftAddress ?? UNKNOWN,
    m.adminUrl ?? UNKNOWN,
    m.role === 'voter' ? (m.raftRole ?? 'voter') : m.role,
    cell(m.active),
    cell(m.term),
    m.commitIndex === null ? UNKNOWN : `${m.commitIndex}/${m.appliedIndex}`,
    cell(m.lag),
    cell(m.live),
    m.lastContactMs === null ? UNKNOWN : age(m.lastContactMs),
  ]);
  ctx.io.out(table(['id', 'raft address', 'admin', 'role', 'active', 'term', 'commit/applied', 'lag', 'live', 'last contact'], rows));
  ctx.io.out(`${report.clusterId === null ? '' : `cluster ${report.clusterId}; `}leader: ${report.leaderId ?? 'none known'}${report.term === null ? '' : ` (term ${report.term})`}; active: ${active.length === 0 ? 'none' : active.join(', ')}\n`);
  const unknownOnes = report.members.filter((m) => m.reachable !== true).map((m) => m.id);
  if (unknownOnes.length > 0) {
    ctx.io.out(`no answer from ${unknownOnes.join(', ')}: term, indexes and active state unknown (is it running? is its admin URL in --endpoints?)\n`);
  }
  if (report.leaderId !== null && !report.members.some((m) => m.id === report.leaderId && m.reachable === true)) {
    ctx.io.out('lag and live are known only when the leader is among the members asked\n');
  }
  for (const e of report.endpoints) if (e.error !== null) ctx.io.out(`${e.error}\n`);
}

export const CLUSTER: NounSpec = {
  summary: 'the Raft cluster: members, leader, active node',
  verbs: {
    status: {
      args: '',
      summary: 'every member: id, addresses, role, active, term, commit/applied index, lag, last contact',
      details: `Asks every member it can reach (those in --endpoints, and those whose member record
carries an admin address) for its own view: its term, commit and applied index, and
whether it is active. Lag (the leader's commit index minus the member's match index)
and live (heard from within two election timeouts) are what the leader reports, and so
is last contact (how long since the leader last received a message from the member).
A value nobody reachable reports is shown as "unknown" (null in --json).
`,
      minArgs: 0,
      maxArgs: 0,
      async run(ctx) {
        printStatus(ctx, await clusterStatus(ctx));
      },
    },
    transfer: {
      args: '',
      summary: 'hand the leadership (and the active role) to another member',
      details: 'Without --to the most up-to-date follower is chosen. Answers once another member leads.\n',
      flags: { to: { type: 'string' } },
      flagHelp: '  --to ID     the member to hand the leadership to\n',
      minArgs: 0,
      maxArgs: 0,
      async run(ctx) {
        const to = stringFlag(ctx.values, 'to');
        const answer = await ctx.client.call<{ leaderId: string }>('POST', '/cluster/transfer-leadership', to === undefined ? {} : { body: { to } });
        ctx.io.out(ctx.common.json ? json(answer.body) : `leadership moved to ${answer.body.leaderId}\n`);
      },
    },
  },
};
