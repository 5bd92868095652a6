import type { NodeId } from '../types.js';
import { quorumValue } from './quorum.js';
import type { ProgressTracker } from './tracker.js';

// The check-quorum lease (thesis §6.4.1, made safe under bounded clock drift).
// It is what fences weldr's active role: see the package README.

/**
 * Ticks a leader may trust its lease after the send tick of the last round a
 * quorum acknowledged. A follower that acknowledged that round received it no
 * earlier than it was sent and then refuses votes (and does not campaign) for
 * E of its own ticks, which last at least (E - 1) tick periods of real time
 * when its clock runs fast (the first tick may fall right after receipt). The
 * leader's L ticks last at most L periods scaled by its own slowness. With
 * every clock within ±ρ of real time, L·(1+ρ) < (E−1)·(1−ρ) keeps the old
 * lease expired before any other server can collect a quorum of votes.
 */
export function leaseTicks(electionTick: number, maxClockDrift: number): number {
  const bound = ((electionTick - 1) * (1 - maxClockDrift)) / (1 + maxClockDrift);
  return Math.max(0, Math.ceil(bound) - 1);
}

/**
 * The latest leader tick that a quorum of voters has echoed back; the leader
 * itself counts as "now". Followers that never answered count as `missing`.
 */
export function quorumAckTick(tracker: ProgressTracker, self: NodeId, now: number, missing: number): number {
  return quorumValue(
    tracker.voters,
    (id) => (id === self ? now : Math.max(tracker.progress.get(id)?.ackTick ?? missing, missing)),
    missing,
  );
}
