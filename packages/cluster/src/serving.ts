// Whether this node should receive client traffic now ("can serve"), as opposed to
// whether it holds the active role. Two modes (docs/operations.md#serving-modes):
//
// - active-passive (default, for a VIP): only the active node serves — the Raft leader
//   holding its check-quorum lease with its own term's entry applied. Fenced by the
//   lease, so two nodes never serve at once.
// - all (behind an L4 balancer, DNS or a Kubernetes Service): every node whose pool is
//   *current* serves. Current means: a ReadIndex round with the leader completed less
//   than the stale limit ago, so the pool includes every write acknowledged before that
//   round began. The staleness reported is the age of the latest such round.
//
// Without a quorum no ReadIndex round completes and no node holds the lease. The safe
// default (--quorum-loss stop) is that nobody serves: in active-passive at once, in
// all after the stale limit. The opt-in (--quorum-loss keep-serving) keeps serving the
// last pool: in active-passive the node that last held the role keeps it for serving
// (and the VIP) until it hears of a newer term — a cut-off node and a newly elected one
// then both serve: split brain, chosen knowingly; in all mode every node that was ever
// current keeps serving, reporting how stale its pool may be.
import type { NodeId } from '@weldr/raft';

export const SERVE_MODES = ['active-passive', 'all'] as const;
export type ServeMode = (typeof SERVE_MODES)[number];
export const QUORUM_LOSS = ['stop', 'keep-serving'] as const;
export type QuorumLoss = (typeof QUORUM_LOSS)[number];

export interface ServingOptions {
  readonly mode: ServeMode;
  /** all mode: the pool counts as current while it was confirmed less than this long ago. */
  readonly staleLimitMs: number;
  readonly quorumLoss: QuorumLoss;
}

export const DEFAULT_SERVING: ServingOptions = { mode: 'active-passive', staleLimitMs: 5_000, quorumLoss: 'stop' };

/** What GET /serving (and /cluster's "serving") reports. */
export interface ServingStatus {
  readonly mode: ServeMode;
  /** Send client traffic here now. */
  readonly serving: boolean;
  /** Holds the active role (what GET /ready answers). */
  readonly active: boolean;
  /** Why, in a few words. */
  readonly reason: string;
  /**
   * The pool includes every write acknowledged more than this many milliseconds ago
   * (0 on the active node); null when it was never confirmed since this node started.
   */
  readonly stalenessMs: number | null;
  /** all mode: the stale limit in force. */
  readonly staleLimitMs?: number;
  readonly quorumLoss: QuorumLoss;
}

/** What the tracker reads from the Raft side; RaftCluster provides it. */
export interface ServingInputs {
  readonly self: NodeId;
  isActive(): boolean;
  term(): number;
  leader(): NodeId | null;
  /** Resolves once everything committed when it was called is applied here (ReadIndex). */
  readBarrier(): Promise<void>;
  /** Monotonic milliseconds. */
  now(): number;
}

/** At most this many confirmation rounds in flight (a lost answer is expired by the driver). */
const MAX_CONFIRMS_IN_FLIGHT = 2;

export class ServingTracker {
  private lastActiveAt: number | null = null;
  private activeTerm = -1;
  private abdicated = false;
  private lastConfirmedAt: number | null = null;
  private confirming = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    readonly options: ServingOptions,
    private readonly inputs: ServingInputs,
  ) {
    if (!Number.isSafeInteger(options.staleLimitMs) || options.staleLimitMs <= 0) throw new RangeError(`staleLimitMs must be a positive integer, got ${options.staleLimitMs}`);
  }

  /** How often all mode confirms the pool with the leader. */
  get confirmEveryMs(): number {
    return Math.min(1000, Math.max(100, Math.floor(this.options.staleLimitMs / 4)));
  }

  start(): void {
    const { mode, quorumLoss } = this.options;
    // all mode confirms the pool in the background; active-passive with keep-serving
    // samples the role so that the moment it was last held is known precisely.
    let every: number | null = null;
    if (mode === 'all') every = this.confirmEveryMs;
    else if (quorumLoss === 'keep-serving') every = 20;
    if (every === null) return;
    this.timer = setInterval(() => this.sample(), every);
    this.timer.unref();
    this.sample();
  }

  /** Shutdown began: never serve again. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The role was given up on purpose (leadership transfer, step-down, shutdown): the
   * keep-serving opt-in is for a lost quorum, not for a planned hand-over.
   */
  abdicate(): void {
    this.abdicated = true;
  }

  status(): ServingStatus {
    const now = this.inputs.now();
    const { mode, quorumLoss, staleLimitMs } = this.options;
    const base = { mode, quorumLoss, ...(mode === 'all' ? { staleLimitMs } : {}) };
    if (this.stopped) return { ...base, serving: false, active: false, reason: 'shutting down', stalenessMs: this.staleness(now) };
    if (this.inputs.isActive()) {
      this.lastActiveAt = now;
      this.lastConfirmedAt = now;
      this.activeTerm = this.inputs.term();
      this.abdicated = false;
      return { ...base, serving: true, active: true, reason: 'active', stalenessMs: 0 };
    }
    const leader = this.inputs.leader();
    if (mode === 'active-passive') {
      if (quorumLoss === 'keep-serving' && this.keepsServing(leader)) {
        return { ...base, serving: true, active: false, reason: 'lost the active role without a newer leader in sight: serving the last pool (--quorum-loss keep-serving)', stalenessMs: now - this.lastActiveAt! };
      }
      const reason = leader === null ? 'passive: no leader with a quorum is known' : leader === this.inputs.self ? 'passive: leader without a valid lease' : `passive: ${leader} leads`;
      return { ...base, serving: false, active: false, reason, stalenessMs: this.staleness(now) };
    }
    const staleness = this.staleness(now);
    if (staleness === null) return { ...base, serving: false, active: false, reason: 'the pool has not been confirmed with a leader since this node started', stalenessMs: null };
    if (staleness <= staleLimitMs) return { ...base, serving: true, active: false, reason: 'pool current', stalenessMs: staleness };
    if (quorumLoss === 'keep-serving') return { ...base, serving: true, active: false, reason: 'no leader confirmed the pool within the stale limit: serving the last pool (--quorum-loss keep-serving)', stalenessMs: staleness };
    return { ...base, serving: false, active: false, reason: 'no leader confirmed the pool within the stale limit (--serve-stale-limit)', stalenessMs: staleness };
  }

  private keepsServing(leader: NodeId | null): boolean {
    if (this.lastActiveAt === null || this.abdicated) return false;
    // A newer term, or another leader, means the cluster moved on without this node.
    return this.inputs.term() === this.activeTerm && (leader === null || leader === this.inputs.self);
  }

  private staleness(now: number): number | null {
    return this.lastConfirmedAt === null ? null : Math.max(0, Math.round(now - this.lastConfirmedAt));
  }

  private sample(): void {
    if (this.stopped) return;
    // Records the active role (and its term) as a side effect.
    this.status();
    if (this.options.mode !== 'all' || this.confirming >= MAX_CONFIRMS_IN_FLIGHT) return;
    const askedAt = this.inputs.now();
    this.confirming++;
    this.inputs.readBarrier().then(
      () => {
        this.confirming--;
        // Everything acknowledged before askedAt is applied here now.
        if (this.lastConfirmedAt === null || askedAt > this.lastConfirmedAt) this.lastConfirmedAt = askedAt;
      },
      () => {
        this.confirming--;
      },
    );
  }
}
