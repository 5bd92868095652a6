import test from 'ava';
import {
  advanceIndex,
  applyCommand,
  deserializeState,
  initialState,
  serializeState,
  snapshotOf,
  DEFAULT_SETTINGS,
  type CommandEnvelope,
  type CommandOutcome,
  type PoolCommand,
  type PoolState,
  type ServerOrSettingsCommand,
} from '../src/index.js';

/** Applies commands at consecutive indexes; returns the final state and every result. */
function run(commands: ReadonlyArray<PoolCommand | CommandEnvelope>, start: PoolState = initialState(), limits?: { maxEntries: number; maxWeight: number }) {
  let state = start;
  const outcomes: CommandOutcome[] = [];
  const results = [];
  for (const item of commands) {
    const envelope = 'command' in item ? item : { requestId: `r${state.appliedIndex + 1}`, command: item };
    const applied = applyCommand(state, state.appliedIndex + 1, envelope, limits === undefined ? {} : { limits });
    state = applied.state;
    outcomes.push(applied.result.outcome);
    results.push(applied.result);
  }
  return { state, outcomes, results };
}

type SubCommand = ServerOrSettingsCommand;
const add = (port: number, extra: object = {}): SubCommand => ({ type: 'AddServer', ip: '10.0.0.1', port, ...extra });
const remove = (port: number): SubCommand => ({ type: 'RemoveServer', ip: '10.0.0.1', port });

test('AddServer creates a record with defaults and indexes', (t) => {
  const { state, outcomes } = run([add(80)]);
  t.deepEqual(outcomes[0], {
    ok: true,
    status: 'created',
    server: { id: '10.0.0.1:80', ip: '10.0.0.1', port: 80, weight: 1, healthCheck: {}, draining: false, createdIndex: 1, updatedIndex: 1 },
  });
  t.is(state.appliedIndex, 1);
  t.deepEqual(snapshotOf(state).servers.map((s) => s.id), ['10.0.0.1:80']);
});

test('AddServer of an existing server: unchanged when nothing differs, else updated with the given fields', (t) => {
  const { outcomes, state } = run([add(80, { weight: 5 }), add(80), add(80, { weight: 5 }), add(80, { weight: 7 }), add(80, { healthCheck: { path: '/h' } })]);
  t.deepEqual(outcomes.map((o) => (o.ok ? o.status : o.code)), ['created', 'unchanged', 'unchanged', 'updated', 'updated']);
  const server = snapshotOf(state).servers[0];
  t.like(server, { weight: 7, healthCheck: { path: '/h' }, createdIndex: 1, updatedIndex: 5 });
});

test('unchanged keeps the very same record object (cheap diffing for the proxy)', (t) => {
  const first = run([add(80)]);
  const second = run([add(80)], first.state);
  t.is(snapshotOf(second.state).servers[0], snapshotOf(first.state).servers[0]);
  t.is(second.state.servers, first.state.servers);
});

test('RemoveServer of an unknown server is a NOT_FOUND outcome, not an exception', (t) => {
  const { outcomes, state } = run([remove(80)]);
  t.like(outcomes[0], { ok: false, code: 'NOT_FOUND' });
  t.is(state.appliedIndex, 1);
});

test('RemoveServer returns the removed record', (t) => {
  const { outcomes, state } = run([add(80), remove(80)]);
  t.like(outcomes[1], { ok: true, status: 'removed', server: { id: '10.0.0.1:80' } });
  t.is(snapshotOf(state).servers.length, 0);
});

test('UpdateServer: not found, unchanged, updated, draining, overrides replaced as a whole', (t) => {
  const update = (extra: object): PoolCommand => ({ type: 'UpdateServer', ip: '10.0.0.1', port: 80, ...extra });
  const { outcomes, state } = run([
    update({ weight: 2 }),
    add(80, { healthCheck: { path: '/a', jitterMs: 5 } }),
    update({}),
    update({ draining: true }),
    update({ healthCheck: { path: '/b' } }),
    update({ healthCheck: {} }),
  ]);
  t.deepEqual(outcomes.map((o) => (o.ok ? o.status : o.code)), ['NOT_FOUND', 'created', 'unchanged', 'updated', 'updated', 'updated']);
  t.like(outcomes[4], { server: { healthCheck: { path: '/b' } } });
  t.deepEqual(snapshotOf(state).servers[0]?.healthCheck, {});
  t.true(snapshotOf(state).servers[0]?.draining);
});

test('a server override must keep timeoutMs below the effective intervalMs', (t) => {
  // Defaults: interval 2000, timeout 1000.
  const { outcomes, state } = run([add(80, { healthCheck: { intervalMs: 500 } }), add(81, { healthCheck: { timeoutMs: 2000 } }), add(82, { healthCheck: { intervalMs: 5000, timeoutMs: 4000 } })]);
  t.like(outcomes[0], { ok: false, code: 'INVALID', field: 'healthCheck.intervalMs' });
  t.like(outcomes[1], { ok: false, code: 'INVALID', field: 'healthCheck.timeoutMs' });
  t.like(outcomes[2], { ok: true, status: 'created' });
  t.is(state.servers.size, 1);
});

test('UpdateSettings merges field by field and rejects combinations that break a server', (t) => {
  const { outcomes, state } = run([
    { type: 'UpdateSettings', balancer: 'least-connections', healthCheck: { path: '/ready' } },
    add(80, { healthCheck: { timeoutMs: 1500 } }),
    { type: 'UpdateSettings', healthCheck: { intervalMs: 1200 } }, // would make 10.0.0.1:80 time out after its interval
    { type: 'UpdateSettings', healthCheck: { intervalMs: 1000 } }, // below the default timeout itself
    { type: 'UpdateSettings', passiveHealth: { baseEjectionMs: 400_000 } }, // above the default max
    { type: 'UpdateSettings', balancer: 'least-connections' },
  ]);
  t.like(outcomes[0], { ok: true, status: 'settings', settings: { balancer: 'least-connections', healthCheck: { path: '/ready', intervalMs: 2000 } } });
  t.like(outcomes[2], { ok: false, code: 'INVALID', field: 'healthCheck.intervalMs' });
  t.regex(outcomes[2]?.ok === false ? outcomes[2].message : '', /10\.0\.0\.1:80/);
  t.like(outcomes[3], { ok: false, code: 'INVALID', field: 'healthCheck.intervalMs' });
  t.like(outcomes[4], { ok: false, code: 'INVALID', field: 'passiveHealth.baseEjectionMs' });
  t.like(outcomes[5], { ok: true, status: 'settings' });
  t.is(state.settings.healthCheck.intervalMs, 2000);
  t.is(state.settings.healthCheck.path, '/ready');
  t.is(state.settings.passiveHealth, DEFAULT_SETTINGS.passiveHealth);
});

test('a Batch applies atomically: one failing sub-command applies nothing and reports its position', (t) => {
  const { outcomes, state } = run([
    add(1),
    { type: 'Batch', commands: [add(2), { type: 'UpdateSettings', balancer: 'power-of-two' }, remove(1), remove(99)] },
  ]);
  t.deepEqual(outcomes[1], { ok: false, code: 'NOT_FOUND', message: 'commands[3]: server 10.0.0.1:99 is not in the pool', field: 'commands[3]' });
  t.deepEqual([...state.servers.keys()], ['10.0.0.1:1']);
  t.is(state.settings.balancer, 'round-robin');
  t.is(state.appliedIndex, 2);
});

test('a Batch sub-command invalid against the state names its field', (t) => {
  const { outcomes } = run([{ type: 'Batch', commands: [add(1), add(2, { healthCheck: { timeoutMs: 5000 } })] }]);
  t.like(outcomes[0], { ok: false, code: 'INVALID', field: 'commands[1].healthCheck.timeoutMs' });
});

test('a successful Batch returns one result per sub-command, later ones seeing earlier ones', (t) => {
  const { outcomes, state } = run([{ type: 'Batch', commands: [add(1), add(1, { weight: 4 }), remove(1), add(1)] }]);
  t.like(outcomes[0], { ok: true, status: 'batch' });
  const results = outcomes[0]?.ok && outcomes[0].status === 'batch' ? outcomes[0].results : [];
  t.deepEqual(results.map((r) => (r.ok ? r.status : r.code)), ['created', 'updated', 'removed', 'created']);
  t.like(snapshotOf(state).servers[0], { weight: 1, createdIndex: 1 });
});

test('canonical order: creation index, then id among servers created by one command', (t) => {
  const { state } = run([
    add(9),
    { type: 'Batch', commands: [add(5), { type: 'AddServer', ip: '::1', port: 1 }, add(10), add(1)] },
    add(2),
    remove(9),
    add(9),
  ]);
  t.deepEqual(
    snapshotOf(state).servers.map((s) => s.id),
    ['10.0.0.1:1', '10.0.0.1:10', '10.0.0.1:5', '[::1]:1', '10.0.0.1:2', '10.0.0.1:9'],
  );
});

test('a retried request id answers the first outcome and changes nothing', (t) => {
  const once = run([{ requestId: 'abc', command: add(80) }, add(81)]);
  const again = run([{ requestId: 'abc', command: add(80) }], once.state);
  t.deepEqual(again.results[0], { index: 1, outcome: once.outcomes[0], duplicate: true });
  t.is(again.state.servers, once.state.servers);
  t.is(again.state.appliedIndex, 3);
  // A retry after the server was removed must not resurrect it.
  const removed = run([remove(80), { requestId: 'abc', command: add(80) }], once.state);
  t.false(removed.state.servers.has('10.0.0.1:80'));
  t.true(removed.results[1]?.duplicate);
});

test('failures are remembered too: a retried failing command gets the same failure', (t) => {
  const { results } = run([{ requestId: 'x', command: remove(80) }, add(80), { requestId: 'x', command: remove(80) }]);
  t.like(results[2], { index: 1, duplicate: true, outcome: { ok: false, code: 'NOT_FOUND' } });
});

test('a request id reused for a different command is a CONFLICT and is not applied', (t) => {
  const { results, state } = run([{ requestId: 'k', command: add(80) }, { requestId: 'k', command: add(81) }]);
  t.like(results[1], { index: 2, duplicate: false, outcome: { ok: false, code: 'CONFLICT' } });
  t.false(state.servers.has('10.0.0.1:81'));
  // Spellings that canonicalise to the same command are the same command.
  const same = run([{ requestId: 'v6', command: { type: 'AddServer', ip: '::1', port: 80 } }, { requestId: 'v6', command: { type: 'AddServer', ip: '[0::1]', port: '80' } as unknown as PoolCommand }]);
  t.true(same.results[1]?.duplicate);
});

test('the idempotency table keeps exactly the most recent maxEntries ids', (t) => {
  const limits = { maxEntries: 3, maxWeight: 1000 };
  const commands = [1, 2, 3, 4, 5].map((p) => ({ requestId: `id${p}`, command: add(p) }));
  const { state } = run(commands, initialState(), limits);
  t.is(state.requests.size, 3);
  // id1 and id2 are forgotten: replaying id2 applies again (server 2 was never removed → unchanged, not duplicate).
  t.false(run([{ requestId: 'id2', command: add(2) }], state, limits).results[0]?.duplicate);
  t.true(run([{ requestId: 'id3', command: add(3) }], state, limits).results[0]?.duplicate);
  // Remembering a new id evicts the oldest kept one (id3).
  const after = run([{ requestId: 'new', command: add(9) }, { requestId: 'id3', command: add(3) }], state, limits);
  t.false(after.results[1]?.duplicate);
});

test('eviction also bounds the total weight of remembered batch outcomes', (t) => {
  const limits = { maxEntries: 100, maxWeight: 10 };
  const batch = (base: number): PoolCommand => ({ type: 'Batch', commands: [add(base), add(base + 1), add(base + 2), add(base + 3)] });
  // Each batch outcome weighs 5; two fit, the third evicts the first.
  const { state } = run([{ requestId: 'b1', command: batch(10) }, { requestId: 'b2', command: batch(20) }, { requestId: 'b3', command: batch(30) }], initialState(), limits);
  t.is(state.requests.size, 2);
  t.is(state.requests.weight, 10);
});

test('eviction works across chunk boundaries and survives serialisation', (t) => {
  const limits = { maxEntries: 300, maxWeight: 100_000 };
  const commands = Array.from({ length: 700 }, (_, i) => ({ requestId: `q${i}`, command: add((i % 50) + 1) }));
  const { state } = run(commands, initialState(), limits);
  t.is(state.requests.size, 300);
  const restored = deserializeState(serializeState(state));
  t.is(serializeState(restored), serializeState(state));
  for (const probe of [run([{ requestId: 'q399', command: add(50) }], state, limits), run([{ requestId: 'q399', command: add(50) }], restored, limits)]) {
    t.false(probe.results[0]?.duplicate, 'q399 was evicted');
  }
  for (const probe of [run([{ requestId: 'q400', command: add(1) }], state, limits), run([{ requestId: 'q400', command: add(1) }], restored, limits)]) {
    t.true(probe.results[0]?.duplicate, 'q400 is the oldest kept');
  }  // The newest chunk (still filling, searched without an index) and a full one (indexed) both answer.
  for (const i of [699, 650, 511, 450]) {
    t.true(run([{ requestId: `q${i}`, command: add((i % 50) + 1) }], state, limits).results[0]?.duplicate, `q${i} is remembered`);
  }

});

test('invalid log entries become INVALID outcomes on every replica instead of throwing', (t) => {
  const bad = [
    { requestId: 'ok', command: { type: 'AddServer', ip: 'not-an-ip', port: 80 } },
    { requestId: '', command: add(80) },
    null,
  ] as unknown as CommandEnvelope[];
  let state = initialState();
  for (const [i, envelope] of bad.entries()) {
    const applied = applyCommand(state, i + 1, envelope);
    t.like(applied.result.outcome, { ok: false, code: 'INVALID' });
    state = applied.state;
  }
  t.is(state.appliedIndex, 3);
});

test('applying out of order is a programming error', (t) => {
  const { state } = run([add(1)]);
  t.throws(() => applyCommand(state, 1, { requestId: 'x', command: add(2) }), { instanceOf: RangeError });
  t.throws(() => applyCommand(state, 1.5, { requestId: 'x', command: add(2) }), { instanceOf: RangeError });
  t.throws(() => advanceIndex(state, 0), { instanceOf: RangeError });
});

test('advanceIndex skips non-pool entries; indexes may have gaps', (t) => {
  let { state } = run([add(1)]);
  state = advanceIndex(state, 5);
  const applied = applyCommand(state, 9, { requestId: 'g', command: add(2) });
  t.is(applied.result.index, 9);
  t.is(snapshotOf(applied.state).index, 9);
  t.like(snapshotOf(applied.state).servers[1], { createdIndex: 9 });
});

test('applyCommand does not modify its input state', (t) => {
  const before = run([add(1, { healthCheck: { path: '/x' } })]).state;
  const text = serializeState(before);
  run([{ type: 'UpdateServer', ip: '10.0.0.1', port: 1, weight: 9, healthCheck: { path: '/y' } }, add(2), remove(1)], before);
  t.is(serializeState(before), text);
});

test('snapshots are deeply frozen and memoised', (t) => {
  const { state } = run([add(1, { healthCheck: { expectedStatus: { min: 200, max: 204 } } })]);
  const snap = snapshotOf(state);
  t.is(snapshotOf(state), snap);
  t.true(Object.isFrozen(snap));
  t.true(Object.isFrozen(snap.servers));
  t.true(Object.isFrozen(snap.servers[0]));
  t.true(Object.isFrozen(snap.servers[0]?.healthCheck.expectedStatus));
  t.true(Object.isFrozen(snap.settings.healthCheck.expectedStatus));
  t.throws(() => {
    (snap.servers as ServerArray).push(snap.servers[0] as never);
  });
});
type ServerArray = unknown[];

/** A small seeded generator of command logs, valid and invalid, for determinism tests. */
function randomLog(seed: number, length: number): CommandEnvelope[] {
  let s = seed;
  const rnd = (n: number): number => {
    s = (s * 48_271) % 2_147_483_647;
    return s % n;
  };
  const pick = (): PoolCommand => {
    const port = rnd(8) + 1;
    switch (rnd(6)) {
      case 0:
        return add(port, rnd(2) ? { weight: rnd(5) + 1 } : {});
      case 1:
        return remove(port);
      case 2:
        return { type: 'UpdateServer', ip: '10.0.0.1', port, draining: rnd(2) === 0, healthCheck: rnd(2) ? {} : { timeoutMs: 500 + rnd(3000) } };
      case 3:
        return { type: 'UpdateSettings', healthCheck: { intervalMs: 800 + rnd(4000) }, balancer: rnd(2) ? 'round-robin' : 'power-of-two' };
      case 4:
        return { type: 'Batch', commands: [add(port), remove(rnd(8) + 1)] };
      default:
        return { type: 'AddServer', ip: rnd(2) ? '::1' : '[0:0::1]', port };
    }
  };
  // Reuse request ids now and then so duplicates and conflicts happen.
  return Array.from({ length }, (_, i) => ({ requestId: `req-${rnd(4) === 0 ? rnd(i + 1) : i}`, command: pick() }));
}

test('determinism: the same log gives the same snapshots and results on two replicas', (t) => {
  for (const seed of [1, 7, 12_345]) {
    const log = randomLog(seed, 400);
    const a = run(log, initialState(), { maxEntries: 50, maxWeight: 120 });
    const b = run(structuredClone(log), initialState(), { maxEntries: 50, maxWeight: 120 });
    t.deepEqual(a.results, b.results, `seed ${seed}`);
    t.is(serializeState(a.state), serializeState(b.state), `seed ${seed}`);
    t.deepEqual(snapshotOf(a.state), snapshotOf(b.state));
  }
});

test('serialise → deserialise round-trips exactly and the restored replica keeps agreeing', (t) => {
  const log = randomLog(99, 300);
  const limits = { maxEntries: 40, maxWeight: 100 };
  const first = run(log.slice(0, 200), initialState(), limits);
  const text = serializeState(first.state);
  const restored = deserializeState(text);
  t.is(serializeState(restored), text);
  t.deepEqual(snapshotOf(restored), snapshotOf(first.state));
  const continued = run(log.slice(200), first.state, limits);
  const continuedRestored = run(log.slice(200), restored, limits);
  t.deepEqual(continuedRestored.results, continued.results);
  t.is(serializeState(continuedRestored.state), serializeState(continued.state));
});

test('deserializeState rejects corruption and unknown versions', (t) => {
  const { state } = run([add(1), add(2)]);
  const doc = JSON.parse(serializeState(state)) as Record<string, unknown> & { servers: Record<string, unknown>[] };
  const corrupt = (mutate: (d: typeof doc) => void): string => {
    const copy = structuredClone(doc);
    mutate(copy);
    return JSON.stringify(copy);
  };
  t.throws(() => deserializeState('{'), { message: /not JSON/ });
  t.throws(() => deserializeState(corrupt((d) => (d.version = 4))), { message: /version/ });
  t.is(deserializeState(serializeState(state)).audit.length, 2);
  // Version 1 (before member records) is still read, as a state without members; it has no `cluster`.
  const v1 = corrupt((d) => {
    d.version = 1;
    delete d.cluster;
    delete d.audit;
  });
  const { audit: _audit, ...withoutAudit } = snapshotOf(state);
  t.like(snapshotOf(deserializeState(v1)), withoutAudit);
  t.is(deserializeState(v1).cluster.members.size, 0);
  t.deepEqual([...deserializeState(v1).audit], [], 'before format 3 there is no audit log');
  t.throws(() => deserializeState(corrupt((d) => (d.version = 1))), { message: /state\.cluster/ }, 'version 1 has no cluster part');
  // Version 2 (before the audit log) is read with an empty one; it has no `audit`.
  const v2 = corrupt((d) => {
    d.version = 2;
    delete d.audit;
  });
  t.deepEqual([...deserializeState(v2).audit], []);
  t.throws(() => deserializeState(corrupt((d) => (d.version = 2))), { message: /state\.audit/ }, 'version 2 has no audit part');
  t.throws(() => deserializeState(corrupt((d) => delete d.audit)), { message: /state\.audit/ });
  t.throws(() => deserializeState(corrupt((d) => ((d.audit as Record<string, unknown>[])[0]!.index = 99))), { message: /audit\[0\]\.index/ });
  t.throws(() => deserializeState(corrupt((d) => delete d.cluster)), { message: /state\.cluster/ });
  t.throws(() => deserializeState(corrupt((d) => ((d.servers[0] as Record<string, unknown>).ip = '010.0.0.1'))), { message: /servers\[0\]\.ip/ });
  t.throws(() => deserializeState(corrupt((d) => ((d.servers[0] as Record<string, unknown>).id = 'x'))), { message: /servers\[0\]\.id/ });
  t.throws(() => deserializeState(corrupt((d) => d.servers.reverse())), { message: /canonical order/ });
  t.throws(() => deserializeState(corrupt((d) => ((d.servers[0] as Record<string, unknown>).createdIndex = 99))), { message: /createdIndex/ });
  t.throws(() => deserializeState(corrupt((d) => (d.extra = 1))), { message: /state\.extra/ });
  t.throws(() => deserializeState(corrupt((d) => delete d.settings)), { message: /settings/ });
});
