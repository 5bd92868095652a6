// Who the members are and whether the cluster is healthy: the drill refuses to start on
// an unhealthy cluster, and waits for it to be healthy again after every fault.
import { isIP } from 'node:net';
import type { AdminClient } from '../ctl/client.js';
import { memberAdminUrl, type ClusterView } from '../ctl/commands/cluster.js';
import { CtlError, EXIT_REFUSED } from '../ctl/errors.js';
import type { ClusterPoller, DrillMember, ReadySampler } from './observers.js';

type OwnView = ClusterView;

/** How long discovery keeps asking a member whose admin API does not answer yet. */
const DISCOVERY_SETTLE_MS = 5_000;
const DISCOVERY_RETRY_MS = 250;

/**
 * Every member with its admin URL (from --endpoints and the member records) and proxy
 * URL (from its member record). A member nobody can name an admin URL for is an error:
 * the drill must watch every member's /ready.
 */
export async function discoverMembers(client: AdminClient, settleMs = DISCOVERY_SETTLE_MS): Promise<DrillMember[]> {
  const first = await client.get<OwnView>('/cluster');
  const own = new Map<string, { url: string; view: OwnView }>();
  const ask = async (url: string): Promise<void> => {
    try {
      const v = (await client.get<OwnView>('/cluster', { only: url })).body;
      if (!own.has(v.nodeId)) own.set(v.nodeId, { url, view: v });
    } catch {
      // not reachable now: reported below if it is a member
    }
  };
  own.set(first.body.nodeId, { url: first.endpoint, view: first.body });
  const scheme = new URL(first.endpoint).protocol;
  const recorded = first.body.members.map((m) => memberAdminUrl(m, scheme)).filter((u): u is string => u !== null);
  const ids = first.body.members.filter((m) => m.role === 'voter').map((m) => m.id);
  // A member that was just continued or rejoined (the last drill's fault healed a moment
  // ago) may need a moment before its /cluster answers: asked again for up to settleMs.
  const until = Date.now() + settleMs;
  let missing: string[];
  for (;;) {
    await Promise.all(client.endpoints.filter((e) => ![...own.values()].some((o) => o.url === e)).map(ask));
    await Promise.all(recorded.filter((u) => ![...own.values()].some((o) => o.url === u)).map(ask));
    missing = ids.filter((id) => !own.has(id));
    if (missing.length === 0 || Date.now() >= until) break;
    await new Promise((r) => setTimeout(r, DISCOVERY_RETRY_MS));
  }
  if (missing.length > 0) {
    throw new CtlError(EXIT_REFUSED, `no admin API answered for ${missing.join(', ')}`, "the drill watches every member's /ready: pass every member's admin URL in --endpoints, and start the drill on a healthy cluster");
  }
  return ids.map((id) => {
    const { url, view } = own.get(id)!;
    // The record as the member itself reports it, else as the first member knows it.
    const record = view.members.find((m) => m.id === id) ?? first.body.members.find((m) => m.id === id);
    const address = record?.['proxyAddress'];
    return { id, adminUrl: url, proxyUrl: proxyUrl(typeof address === 'string' ? address : undefined, url) };
  });
}

/** A member's proxy URL; a wildcard listener is reached at the host its admin URL uses. */
function proxyUrl(address: string | undefined, adminUrl: string): string | undefined {
  if (address === undefined) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(address);
  if (m === null) return undefined;
  let host = m[1] ?? m[2]!;
  if (host === '0.0.0.0' || host === '::') host = new URL(adminUrl).hostname.replace(/^\[|\]$/g, '');
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${m[3]}/`;
}

/** Why the cluster is not healthy now, or null: every member answers, one leader and one active node, and they agree. */
export function unhealthy(members: readonly DrillMember[], sampler: ReadySampler, poller: ClusterPoller): string | null {
  const views = members.map((m) => [m, poller.view(m.id)] as const);
  const silent = views.filter(([, v]) => v === null || v === undefined).map(([m]) => m.id);
  if (silent.length > 0) return `no answer from ${silent.join(', ')}`;
  const active = sampler.activeNow();
  if (active.length !== 1) return active.length === 0 ? 'no active node' : `${active.join(' and ')} both answer /ready`;
  const leaders = new Set(views.map(([, v]) => v!.leaderId));
  const terms = new Set(views.map(([, v]) => v!.term));
  if (leaders.size !== 1 || terms.size !== 1) return `the members do not agree yet (leaders ${[...leaders].join('/')}, terms ${[...terms].join('/')})`;
  const leader = views.find(([m]) => m.id === [...leaders][0])?.[1];
  if (leader === undefined || leader === null) return 'the leader is not a known member';
  // A member far behind is still catching up (a restarted member replaying the log).
  const behind = views.filter(([, v]) => leader.commitIndex - v!.appliedIndex > 100).map(([m]) => m.id);
  if (behind.length > 0) return `${behind.join(', ')} still catching up`;
  return null;
}
