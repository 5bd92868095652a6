// Upstream.update with a snapshot that says what changed (changesSince): servers added
// (or changed in place) join the candidates without a walk of every origin. Checked
// against the definition — the snapshot's servers in canonical order, minus draining
// and unhealthy ones, all non-draining ones when none is healthy (fail-open) — over a
// seeded random run of adds, weight changes, drains, removals and health verdicts.
import test from 'ava';
import { applyCommand, initialState, prepareEnvelope, snapshotOf, type PoolCommand, type PoolState } from '@weldr/store';
import { seededRandom as rng } from '@weldr/store/testing';
import type { Health } from '../src/index.js';
import { DEFAULT_TIMEOUTS } from '../src/types.js';
import { Upstream } from '../src/upstream.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };

test('candidates after each change equal the definition (seeded random changes, external health verdicts)', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = rng(seed);
    let state: PoolState = initialState();
    let index = 0;
    const apply = (command: PoolCommand): void => {
      state = applyCommand(state, ++index, prepareEnvelope(command)).state;
    };
    const up = new Upstream(snapshotOf(state), { timeouts: DEFAULT_TIMEOUTS, maxHeaderSize: 16_384, originMaxConnections: 4, originTls: null, log: quiet as never, now: () => 0, random, healthChecks: 'external' });
    const health = new Map<string, Health>();
    for (let step = 0; step < 300; step++) {
      const servers = state.servers.list();
      const pick = servers[Math.floor(random() * servers.length)];
      const r = random();
      if (r < 0.45 || pick === undefined) apply({ type: 'AddServer', ip: `10.0.${Math.floor(random() * 4)}.${1 + Math.floor(random() * 200)}`, port: 80 });
      else if (r < 0.65) apply({ type: 'UpdateServer', ip: pick.ip, port: pick.port, weight: 1 + Math.floor(random() * 9) });
      else if (r < 0.75) apply({ type: 'UpdateServer', ip: pick.ip, port: pick.port, draining: !pick.draining });
      else if (r < 0.85) apply({ type: 'RemoveServer', ip: pick.ip, port: pick.port });
      else {
        const verdict: Health = random() < 0.5 ? 'unhealthy' : 'healthy';
        health.set(pick.id, verdict);
        up.applyHealth(pick.id, verdict);
        await new Promise((resolve) => setImmediate(resolve));
      }
      up.update(snapshotOf(state));
      const now = state.servers.list();
      for (const id of [...health.keys()]) if (!now.some((s) => s.id === id)) health.delete(id);
      const live = now.filter((s) => !s.draining);
      const eligible = live.filter((s) => health.get(s.id) !== 'unhealthy');
      const expected = (eligible.length === 0 ? live : eligible).map((s) => s.id);
      t.deepEqual(up.candidates.map((o) => o.id), expected, `seed ${seed}, step ${step}`);
      t.is(up.failOpen, eligible.length === 0 && live.length > 0);
    }
    await up.close(false);
  }
});

test('weighted round-robin follows weights changed in place and servers added in place (the balancer is reset)', async (t) => {
  let state: PoolState = initialState();
  let index = 0;
  const apply = (command: PoolCommand): void => {
    state = applyCommand(state, ++index, prepareEnvelope(command)).state;
  };
  apply({ type: 'UpdateSettings', balancer: 'weighted-round-robin' });
  apply({ type: 'AddServer', ip: '10.0.0.1', port: 80 });
  apply({ type: 'AddServer', ip: '10.0.0.2', port: 80 });
  const up = new Upstream(snapshotOf(state), { timeouts: DEFAULT_TIMEOUTS, maxHeaderSize: 16_384, originMaxConnections: 4, originTls: null, log: quiet as never, now: () => 0, random: rng(7), healthChecks: 'external' });
  const counts = (picks: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (let i = 0; i < picks; i++) {
      const o = up.select(null)!;
      out[o.id] = (out[o.id] ?? 0) + 1;
    }
    return out;
  };
  t.deepEqual(counts(10), { '10.0.0.1:80': 5, '10.0.0.2:80': 5 });
  const before = up.candidates;
  apply({ type: 'UpdateServer', ip: '10.0.0.1', port: 80, weight: 3 });
  up.update(snapshotOf(state));
  t.is(up.candidates, before, 'a weight changed in place keeps the candidates array');
  t.deepEqual(counts(8), { '10.0.0.1:80': 6, '10.0.0.2:80': 2 });
  apply({ type: 'AddServer', ip: '10.0.0.3', port: 80, weight: 4 });
  up.update(snapshotOf(state));
  t.is(up.candidates, before, 'an added server is appended in place');
  t.deepEqual(counts(16), { '10.0.0.1:80': 6, '10.0.0.2:80': 2, '10.0.0.3:80': 8 });
  await up.close(false);
});

test("poolLog 'debug' (a worker) logs the pool's changes at debug; the default at info", async (t) => {
  for (const poolLog of [undefined, 'debug'] as const) {
    const lines: [string, string][] = [];
    const rec = (level: string) => (_o: object, msg?: string) => void lines.push([level, msg ?? '']);
    const log = { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
    let state: PoolState = initialState();
    let index = 0;
    const apply = (command: PoolCommand): void => {
      state = applyCommand(state, ++index, prepareEnvelope(command)).state;
    };
    const up = new Upstream(snapshotOf(state), { timeouts: DEFAULT_TIMEOUTS, maxHeaderSize: 16_384, originMaxConnections: 4, originTls: null, log, now: () => 0, random: rng(3), healthChecks: 'external', ...(poolLog === undefined ? {} : { poolLog }) });
    apply({ type: 'AddServer', ip: '10.0.0.1', port: 80 });
    up.update(snapshotOf(state));
    apply({ type: 'UpdateServer', ip: '10.0.0.1', port: 80, draining: true });
    up.update(snapshotOf(state));
    apply({ type: 'RemoveServer', ip: '10.0.0.1', port: 80 });
    up.update(snapshotOf(state));
    const want = poolLog ?? 'info';
    for (const msg of ['origin added', 'origin draining', 'origin removed, draining']) {
      t.deepEqual(lines.filter(([, m]) => m === msg).map(([level]) => level), [want], `${msg} (${want})`);
    }
    await up.close(false);
  }
});
