// The driver's clock: milliseconds that keep counting while the host is suspended.
//
// The leader's lease is a promise about real time: voters refuse to vote for an
// election timeout after they last heard from it, so the leader may act alone for
// (less than) that long. performance.now() is CLOCK_MONOTONIC, which stops while the
// machine is suspended (laptop lid, `systemctl suspend`, a VM snapshot-and-resume on
// some hypervisors): a leader suspended for a minute would resume believing its lease
// still had most of its time left, while the others elected a new leader long ago.
// Counting the suspended time makes the driver catch up every missed tick on resume, so
// the core sees its lease long expired and steps down before anything acts on it.
//
// Linux exposes CLOCK_BOOTTIME (monotonic, includes suspend) as /proc/uptime, read only
// when the wall clock hints that it moved (gatedReference); elsewhere the wall clock
// (Date.now) is the reference. Both are read only to measure how much
// further they moved than the monotonic clock: the difference is suspended time, added
// to an offset that only grows. The returned time is therefore monotonic, as fine as
// performance.now(), and never behind real time. A wall clock stepped forward (NTP) on
// a platform without /proc/uptime looks like a suspension and costs at worst a lease
// (and possibly an election) — the safe direction.
import { openSync, readSync } from 'node:fs';

/** The raw readings a SuspendAwareClock combines; injected in tests. */
export interface ClockSources {
  /** Monotonic milliseconds that may stop during a suspension (performance.now). */
  monotonic(): number;
  /** Milliseconds that keep counting during a suspension, or undefined when unavailable. */
  reference(): number | undefined;
  /** How coarse `reference` is, ms: differences below it are noise. */
  readonly resolutionMs: number;
}

/** A clock for the driver: monotonic, counts suspended time where the platform lets it. */
export class SuspendAwareClock {
  private readonly mono0: number;
  private readonly ref0: number | undefined;
  private offset = 0;

  // The two clocks cannot be read at the same instant, and the process may be preempted
  // between the two reads (for hundreds of ms on a loaded host). The order makes any
  // such gap count *against* a suspension, never for one: the origin reads monotonic
  // first, every later reading the reference first. A stall then shows as a negative
  // difference (ignored) instead of pushing the clock ahead of real time, which would
  // let timers fire early and cost an election.
  constructor(private readonly sources: ClockSources = systemClockSources()) {
    this.mono0 = sources.monotonic();
    this.ref0 = sources.reference();
  }

  /** Milliseconds since an arbitrary origin, suspended time included. */
  now(): number {
    const ref = this.sources.reference();
    const mono = this.sources.monotonic();
    if (ref !== undefined && this.ref0 !== undefined) {
      const suspended = ref - this.ref0 - (mono - this.mono0) - this.sources.resolutionMs;
      if (suspended > this.offset) this.offset = suspended;
    }
    return mono + this.offset;
  }

  /** Suspended time counted so far, ms (for logs and tests). */
  get suspendedMs(): number {
    return this.offset;
  }
}

let uptime: (() => number | undefined) | null | undefined;

/** CLOCK_BOOTTIME through /proc/uptime on Linux (read when the wall clock says it may have moved: gatedReference); the wall clock elsewhere. */
export function systemClockSources(): ClockSources {
  // One descriptor for the process, opened on first use.
  if (uptime === undefined) uptime = procUptimeReader() ?? null;
  const boot = uptime ?? undefined;
  const monotonic = (): number => performance.now();
  if (boot !== undefined) return { monotonic, reference: readOncePerTurn(gatedReference({ read: boot, monotonic, wall: () => Date.now() })), resolutionMs: 10 };
  return { monotonic, reference: () => Date.now(), resolutionMs: 2 };
}

/** How far the wall clock may drift from the monotonic one between two readings before the reference is read, ms. */
export const WALL_DRIFT_TOLERANCE_MS = 3;
/** The reference is read at least this often (monotonic ms), whatever the wall clock says. */
export const REFERENCE_MAX_AGE_MS = 100;

/**
 * A reference clock (CLOCK_BOOTTIME) read only when it may have moved apart from the
 * monotonic clock; otherwise extrapolated from its last reading at the monotonic rate.
 *
 * Reading /proc/uptime is a system call and a text parse; the driver asks for the time
 * many times per admin write. The wall clock (Date.now: CLOCK_REALTIME, no system call)
 * tells when a reading is needed: the kernel adds the time a host spent suspended to
 * CLOCK_REALTIME exactly as to CLOCK_BOOTTIME, so a suspension shows as the wall clock
 * moving further than the monotonic clock. Whenever the two drift apart by more than
 * WALL_DRIFT_TOLERANCE_MS since the last reading — a suspension, or a wall clock stepped
 * either way (NTP, an operator), which then reads BOOTTIME and finds nothing — and at
 * least every REFERENCE_MAX_AGE_MS anyway, the reference is read for real. Between
 * readings the extrapolation adds no suspended time, so it is never ahead of the real
 * reference.
 *
 * What it could miss: a suspension whose wall-clock jump is cancelled, within the
 * tolerance, by a step of the wall clock back by the same amount at the same moment.
 * Even that is caught by the next reading due by age, within REFERENCE_MAX_AGE_MS of
 * monotonic time — before a lease (several heartbeats) could be acted on for long.
 */
export function gatedReference(sources: { read: () => number | undefined; monotonic: () => number; wall: () => number }): () => number | undefined {
  let last: { ref: number; mono: number; wall: number } | null = null;
  return () => {
    const wall = sources.wall();
    const mono = sources.monotonic();
    if (last !== null) {
      const elapsed = mono - last.mono;
      const drift = wall - last.wall - elapsed;
      if (elapsed < REFERENCE_MAX_AGE_MS && drift <= WALL_DRIFT_TOLERANCE_MS && drift >= -WALL_DRIFT_TOLERANCE_MS) {
        // Measured from the last reading, not the previous call: small drifts cannot add up unseen.
        return last.ref + elapsed;
      }
    }
    const ref = sources.read();
    // The clocks it is extrapolated with are read after it: a stall between the readings
    // then puts the extrapolation behind the reference, never ahead of it.
    last = ref === undefined ? null : { ref, mono: sources.monotonic(), wall: sources.wall() };
    return ref;
  };
}

/**
 * `read`, called at most once per synchronous stretch of JavaScript: later calls in the
 * same stretch get the first answer; the first microtask checkpoint clears it. Reading
 * /proc/uptime is a system call and a text parse (~10–30 µs), and one admin write asked
 * the driver's clock about ten times within a few synchronous stretches.
 *
 * Why this cannot make a suspended node believe in a lease it no longer holds: nothing
 * outside the process sees what happens between two microtask checkpoints except what
 * it sends, and all of that follows every clock reading of the stretch. A suspension
 * after the stretch's first reading is thus indistinguishable, from outside, from one
 * after its last — which the uncached clock must already live with (a node can always
 * be suspended between reading the clock and acting on it). The next stretch reads
 * /proc/uptime again and counts the whole suspension.
 */
export function readOncePerTurn<T>(read: () => T): () => T {
  let cached = false;
  let value: T;
  const clear = (): void => {
    cached = false;
  };
  return () => {
    if (!cached) {
      value = read();
      cached = true;
      queueMicrotask(clear);
    }
    return value;
  };
}

/** Reads /proc/uptime ("12345.67 …", seconds since boot, suspend included) through one fd. */
function procUptimeReader(): (() => number | undefined) | undefined {
  let fd: number;
  try {
    fd = openSync('/proc/uptime', 'r');
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(64);
  const read = (): number | undefined => {
    try {
      const n = readSync(fd, buf, 0, buf.length, 0);
      const seconds = Number.parseFloat(buf.toString('latin1', 0, n));
      return Number.isFinite(seconds) ? seconds * 1000 : undefined;
    } catch {
      return undefined;
    }
  };
  return read() === undefined ? undefined : read;
}
