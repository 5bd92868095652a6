// A new cluster's first election waits until every seed has been reached.
//
// Seeds bootstrap from --peers alone: an empty data directory and the same member list
// make the same first configuration on every seed, and any majority of them may elect
// the first leader. A seed whose data directory was wiped and that is started again with
// its old flags looks exactly like that — and so does a *majority* of such seeds (two of
// three disks lost). Alone, a wiped seed is stopped by the first member that kept its
// state (identity.ts: that member knows it under another incarnation). But two wiped
// seeds reach each other, not the third: before this gate they elected a leader of a new
// cluster with an empty pool, became active and acknowledged writes, while every write
// the old cluster had acknowledged sat on the member that was away — and that member,
// back, was refused as "another cluster" (found by a drill: kill -9 all three, wipe two,
// start those two).
//
// So a seed that has never seen an election (its Raft term is still the bootstrap's and
// it holds no cluster id) does not campaign until it has exchanged a handshake with
// every other seed of its first configuration: an admitted hello from it, or a welcome
// to its own hello. A member that kept the old cluster's state answers such a handshake
// with the incarnation it knows for this node, and this node stops (state_lost) instead
// of electing anyone. Votes are still granted (a seed that reached every seed may ask),
// and once a leader has been elected (a higher term, or a cluster id) the gate is open
// for good: it applies to the first election of a new cluster only. The price: a new
// cluster's seeds must all be started before it elects its first leader.
import type { NodeId } from '@weldr/raft';
import type { ClusterLogger } from './types.js';

export interface BootstrapGateOptions {
  readonly self: NodeId;
  /** Whether this node is still a seed before its cluster's first election (no higher term, no cluster id). */
  readonly firstElection: () => boolean;
  /** The voters of this node's configuration (the seeds, while firstElection holds). */
  readonly voters: () => readonly NodeId[];
  readonly log: ClusterLogger;
  /** Milliseconds, monotonic. */
  readonly now: () => number;
  /** Waiting longer than this is logged at warn (before: info, as seeds start one after another). Default 10 s. */
  readonly warnAfterMs?: number;
}

export class BootstrapGate {
  private readonly reached = new Set<NodeId>();
  private open = false;
  private heldSince: number | null = null;
  private lastMissing = '';
  private warned = false;

  constructor(private readonly opts: BootstrapGateOptions) {}

  /** A handshake with `peer` succeeded (either direction): each side checked the other's identity. */
  reachedPeer(peer: NodeId): void {
    this.reached.add(peer);
  }

  /** The driver's mayCampaign: false holds this node's campaign back. */
  mayCampaign(): boolean {
    if (this.open) return true;
    const missing = this.opts.firstElection() ? this.opts.voters().filter((id) => id !== this.opts.self && !this.reached.has(id)) : [];
    if (missing.length === 0) {
      this.open = true;
      if (this.heldSince !== null) this.opts.log.info({ event: 'bootstrap_seeds_reached' }, 'every seed reached: this node may campaign for the first election');
      return true;
    }
    const now = this.opts.now();
    this.heldSince ??= now;
    const key = missing.join(',');
    const late = now - this.heldSince >= (this.opts.warnAfterMs ?? 10_000);
    if (key !== this.lastMissing || (late && !this.warned)) {
      this.lastMissing = key;
      this.warned ||= late;
      const fields = { event: 'bootstrap_waiting', missing, waitedMs: Math.round(now - this.heldSince) };
      const msg =
        `first election held until every seed is reached; not yet: ${key}. A new cluster starts once all its seeds are up. ` +
        'If this data directory was wiped after the cluster had started, the seeds not reached hold its state: start them, ' +
        'and this node will be told to rejoin (never start a cluster again on wiped seeds without them: their acknowledged writes would be lost)';
      if (late) this.opts.log.warn(fields, msg);
      else this.opts.log.info(fields, msg);
    }
    return false;
  }
}
