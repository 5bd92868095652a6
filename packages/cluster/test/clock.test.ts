// A suspended host must not resume as the active node (issue 8, item 8): the driver's
// clock counts suspended time (CLOCK_BOOTTIME on Linux, the wall clock elsewhere) on top
// of the monotonic clock, so a resumed leader catches up every missed tick at once.
import test from 'ava';
import { gatedReference, readOncePerTurn, REFERENCE_MAX_AGE_MS, SuspendAwareClock, systemClockSources, WALL_DRIFT_TOLERANCE_MS } from '../src/clock.js';
import { RecordingCluster, TICK_MS } from './harness/recording-cluster.js';

/** Two fake clocks: `mono` stops while suspended, `ref` does not. */
function fakeHost(resolutionMs = 10) {
  const host = { mono: 1000, ref: 50_000, refAvailable: true };
  const clock = new SuspendAwareClock({
    monotonic: () => host.mono,
    reference: () => (host.refAvailable ? host.ref : undefined),
    resolutionMs,
  });
  const run = (ms: number): void => {
    host.mono += ms;
    host.ref += ms;
  };
  const suspend = (ms: number): void => {
    host.ref += ms;
  };
  return { host, clock, run, suspend };
}

test('runs at the monotonic rate and adds time spent suspended, once', (t) => {
  const { clock, run, suspend } = fakeHost();
  const t0 = clock.now();
  run(500);
  t.is(clock.now() - t0, 500);
  suspend(60_000);
  // Counted at the first reading after resume (less the reference's resolution).
  t.is(clock.now() - t0, 500 + 60_000 - 10);
  run(100);
  t.is(clock.now() - t0, 600 + 60_000 - 10);
  t.is(clock.suspendedMs, 60_000 - 10);
});

test('never goes backwards: a reference that steps back or jitters within its resolution changes nothing', (t) => {
  const { host, clock, run } = fakeHost();
  const readings: number[] = [];
  for (let i = 0; i < 50; i++) {
    run(7);
    host.ref += i % 2 === 0 ? 9 : -9; // ±9 ms of reading noise
    readings.push(clock.now());
  }
  host.ref -= 3_600_000; // wall clock set back an hour
  run(1);
  readings.push(clock.now());
  t.true(readings.every((v, i) => i === 0 || v >= readings[i - 1]!));
  t.is(clock.suspendedMs, 0);
});

test('without a reference it is the monotonic clock', (t) => {
  const { host, clock, run, suspend } = fakeHost();
  host.refAvailable = false;
  const t0 = clock.now();
  run(200);
  suspend(10_000);
  t.is(clock.now() - t0, 200);
});

test('the system sources read a clock that does not run behind performance.now()', (t) => {
  const sources = systemClockSources();
  const ref = sources.reference();
  t.true(ref !== undefined && Number.isFinite(ref));
  const clock = new SuspendAwareClock(sources);
  const a = clock.now();
  const b = clock.now();
  t.true(b >= a);
});

test('readOncePerTurn: one reading per synchronous stretch; the next stretch reads again (a suspension in between is counted there)', async (t) => {
  let reads = 0;
  let reference = 1000;
  const read = readOncePerTurn(() => {
    reads++;
    return reference;
  });
  t.is(read(), 1000);
  reference = 61_000; // the host slept for a minute after the first reading
  t.is(read(), 1000, 'same stretch: the first answer');
  t.is(reads, 1);
  await Promise.resolve();
  t.is(read(), 61_000, 'the next stretch sees the suspension');
  t.is(reads, 2);
  // A SuspendAwareClock on it counts the suspension from the next stretch on.
  let mono = 0;
  reference = 0;
  const clock = new SuspendAwareClock({ monotonic: () => mono, reference: readOncePerTurn(() => reference), resolutionMs: 10 });
  await Promise.resolve();
  mono = 5;
  reference = 60_005;
  await new Promise((r) => setImmediate(r));
  t.true(clock.now() >= 60_000 - 10);
});

test('a leader whose host was suspended is not active when it resumes, before it hears from anyone', async (t) => {
  // n1 runs on a host that will be suspended: its monotonic clock lags real time by the
  // suspension; its reference (boot time) does not. The others run on real (fake) time.
  let n1Lag = 0;
  let cluster: RecordingCluster | undefined;
  const realTime = (): number => cluster?.clock ?? 0;
  const n1Clock = new SuspendAwareClock({ monotonic: () => realTime() - n1Lag, reference: realTime, resolutionMs: 10 });
  const c = await RecordingCluster.create({ now: (id) => (id === 'n1' ? () => n1Clock.now() : realTime) });
  cluster = c;
  const n1 = await c.elect('n1');
  t.true(n1.driver.isActive());

  // Suspend n1's host for a minute: it neither ticks nor hears anything; the others
  // elect a new leader.
  c.drop((m) => m.from === 'n1' || m.to === 'n1');
  const suspendedAt = c.clock;
  while (c.clock - suspendedAt < 60_000) {
    c.clock += TICK_MS;
    n1Lag += TICK_MS;
    for (const id of ['n2', 'n3']) c.node(id).driver.tick();
    await c.deliver();
  }
  const others = ['n2', 'n3'].filter((id) => c.node(id).driver.isActive());
  t.is(others.length, 1, 'another node is active');

  // Resume: n1's first look at its lease must count the minute it was away.
  t.false(n1.driver.isActive(), 'two active nodes: the resumed leader trusts a lease that ran out during the suspension');
  t.true(n1Clock.suspendedMs >= 59_000);
});

test('a stall between reading the two clocks never pushes the clock ahead of real time', (t) => {
  // Each source read takes time: the process is preempted for `stall` ms between the
  // reference and the monotonic read (and at construction between monotonic and reference).
  let real = 1000;
  const stall = { ms: 0 };
  const clock = new SuspendAwareClock({
    monotonic: () => {
      const v = real;
      real += stall.ms;
      return v;
    },
    reference: () => {
      const v = real + 49_000;
      real += stall.ms;
      return v;
    },
    resolutionMs: 10,
  });
  for (const ms of [0, 300, 5, 800, 0, 120]) {
    stall.ms = ms;
    const before = real;
    const reading = clock.now();
    t.true(reading <= real, `clock ${reading} ahead of real time ${real} after a ${ms} ms stall (read began at ${before})`);
  }
  t.is(clock.suspendedMs, 0);
});

test('gatedReference: read only when the wall clock drifts from the monotonic one, or when the last reading is old; extrapolated otherwise', (t) => {
  let mono = 1_000;
  let wall = 1_700_000_000_000;
  let boot = 50_000;
  let reads = 0;
  const ref = gatedReference({ read: () => (reads++, boot), monotonic: () => mono, wall: () => wall });
  const advance = (ms: number): void => {
    mono += ms;
    wall += ms;
    boot += ms;
  };
  t.is(ref(), 50_000);
  t.is(reads, 1);
  // Ordinary time: extrapolated, no reading, never ahead of the reference.
  for (let i = 0; i < 9; i++) {
    advance(10);
    t.is(ref(), boot);
  }
  t.is(reads, 1, 'no reading while the clocks agree');
  advance(10); // REFERENCE_MAX_AGE_MS since the last reading: read anyway
  t.is(ref(), boot);
  t.is(reads, 2);

  // A suspension of a minute: wall and boot time jump, the monotonic clock does not.
  wall += 60_000;
  boot += 60_000;
  t.is(ref(), boot, 'the suspension is read at once');
  t.is(reads, 3);

  // The wall clock stepped forward (NTP), no suspension: read, and the reference says nothing happened.
  advance(1);
  wall += 5_000;
  t.is(ref(), boot);
  t.is(reads, 4);
  // Stepped back: read too.
  advance(1);
  wall -= 5_000;
  t.is(ref(), boot);
  t.is(reads, 5);
  // Drift within the tolerance: extrapolated.
  advance(1);
  wall += WALL_DRIFT_TOLERANCE_MS;
  t.is(ref(), boot);
  t.is(reads, 5);

  // The contrived case: a suspension hidden by a wall step back of the same size — caught by age.
  boot += 30_000;
  const hiddenAt = mono;
  while (ref() !== boot) advance(1);
  t.true(mono - hiddenAt <= REFERENCE_MAX_AGE_MS, 'caught within REFERENCE_MAX_AGE_MS of monotonic time');
});

test('gatedReference: a stall right after a reading puts the extrapolation behind the reference, never ahead', (t) => {
  let mono = 0;
  let boot = 10_000;
  let wall = 0;
  const ref = gatedReference({
    read: () => {
      const r = boot;
      // preempted for 200 ms right after reading the reference
      mono += 200;
      wall += 200;
      boot += 200;
      return r;
    },
    monotonic: () => mono,
    wall: () => wall,
  });
  ref();
  mono += 10;
  wall += 10;
  boot += 10;
  t.true(ref()! <= boot);
  const clock = new SuspendAwareClock({ monotonic: () => mono, reference: ref, resolutionMs: 10 });
  for (let i = 0; i < 50; i++) {
    mono += 3;
    wall += 3;
    boot += 3;
    clock.now();
  }
  t.is(clock.suspendedMs, 0, 'no time counted as suspended');
});
