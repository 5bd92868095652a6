// `weldr start --join URL`: a node with an empty data directory asks a running cluster
// (through the admin API of any member, which relays the write to the leader) to add
// it as a learner, then receives the configuration and a snapshot from the leader like
// any lagging member (thesis §4.2.1: new servers join as non-voting members first).
//
// The request carries the node's incarnation and an Idempotency-Key derived from it,
// both written to the data directory before the first attempt: a node that crashes
// mid-join and retries asks again for the same thing and gets the same answer.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemberRecord } from '@weldr/store';

/** The cluster refused the join, or is not one this data directory may join: do not retry. */
export class JoinRefused extends Error {
  override readonly name = 'JoinRefused';
}

export interface JoinRequest {
  readonly id: string;
  readonly raftAddress: string;
  readonly adminAddress: string;
  readonly proxyAddress?: string;
  readonly incarnation: string;
}

export interface JoinAnswer {
  readonly clusterId: string | null;
  /** The record the cluster holds for this node. */
  readonly member: MemberRecord;
  /** Every member the cluster lists (ids and Raft addresses), this node included. */
  readonly members: readonly MemberRecord[];
}

export interface JoinOptions {
  /** Admin token (writes need it off loopback). */
  readonly token?: string;
  /** Give up after this long. Default 60 s. */
  readonly deadlineMs?: number;
  readonly log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Injected for tests. */
  readonly fetch?: typeof fetch;
  /** Give up at once when aborted (the node is stopping): rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

interface MemberListBody {
  readonly clusterId: string | null;
  readonly members: readonly MemberRecord[];
}

/** The cluster id and members the admin API at `base` answers with (linearizable). */
export async function fetchMembers(base: string, opts: Pick<JoinOptions, 'token' | 'fetch' | 'signal'>, timeoutMs = 5000): Promise<MemberListBody> {
  const res = await (opts.fetch ?? fetch)(`${base}/cluster/members`, { signal: within(timeoutMs, opts.signal), headers: auth(opts.token) });
  const body = (await res.json().catch(() => null)) as (MemberListBody & { error?: { code: string; message: string } }) | null;
  if (res.status !== 200 || body === null || !Array.isArray(body.members)) {
    throw new Error(`GET ${base}/cluster/members answered ${res.status}${body?.error === undefined ? '' : ` ${body.error.code}: ${body.error.message}`}`);
  }
  return body;
}

export async function joinCluster(url: string, request: JoinRequest, opts: JoinOptions): Promise<JoinAnswer> {
  const base = url.replace(/\/+$/, '');
  const started = Date.now();
  const deadline = started + (opts.deadlineMs ?? 60_000);
  let delay = 200;
  let lastError = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`could not join the cluster through ${base} in time: ${lastError}`);
    try {
      const current = await fetchMembers(base, opts);
      const existing = current.members.find((m) => m.id === request.id);
      if (existing?.incarnation !== undefined && existing.incarnation !== request.incarnation) {
        throw new JoinRefused(
          `member ${request.id} is already in the cluster with incarnation ${existing.incarnation}, and this data directory (incarnation ${request.incarnation}) ` +
            `is not its data: the member lost its state or another node uses the id. Remove the old member first ` +
            `(weldr member remove ${request.id}, or DELETE ${base}/cluster/members/${request.id}), then start this node again with --join; or use a new --id`,
        );
      }
      const res = await (opts.fetch ?? fetch)(`${base}/cluster/members`, {
        method: 'POST',
        signal: within(15_000, opts.signal),
        headers: { 'content-type': 'application/json', 'idempotency-key': `join-${request.id}-${request.incarnation}`, ...auth(opts.token) },
        body: JSON.stringify(request),
      });
      const body = (await res.json().catch(() => null)) as (MemberRecord & { clusterId: string | null; error?: { code: string; message: string } }) | null;
      if ((res.status === 200 || res.status === 201) && body !== null && body.id === request.id) {
        const { clusterId, ...member } = body;
        opts.log.info({ event: 'joined', clusterId, index: member.addedIndex }, `added to cluster ${clusterId ?? '(id not yet recorded)'} as a learner at index ${member.addedIndex}`);
        const before = current.members.some((m) => m.id === request.id) ? current.members : [...current.members, member as MemberRecord];
        const members = await listingAfterJoin(base, request.id, before, Math.min(deadline, Date.now() + LISTING_WAIT_MS), opts);
        return { clusterId, member: member as MemberRecord, members };
      }
      const code = body?.error?.code ?? String(res.status);
      const message = body?.error?.message ?? `status ${res.status}`;
      // Worth retrying: an election, a change in flight, a slow commit.
      if (res.status === 503 || res.status === 504 || code === 'CHANGE_IN_PROGRESS') {
        lastError = `${code}: ${message}`;
      } else {
        throw new JoinRefused(`the cluster refused to add this node (${code}): ${message}`);
      }
    } catch (err) {
      if (err instanceof JoinRefused) throw err;
      opts.signal?.throwIfAborted();
      lastError = (err as Error).message;
    }
    // A cluster that is starting or electing answers "no leader" for a moment: routine
    // for the first seconds, worth a warning only once it lasts.
    const entry = { event: 'join_retry', url: base, err: lastError };
    const message = `joining through ${base}: ${lastError}; retrying`;
    if (Date.now() - started < ROUTINE_RETRY_MS) opts.log.info(entry, message);
    else opts.log.warn(entry, message);
    await sleep(delay, undefined, opts.signal === undefined ? {} : { signal: opts.signal });
    delay = Math.min(2000, delay * 2);
  }
}

/** Join retries in the first seconds are logged at info (a cluster starting or electing), later ones at warn. */
const ROUTINE_RETRY_MS = 10_000;

/** How long a joined node waits for every member's record to name its Raft address. */
const LISTING_WAIT_MS = 5000;

/**
 * The members as the cluster lists them once this node is one of them, when every other
 * member's record names its Raft address. The listing taken before the add may lack a
 * member added since, and a cluster that has just started fills its seeds' addresses in
 * one entry at a time: the new node needs them all, or it cannot answer the leader until
 * it has heard the records from the leader itself, which it cannot without answering.
 * Past `until`, the most complete listing seen (and a warning).
 */
async function listingAfterJoin(base: string, self: string, before: readonly MemberRecord[], until: number, opts: JoinOptions): Promise<readonly MemberRecord[]> {
  const missing = (list: readonly MemberRecord[]): string[] => list.filter((m) => m.id !== self && m.raftAddress === undefined).map((m) => m.id);
  let best = before;
  for (;;) {
    try {
      const now = await fetchMembers(base, opts, 3000);
      if (now.members.some((m) => m.id === self)) best = now.members;
    } catch {
      // A busy or electing cluster: ask again until `until`.
      opts.signal?.throwIfAborted();
    }
    if (missing(best).length === 0) return best;
    if (Date.now() > until) break;
    await sleep(100, undefined, opts.signal === undefined ? {} : { signal: opts.signal });
  }
  opts.log.warn({ event: 'join_listing_incomplete', members: missing(best) }, `the cluster's records do not name the Raft address of ${missing(best).join(', ')} yet: this node answers them at the address their hellos give`);
  return best;
}

function auth(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** A request's signal: its own timeout, and the node's stop when there is one. */
function within(timeoutMs: number, stop: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return stop === undefined ? timeout : AbortSignal.any([timeout, stop]);
}
