// How --raft-heartbeat and --raft-election-timeout become the core's ticks, and the
// lease the active role gets from them. One place, so that what `weldr start` refuses
// is exactly what the driver would run.
import { DEFAULT_MAX_CLOCK_DRIFT, leaseTicks } from '@weldr/raft';

/** ρ the driver runs the core with (it sets none: the core's default), a bound on any member's clock-rate error. */
export const MAX_CLOCK_DRIFT = DEFAULT_MAX_CLOCK_DRIFT;

/** The shortest lease, in heartbeats, a configuration may give the active role. */
export const MIN_LEASE_HEARTBEATS = 2;

/** The election timeout in ticks (one tick = one heartbeat), as the driver runs it. */
export function electionTicks(electionTimeoutMs: number, heartbeatMs: number): number {
  return Math.max(2, Math.round(electionTimeoutMs / heartbeatMs));
}

/**
 * How many heartbeats the active node's lease lasts after each acknowledged round
 * (packages/raft README, "The lease"). Below two, the active role flaps at every
 * tick (one) or never starts (zero) while writes still replicate.
 */
export function leaseHeartbeats(electionTimeoutMs: number, heartbeatMs: number): number {
  return leaseTicks(electionTicks(electionTimeoutMs, heartbeatMs), MAX_CLOCK_DRIFT);
}

/** The shortest whole-ms election timeout whose lease lasts at least MIN_LEASE_HEARTBEATS with this heartbeat. */
export function minElectionTimeoutMs(heartbeatMs: number): number {
  let e = 2;
  while (leaseTicks(e, MAX_CLOCK_DRIFT) < MIN_LEASE_HEARTBEATS) e++;
  // round(T / h) >= e  ⟺  T >= (e − 0.5)·h
  let t = Math.ceil((e - 0.5) * heartbeatMs);
  while (electionTicks(t, heartbeatMs) < e) t++;
  while (t > 1 && electionTicks(t - 1, heartbeatMs) >= e) t--;
  return t;
}
