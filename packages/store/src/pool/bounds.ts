// Every numeric bound the validator enforces, in one place so docs, the admin API and
// tests quote the same numbers. Validation runs inside the replicated state machine
// too, so loosening a bound is safe on a mixed-version cluster but tightening one is
// not (an old leader could commit what a new follower rejects).
export const BOUNDS = Object.freeze({
  port: { min: 1, max: 65_535 },
  weight: { min: 1, max: 1_000 },
  intervalMs: { min: 100, max: 3_600_000 },
  /** Also strictly below the effective intervalMs, so checks never overlap. */
  timeoutMs: { min: 10, max: 3_600_000 },
  threshold: { min: 1, max: 100 },
  status: { min: 100, max: 599 },
  jitterMs: { min: 0, max: 3_600_000 },
  /** Request target length; long enough for any sane health endpoint. */
  pathLength: { min: 1, max: 2_048 },
  consecutiveFailures: { min: 1, max: 1_000 },
  /** baseEjectionMs <= maxEjectionMs. One day caps a forgotten ejection. */
  ejectionMs: { min: 100, max: 86_400_000 },
  batchCommands: { min: 1, max: 1_000 },
  requestIdLength: { min: 1, max: 255 },
});
