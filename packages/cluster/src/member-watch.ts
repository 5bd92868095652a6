// The leader's judgement of each member: in step, catching up, stalled (connected and
// answering, yet its log does not advance — e.g. a member whose data directory was wiped
// sits in probe), silent (connected, no answer) or unreachable (no connection). Pure:
// the caller passes the time, the replication progress and what the transport sees, and
// gets the transitions to log. Only a leader knows followers' logs (thesis §3.5), so a
// follower keeps no judgement.
import type { NodeId } from '@weldr/raft';
import type { PeerStatus } from './transport.js';

export type MemberCondition = 'current' | 'catching-up' | 'stalled' | 'silent' | 'unreachable';

export interface MemberJudgement {
  readonly condition: MemberCondition;
  /** Why, in operator terms; absent when current. */
  readonly reason?: string;
}

export interface MemberObservation {
  readonly id: NodeId;
  /** The leader's progress for the member: match index and replication state. */
  readonly match: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly peer: PeerStatus;
}

export interface MemberTransition {
  readonly id: NodeId;
  readonly from: MemberCondition | undefined;
  readonly to: MemberCondition;
  readonly reason?: string;
}

export interface MemberWatchOptions {
  /** No message for this long from a connected member: silent. Two election timeouts. */
  readonly silentMs: number;
  /** Behind, and its match index has not moved for this long: stalled. */
  readonly stallMs: number;
}

interface Tracked {
  match: number;
  /** When match last moved or the member was last in step (ms, caller's clock). */
  since: number;
  judgement: MemberJudgement;
}

export class MemberWatch {
  private readonly tracked = new Map<NodeId, Tracked>();

  constructor(private readonly opts: MemberWatchOptions) {}

  /** Judge every member at `now` against the leader's last log index; returns what changed. */
  observe(now: number, lastIndex: number, members: readonly MemberObservation[]): MemberTransition[] {
    const transitions: MemberTransition[] = [];
    const seen = new Set<NodeId>();
    for (const m of members) {
      seen.add(m.id);
      let t = this.tracked.get(m.id);
      const before = t?.judgement.condition;
      if (t === undefined) {
        t = { match: m.match, since: now, judgement: { condition: 'current' } };
        this.tracked.set(m.id, t);
      }
      if (m.match !== t.match || m.match >= lastIndex) {
        t.match = m.match;
        t.since = now;
      }
      const judgement = this.judge(now, lastIndex, m, t);
      t.judgement = judgement;
      // At first sight only trouble is news; afterwards every change of condition is.
      const news = before === undefined ? judgement.condition !== 'current' && judgement.condition !== 'catching-up' : judgement.condition !== before;
      if (news) transitions.push({ id: m.id, from: before, to: judgement.condition, ...(judgement.reason === undefined ? {} : { reason: judgement.reason }) });
    }
    for (const id of [...this.tracked.keys()]) if (!seen.has(id)) this.tracked.delete(id);
    return transitions;
  }

  judgement(id: NodeId): MemberJudgement | undefined {
    return this.tracked.get(id)?.judgement;
  }

  /** This node is no longer the leader: its judgements are void. */
  reset(): void {
    this.tracked.clear();
  }

  private judge(now: number, lastIndex: number, m: MemberObservation, t: Tracked): MemberJudgement {
    const { silentMs, stallMs } = this.opts;
    if (!m.peer.reachable) {
      return { condition: 'unreachable', reason: `the leader has no connection to it${m.peer.lastError === undefined ? '' : ` (${m.peer.lastError})`}` };
    }
    if (m.peer.lastContactMs === null || m.peer.lastContactMs > silentMs) {
      return { condition: 'silent', reason: m.peer.lastContactMs === null ? 'connected, but it has not answered the leader' : `connected, but no answer for ${seconds(m.peer.lastContactMs)}` };
    }
    if (m.match >= lastIndex) return { condition: 'current' };
    const stuck = now - t.since;
    if (stuck < stallMs) return { condition: 'catching-up' };
    const behind = `${lastIndex - m.match} entries behind, no progress for ${seconds(stuck)}`;
    switch (m.state) {
      case 'snapshot':
        return { condition: 'stalled', reason: `${behind}: a snapshot is being sent to it` };
      case 'probe':
        return { condition: 'stalled', reason: `${behind}: the leader is still looking for where their logs agree (a member whose data was lost or diverged; see its log)` };
      case 'replicate':
        return { condition: 'stalled', reason: `${behind}: it does not acknowledge the entries sent (a slow disk, or a full queue on its side)` };
    }
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
