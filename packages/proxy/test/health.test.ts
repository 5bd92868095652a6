import test from 'ava';
import { DEFAULT_HEALTH_CHECK, DEFAULT_PASSIVE_HEALTH } from '@weldr/store';
import { HealthState } from '../src/health/health-state.js';
import { PassiveHealth } from '../src/health/passive.js';

const spec = { ...DEFAULT_HEALTH_CHECK, healthyThreshold: 2, unhealthyThreshold: 3 };
const ok = (at: number) => ({ at, ok: true, status: 200 });
const bad = (at: number) => ({ at, ok: false, error: 'ECONNREFUSED' });

test('a new server is unknown, and its first failed check demotes it at once', (t) => {
  const h = new HealthState();
  t.is(h.health, 'unknown');
  t.true(h.record(bad(1), spec));
  t.is(h.health, 'unhealthy');
  t.deepEqual(h.lastCheck, bad(1));
});

test('the last 10 check outcomes are kept, oldest first, with pass and fail totals', (t) => {
  const h = new HealthState();
  t.deepEqual(h.recentChecks(), []);
  for (let i = 0; i < 12; i++) h.record(i % 3 === 0 ? bad(i) : ok(i), spec);
  // Checks 2..11: ok bad ok ok bad ok ok bad ok ok (i = 3, 6, 9 failed).
  t.deepEqual(h.recentChecks(), [true, false, true, true, false, true, true, false, true, true]);
  t.is(h.passed, 8);
  t.is(h.failed, 4);
  h.reset();
  t.deepEqual(h.recentChecks(), [], 'checks disabled: no history shown');
});

test('unknown becomes healthy after healthyThreshold passes', (t) => {
  const h = new HealthState();
  t.false(h.record(ok(1), spec));
  t.is(h.health, 'unknown');
  t.true(h.record(ok(2), spec));
  t.is(h.health, 'healthy');
});

test('healthy needs unhealthyThreshold consecutive failures; a pass resets the count', (t) => {
  const h = new HealthState();
  h.record(ok(1), spec);
  h.record(ok(2), spec);
  t.false(h.record(bad(3), spec));
  t.false(h.record(bad(4), spec));
  t.false(h.record(ok(5), spec));
  t.false(h.record(bad(6), spec));
  t.false(h.record(bad(7), spec));
  t.is(h.health, 'healthy');
  t.true(h.record(bad(8), spec));
  t.is(h.health, 'unhealthy');
  t.false(h.record(ok(9), spec));
  t.true(h.record(ok(10), spec));
  t.is(h.health, 'healthy');
});

test('passive: consecutive failures eject with exponential backoff, capped', (t) => {
  const p = new PassiveHealth();
  const s = { ...DEFAULT_PASSIVE_HEALTH, consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectionMs: 3_000 };
  let now = 0;
  t.false(p.failure(s, now));
  t.false(p.failure(s, now));
  t.true(p.failure(s, now));
  t.true(p.isEjected(now));
  t.is(p.ejectedUntil, 1_000);
  // Failures while ejected do not extend it.
  t.false(p.failure(s, 500));
  now = 1_000;
  t.false(p.isEjected(now));
  t.true(p.expire(now));
  for (let i = 0; i < 2; i++) p.failure(s, now);
  t.true(p.failure(s, now));
  t.is(p.ejectedUntil - now, 2_000);
  now = 3_000;
  p.expire(now);
  for (let i = 0; i < 2; i++) p.failure(s, now);
  t.true(p.failure(s, now));
  t.is(p.ejectedUntil - now, 3_000, 'capped at maxEjectionMs');
});

test('passive: a success resets the streak; backoff decays after maxEjectionMs of health', (t) => {
  const p = new PassiveHealth();
  const s = { ...DEFAULT_PASSIVE_HEALTH, consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 1_000 };
  let now = 0;
  p.failure(s, now);
  p.success(s, () => now);
  t.false(p.failure(s, now), 'streak was reset by the success');
  t.true(p.failure(s, now));
  now = 100;
  p.expire(now);
  t.is(p.ejections, 1);
  p.success(s, () => now);
  t.is(p.ejections, 1, 'too soon to forget');
  now = 1_200;
  p.success(s, () => now);
  t.is(p.ejections, 0);
});

test('passive: disabled never ejects', (t) => {
  const p = new PassiveHealth();
  const s = { ...DEFAULT_PASSIVE_HEALTH, enabled: false, consecutiveFailures: 1 };
  t.false(p.failure(s, 0));
  t.false(p.isEjected(0));
});
