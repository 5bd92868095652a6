import type { NodeId } from '../types.js';
import { quorumValue } from './quorum.js';
import type { ProgressTracker } from './tracker.js';

// The check-quorum lease (thesis §6.4.1, made safe under bounded clock drift
// and whatever timers each member runs with). It is what fences weldr's active
// role: see the package README, "The lease", for the whole argument.
//
// A leader does not assume its followers share its election timeout or tick
// length. Every round it sends (MsgApp, MsgHeartbeat, MsgSnap) states the
// promise it needs, in milliseconds of the follower's own clock; a follower
// that accepts the round refuses votes and pre-votes and does not campaign for
// promiseTicks() of its own ticks, and echoes the promise in its answer. The
// leader dates its lease by the latest round a quorum acknowledged *with that
// promise*.

/** Largest promise a leader may ask for, or a follower accepts on the wire: one day (no setting gets near it). */
export const MAX_LEASE_MS = 86_400_000;

/**
 * Ticks a leader with election timeout E trusts its lease after the send tick
 * of the last round a quorum acknowledged: the largest L with
 * L·(1+ρ) < (E − 1)·(1 − ρ). Choosing it from E keeps the lease, and so the
 * time a dead leader's followers wait before electing another, about one
 * election timeout of the leader's own; what makes it safe is the promise
 * leaseMs() asks for, not E.
 */
export function leaseTicks(electionTick: number, maxClockDrift: number): number {
  const bound = ((electionTick - 1) * (1 - maxClockDrift)) / (1 + maxClockDrift);
  return Math.max(0, Math.ceil(bound) - 1);
}

/**
 * The promise (ms of the follower's own clock) a leader states for a lease of
 * `ticks` of its own `tickMs`-long ticks: strictly more than
 * ticks·tickMs·(1+ρ)/(1−ρ). The leader's `ticks` last at most
 * ticks·tickMs·(1+ρ) of real time (its clock slow); the follower's count of S
 * ms lasts at least S·(1−ρ) (its clock fast). 0 when there is no lease to ask
 * for. `ceil(x) + 1` rather than `floor(x) + 1` keeps the margin strict
 * whatever the rounding of x.
 */
export function leaseMs(ticks: number, tickMs: number, maxClockDrift: number): number {
  if (ticks <= 0) return 0;
  return Math.ceil((ticks * tickMs * (1 + maxClockDrift)) / (1 - maxClockDrift)) + 1;
}

/**
 * Ticks of its own clock a server refuses votes and does not campaign after
 * accepting a round that asked for `promisedMs`: at least its own election
 * timeout E (the restart rule and etcd's in-lease rejection), and enough
 * ticks to count `promisedMs` even when the first of them falls right after
 * the round arrived (hence + 1).
 */
export function promiseTicks(promisedMs: number, electionTick: number, tickMs: number): number {
  return Math.max(electionTick, Math.ceil(promisedMs / tickMs) + 1);
}

/**
 * The latest leader tick that a quorum of voters has echoed back; the leader
 * itself counts as "now". Followers that never answered count as `missing`.
 * `lease` picks the echoes that carried this leader's promise (the lease) or
 * any echo of this term (check-quorum).
 */
export function quorumAckTick(tracker: ProgressTracker, self: NodeId, now: number, missing: number, lease = false): number {
  return quorumValue(
    tracker.voters,
    (id) => {
      if (id === self) return now;
      const pr = tracker.progress.get(id);
      const tick = pr === undefined ? missing : lease ? pr.leaseAckTick : pr.ackTick;
      return Math.max(tick, missing);
    },
    missing,
  );
}
