import { Inflights } from './inflights.js';
import type { SnapshotSender } from './snapshot-transfer.js';

/**
 * probe: one append at a time until the follower's match is found (§5.3 nextIndex back-off).
 * replicate: optimistic pipelining; nextIndex advances as appends are sent.
 * snapshot: a snapshot transfer is in progress; no appends.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower (§5.3 nextIndex / matchIndex, plus flow control). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  isLearner: boolean;
  /** In probe state: an append is out and unanswered. */
  probeSent = false;
  readonly inflights: Inflights;
  /** Latest leader tick echoed by this follower in this term (-1: none); check-quorum counts it. */
  ackTick = -1;
  /** Latest leader tick echoed together with this leader's promise (-1: none); dates the lease. */
  leaseAckTick = -1;

  /** The snapshot transfer in progress (state 'snapshot'). */
  snapshot: SnapshotSender | undefined;

  constructor(next: number, isLearner: boolean, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.state = state;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  becomeProbe(): void {
    this.resetState('probe');
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(sender: SnapshotSender): void {
    this.resetState('snapshot');
    this.snapshot = sender;
  }

  /** An append acknowledged up to n. Returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  /**
   * A rejection of the append at `rejected`; `hint` is the highest index that
   * may still match. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Record an append of entries ending at lastIndex. */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
