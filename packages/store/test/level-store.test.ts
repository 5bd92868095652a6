import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import {
  LevelPoolStore,
  MemoryPoolStore,
  POOL_KEYS,
  StoreError,
  StoreWriteFailure,
  applyCommand,
  initialState,
  loadState,
  replaceStateOps,
  serializeState,
  type PoolCommand,
  type PoolDb,
} from '../src/index.js';
import { poolStoreContract } from './contract/pool-store-contract.js';
import { runUntilKilled } from './fixtures/kill-writer.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weldr-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openAt(t: ExecutionContext, location: string): Promise<LevelPoolStore> {
  const store = await LevelPoolStore.open({ location });
  t.teardown(() => store.close());
  return store;
}

poolStoreContract('LevelPoolStore (LevelDB on disk)', async (t, options) => {
  const store = await LevelPoolStore.open({ location: await tempDir(t), ...options });
  t.teardown(() => store.close());
  return store;
});

poolStoreContract('LevelPoolStore (memory-level)', async (t, options) => {
  const store = await LevelPoolStore.open({ db: new MemoryLevel<string, string>(), closeDb: true, ...options });
  t.teardown(() => store.close());
  return store;
});

test('reopening restores the exact state, including remembered request ids', async (t) => {
  const dir = await tempDir(t);
  const a = await LevelPoolStore.open({ location: dir });
  await a.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1, healthCheck: { path: '/h' } }, { requestId: 'keep' });
  await a.propose({ type: 'Batch', commands: [{ type: 'AddServer', ip: '::1', port: 2 }, { type: 'AddServer', ip: '10.0.0.0', port: 2 }] });
  await a.propose({ type: 'UpdateSettings', balancer: 'power-of-two', passiveHealth: { consecutiveFailures: 3 } });
  await a.propose({ type: 'UpdateServer', ip: '10.0.0.1', port: 1, draining: true });
  await a.propose({ type: 'RemoveServer', ip: '10.0.0.0', port: 2 });
  const before = serializeState(a.state);
  await a.close();

  const b = await openAt(t, dir);
  t.is(serializeState(b.state), before);
  t.true((await b.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1, healthCheck: { path: '/h' } }, { requestId: 'keep' })).duplicate);
  t.is(b.snapshot().index, 6);
});

test('the layout uses the documented fixed-width keys', async (t) => {
  const db = new MemoryLevel<string, string>();
  const store = await LevelPoolStore.open({ db });
  t.teardown(async () => {
    await store.close();
    await db.close();
  });
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80 }, { requestId: 'a' });
  const keys = await db.keys().all();
  t.deepEqual(keys, [
    POOL_KEYS.applied,
    'pool/audit/0000000000000001',
    POOL_KEYS.format,
    'pool/request/0000000000000001',
    'pool/server/0000000000000001/10.0.0.1:80',
    POOL_KEYS.settings,
  ]);
  t.is(await db.get(POOL_KEYS.applied), '0000000000000001');
});

/** A MemoryLevel whose batch() can be observed, slowed down and failed. */
function instrumentedDb(): { db: PoolDb; calls: Array<{ ops: number; options: unknown }>; control: { delayMs: number; failNext: boolean; inFlight: number; maxInFlight: number } } {
  const db = new MemoryLevel<string, string>();
  const calls: Array<{ ops: number; options: unknown }> = [];
  const control = { delayMs: 0, failNext: false, inFlight: 0, maxInFlight: 0 };
  const original = db.batch.bind(db) as (ops: unknown[], options: unknown) => Promise<void>;
  // Monkey-patching the overloaded batch() needs a loose signature.
  (db as unknown as { batch: (ops: unknown[], options: unknown) => Promise<void> }).batch = async (ops, options) => {
    calls.push({ ops: ops.length, options });
    control.inFlight++;
    control.maxInFlight = Math.max(control.maxInFlight, control.inFlight);
    try {
      if (control.delayMs > 0) await new Promise((r) => setTimeout(r, control.delayMs));
      if (control.failNext) {
        control.failNext = false;
        throw new Error('disk full');
      }
      await original(ops, options);
    } finally {
      control.inFlight--;
    }
  };
  return { db, calls, control };
}

test('proposals arriving during a write share the next synced batch (group commit), in order, never interleaved', async (t) => {
  const { db, calls, control } = instrumentedDb();
  const store = await LevelPoolStore.open({ db, closeDb: true });
  t.teardown(() => store.close());
  control.delayMs = 5;
  calls.length = 0;
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.propose({ type: 'AddServer', ip: '10.0.0.1', port: i + 1 })));
  // The first proposal starts a batch alone; the nine that queued behind it go in one more.
  t.is(calls.length, 2);
  t.true(calls.every((c) => (c.options as { sync?: boolean }).sync === true));
  t.is(control.maxInFlight, 1);
  t.deepEqual(results.map((r) => r.index), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.deepEqual(store.snapshot().servers.map((s) => s.port), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.is(serializeState((await loadState(db)) ?? initialState()), serializeState(store.state));
});

test('a failed group batch fails every proposal in it (NODE_FAILED), publishes nothing, and stops the store for good', async (t) => {
  const { db, control } = instrumentedDb();
  const fatal: StoreWriteFailure[] = [];
  const store = await LevelPoolStore.open({ db, closeDb: true, onFatal: (err) => fatal.push(err) });
  t.teardown(() => store.close());
  control.delayMs = 5;
  const first = store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
  // Queued while the first batch is written: these three form the next group.
  const group = [2, 3, 4].map((port) => store.propose({ type: 'AddServer', ip: '10.0.0.1', port }));
  t.like(await first, { index: 1 });
  // The next group's batch has started and fails when its delay (a timer) ends.
  control.failNext = true;
  // Queued behind the failing batch: never written.
  const behind = store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 5 });
  for (const p of group) {
    const err = await t.throwsAsync(p, { instanceOf: StoreError });
    t.is(err?.code, 'NODE_FAILED');
    t.regex(err!.message, /disk full.*may have been applied/);
  }
  t.is((await t.throwsAsync(behind, { instanceOf: StoreError }))?.code, 'STOPPED');
  t.deepEqual(store.snapshot().servers.map((s) => s.port), [1]);
  // A write after a failed one could land behind a torn record and be lost on recovery:
  // the store refuses everything from now on.
  const later = await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 6 }), { instanceOf: StoreError });
  t.is(later?.code, 'STOPPED');
  t.regex(later!.message, /stopped after a write to the pool database failed: disk full; this write was not applied/);
  t.is(fatal.length, 1, 'onFatal once');
  t.is(fatal[0]?.message, 'a write to the pool database failed: disk full');
  t.is(store.failed, fatal[0]);
  t.is(control.failNext, false);
  t.is(serializeState((await loadState(db)) ?? initialState()), serializeState(store.state));
});

test('after a failed write nothing else reaches the database, not even on close', async (t) => {
  const { db, calls, control } = instrumentedDb();
  const store = await LevelPoolStore.open({ db, closeDb: true, onFatal: () => undefined });
  control.failNext = true;
  t.is((await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }), { instanceOf: StoreError }))?.code, 'NODE_FAILED');
  const before = calls.length;
  await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 2 }), { instanceOf: StoreError });
  await store.close();
  t.is(calls.length, before);
  t.is(store.snapshot().index, 0);
});

test('timeoutMs gives up waiting with TIMEOUT, and the write still applies', async (t) => {
  const { db, control } = instrumentedDb();
  const store = await LevelPoolStore.open({ db, closeDb: true });
  t.teardown(() => store.close());
  control.delayMs = 100;
  const seen = new Promise((resolve) => store.subscribe(resolve));
  const err = await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }, { timeoutMs: 10 }), { instanceOf: StoreError });
  t.is(err?.code, 'TIMEOUT');
  t.regex(err?.message ?? '', /may still be applied/);
  await seen;
  t.is(store.snapshot().servers.length, 1);
});

test('close waits for queued proposals to finish', async (t) => {
  const { db, control } = instrumentedDb();
  const store = await LevelPoolStore.open({ db, closeDb: true });
  control.delayMs = 20;
  const pending = store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
  await store.close();
  t.like(await pending, { index: 1 });
  t.is(db.status, 'closed');
});

test('a database written by another format version is refused', async (t) => {
  const db = new MemoryLevel<string, string>();
  await db.put(POOL_KEYS.format, '99');
  await t.throwsAsync(LevelPoolStore.open({ db }), { message: /format 99/ });
  await db.close();
});

test('a value stored under the wrong key is detected as corruption', async (t) => {
  const db = new MemoryLevel<string, string>();
  const store = await LevelPoolStore.open({ db });
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80 });
  await store.close();
  const record = await db.get('pool/server/0000000000000001/10.0.0.1:80');
  await db.put('pool/server/0000000000000001/10.0.0.2:80', record ?? '');
  await t.throwsAsync(LevelPoolStore.open({ db }), { message: /corrupt pool state/ });
  await db.close();
});

test('incremental writes always equal a full rewrite (random log, tiny idempotency table and audit log)', async (t) => {
  const db = new MemoryLevel<string, string>();
  const limits = { maxEntries: 7, maxWeight: 12 };
  const auditRetention = 5;
  const now = (): number => 1_700_000_000_000;
  const store = await LevelPoolStore.open({ db, limits, auditRetention, now });
  t.teardown(async () => {
    await store.close();
    await db.close();
  });
  const reference = new MemoryPoolStore({ limits, auditRetention, now });
  let s = 2024;
  const rnd = (n: number): number => {
    s = (s * 48_271) % 2_147_483_647;
    return s % n;
  };
  for (let i = 0; i < 300; i++) {
    const port = rnd(6) + 1;
    const commands: PoolCommand[] = [
      { type: 'AddServer', ip: rnd(2) ? '10.0.0.1' : '::1', port, weight: rnd(3) + 1 },
      { type: 'RemoveServer', ip: '10.0.0.1', port },
      { type: 'UpdateServer', ip: '10.0.0.1', port, draining: rnd(2) === 0 },
      { type: 'UpdateSettings', balancer: rnd(2) ? 'round-robin' : 'least-connections' },
      { type: 'Batch', commands: [{ type: 'AddServer', ip: '10.0.0.2', port }, { type: 'AddServer', ip: '10.0.0.1', port: 99 }, { type: 'RemoveServer', ip: '10.0.0.2', port: rnd(6) + 1 }] },
    ];
    const command = commands[rnd(commands.length)] as PoolCommand;
    const requestId = `r${rnd(3) === 0 ? rnd(i + 1) : i}`;
    const origin = { nodeId: `n${rnd(3)}`, client: '127.0.0.1' };
    const [a, b] = await Promise.all([store.propose(command, { requestId, origin }), reference.propose(command, { requestId, origin })]);
    t.deepEqual(a, b);
    const loaded = await loadState(db);
    t.is(serializeState(loaded ?? initialState()), serializeState(reference.state), `after command ${i}`);
  }
});

test('replaceStateOps installs a whole state over an older one in one batch', async (t) => {
  const db = new MemoryLevel<string, string>();
  t.teardown(() => db.close());
  const store = await LevelPoolStore.open({ db });
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }, { requestId: 'old' });
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 2 });
  await store.close();
  await db.put('raft/hardstate', 'untouched');

  let next = initialState();
  next = applyCommand(next, 7, { requestId: 'new', command: { type: 'AddServer', ip: '10.0.0.3', port: 3 } }).state;
  await db.batch(await replaceStateOps(db, next));
  t.is(serializeState((await loadState(db)) ?? initialState()), serializeState(next));
  t.is(await db.get('raft/hardstate'), 'untouched', 'keys outside pool/ are left alone');
});

test('acknowledged writes survive kill -9 of the writing process', async (t) => {
  const dir = await tempDir(t);
  const acked = await runUntilKilled('level-writer.ts', dir, 40);
  const store = await openAt(t, dir);
  const snap = store.snapshot();
  t.true(snap.index >= acked, `applied ${snap.index} >= acknowledged ${acked}`);
  const ports = new Set(snap.servers.map((s) => s.port));
  for (let port = 1; port <= acked; port++) t.true(ports.has(port), `acknowledged server ${port} is present`);
  t.is(snap.servers.length, snap.index);
});

test('two stores cannot open the same directory at once', async (t) => {
  const dir = await tempDir(t);
  await openAt(t, dir);
  const err = await t.throwsAsync(LevelPoolStore.open({ location: dir }));
  t.regex(`${err?.message} ${String((err?.cause as Error | undefined)?.message)}`, /in use by another process/);
});

test('a Level instance passed in is left open unless closeDb is set', async (t) => {
  const dir = await tempDir(t);
  const db = new Level<string, string>(dir);
  const store = await LevelPoolStore.open({ db });
  await store.close();
  t.is(db.status, 'open');
  await db.close();
});
