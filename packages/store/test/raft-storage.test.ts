import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { MemoryStorage, type ConfState, type Entry, type Storage } from '@weldr/raft';
import { storageContract, type ContractStorage } from '@weldr/raft/testing';
import { LevelPoolStore, LevelRaftStorage, RAFT_KEYS, RaftStorageCorrupt, encodeEntry, logKey, type PoolDb } from '../src/index.js';
import { runUntilKilled } from './fixtures/kill-writer.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weldr-raftlog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const enc = new TextEncoder();
const ent = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, type: 'normal', data: enc.encode(text) });
const CONF: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };

// ---- the core's storage contract, in memory and on disk ---------------------------

const dbOf = new WeakMap<object, PoolDb>();

for (const c of storageContract(
  async (confState) => {
    const db = new MemoryLevel<string, string>() as unknown as PoolDb;
    const s = await LevelRaftStorage.open(db, { confState });
    dbOf.set(s, db);
    return s as unknown as ContractStorage;
  },
  async (s) => {
    await (s as unknown as LevelRaftStorage).flush();
    return (await LevelRaftStorage.open(dbOf.get(s)!)) as unknown as ContractStorage;
  },
)) {
  test(`storage contract (LevelRaftStorage on memory-level): ${c.name}`, async (t) => {
    await c.run();
    t.pass();
  });
}

test('storage contract (LevelRaftStorage on LevelDB): every case, with a real close and reopen', async (t) => {
  const dirs: string[] = [];
  const dbs: Level<string, string>[] = [];
  t.teardown(async () => {
    for (const db of dbs) await db.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const cases = storageContract(
    async (confState) => {
      const dir = await mkdtemp(join(tmpdir(), 'weldr-raftlog-'));
      dirs.push(dir);
      const db = new Level<string, string>(dir);
      dbs.push(db);
      const s = await LevelRaftStorage.open(db as unknown as PoolDb, { confState });
      dbOf.set(s, db as unknown as PoolDb);
      return s as unknown as ContractStorage;
    },
    async (s) => {
      await (s as unknown as LevelRaftStorage).flush();
      const db = dbOf.get(s)! as unknown as Level<string, string>;
      await db.close();
      const again = new Level<string, string>(db.location);
      dbs.push(again);
      return (await LevelRaftStorage.open(again as unknown as PoolDb)) as unknown as ContractStorage;
    },
  );
  for (const c of cases) await c.run();
  t.pass(`${cases.length} cases`);
});

// ---- equivalence with MemoryStorage under random operations, across reopens -------

function sameStorage(t: ExecutionContext, a: Storage, b: Storage, what: string): void {
  t.is(a.firstIndex(), b.firstIndex(), `${what}: firstIndex`);
  t.is(a.lastIndex(), b.lastIndex(), `${what}: lastIndex`);
  t.deepEqual(a.initialState(), b.initialState(), `${what}: initial state`);
  t.deepEqual(a.snapshot().metadata, b.snapshot().metadata, `${what}: snapshot metadata`);
  t.deepEqual([...a.snapshot().data], [...b.snapshot().data], `${what}: snapshot data`);
  t.is(a.term(a.firstIndex() - 1), b.term(b.firstIndex() - 1), `${what}: boundary term`);
  if (a.lastIndex() >= a.firstIndex()) {
    const ea = a.entries(a.firstIndex(), a.lastIndex() + 1, Infinity);
    const eb = b.entries(b.firstIndex(), b.lastIndex() + 1, Infinity);
    t.deepEqual(
      ea.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString()]),
      eb.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString()]),
      `${what}: entries`,
    );
  }
}

function compactToSnapshot(m: MemoryStorage): void {
  const at = m.snapshot().metadata.index;
  if (at >= m.firstIndex()) m.compact(at);
}

test('random saves, conflicting rewrites, snapshots and compactions: the reopened database equals MemoryStorage', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor((seed / 2147483648) * n); // high bits: an LCG's low bits cycle quickly
  };
  for (let round = 0; round < 12; round++) {
    const db = new MemoryLevel<string, string>() as unknown as PoolDb;
    const model = new MemoryStorage({ bootstrap: ['n1', 'n2', 'n3'] });
    let s = await LevelRaftStorage.open(db, { bootstrap: ['n1', 'n2', 'n3'] });
    let term = 1;
    for (let step = 0; step < 120; step++) {
      const op = rnd(10);
      if (op < 6) {
        // Append, sometimes overwriting a suffix (a new leader's entries).
        term += rnd(4) === 0 ? 1 : 0;
        // Only uncommitted entries are ever rewritten (Raft's guarantee).
        const last = model.lastIndex();
        const commit = model.initialState().hardState.commit;
        const from = Math.max(model.firstIndex(), commit + 1, last + 1 - (rnd(3) === 0 ? rnd(4) : 0));
        const n = 1 + rnd(4);
        const ents = Array.from({ length: n }, (_, k) => ent(from + k, term, `r${round}s${step}k${k}`));
        const hs = { term, vote: 'n1', commit: Math.min(model.initialState().hardState.commit + rnd(3), from + n - 1) };
        model.save({ entries: ents, hardState: hs });
        await s.save({ entries: ents, hardState: hs });
      } else if (op < 8) {
        // Snapshots only of committed (applied) entries.
        const applied = model.initialState().hardState.commit;
        if (applied > model.snapshot().metadata.index) {
          const at = model.snapshot().metadata.index + 1 + rnd(applied - model.snapshot().metadata.index);
          const data = enc.encode(`snap-${round}-${step}`);
          model.createSnapshot(at, CONF, data);
          s.createSnapshot(at, CONF, data);
          const upTo = model.firstIndex() - 1 + rnd(at - model.firstIndex() + 2);
          model.compact(upTo);
          s.compact(upTo);
        }
      } else if (op < 9) {
        // A snapshot from a leader replaces the log.
        term += 1;
        // Possibly behind our (uncommitted, divergent) tail: the whole log is replaced.
        const commit = model.initialState().hardState.commit;
        const index = Math.max(commit + 1, model.snapshot().metadata.index + 1) + rnd(model.lastIndex() - commit + 5);
        const snap = { metadata: { index, term, confState: CONF }, data: enc.encode(`leader-${round}-${step}`) };
        const hs = { term, vote: null, commit: index };
        model.save({ snapshot: snap, entries: [ent(index + 1, term)], hardState: hs });
        await s.save({ snapshot: snap, entries: [ent(index + 1, term)], hardState: hs });
      } else {
        await s.flush();
        s = await LevelRaftStorage.open(db);
        // Reopening starts the log right after the snapshot: entries it covers are compacted.
        compactToSnapshot(model);
        sameStorage(t, s, model, `round ${round} step ${step} (reopened)`);
      }
    }
    sameStorage(t, s, model, `round ${round} end (same process)`);
    await s.flush();
    compactToSnapshot(model);
    sameStorage(t, await LevelRaftStorage.open(db), model, `round ${round} end (reopened)`);
  }
});

// ---- refusing what it cannot read ---------------------------------------------------

test('a database it cannot make sense of is refused with RaftStorageCorrupt, not guessed at', async (t) => {
  const corrupt = async (mutate: (db: PoolDb) => Promise<void>, message: RegExp): Promise<void> => {
    const db = new MemoryLevel<string, string>() as unknown as PoolDb;
    const s = await LevelRaftStorage.open(db, { bootstrap: ['n1'] });
    await s.save({ entries: [ent(2, 2), ent(3, 2), ent(4, 2)], hardState: { term: 2, vote: 'n1', commit: 3 } });
    await mutate(db);
    const err = await t.throwsAsync(LevelRaftStorage.open(db), { instanceOf: RaftStorageCorrupt });
    t.regex(err!.message, message);
  };
  await corrupt((db) => db.del(logKey(3)), /gap: entry 4 follows 2/);
  await corrupt((db) => db.put(RAFT_KEYS.hardState, '{"term":"x"}'), /hard state/);
  await corrupt((db) => db.put(RAFT_KEYS.hardState, 'not json'), /hard state is not JSON/);
  await corrupt((db) => db.del(RAFT_KEYS.snapshot), /must both be present/);
  await corrupt((db) => db.put(logKey(4), Buffer.from([9, 1, 2]) as never, { valueEncoding: 'view' } as never), /entry 4/);
  await corrupt((db) => db.put(logKey(4), encodeEntry(ent(4, 1)) as never, { valueEncoding: 'view' } as never), /term 1 below/);
  await corrupt(async (db) => {
    await db.del(logKey(3));
    await db.del(logKey(4));
    await db.put(RAFT_KEYS.hardState, JSON.stringify({ term: 2, vote: 'n1', commit: 3 }));
  }, /commit index 3 beyond the last entry 2/);
});

test('hard state: the promised lease is kept; a data directory written before the field existed opens with none (0)', async (t) => {
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  const s = await LevelRaftStorage.open(db, { bootstrap: ['n1'] });
  await s.save({ entries: [ent(2, 2)], hardState: { term: 2, vote: 'n1', commit: 2, lease: 918 } });
  t.deepEqual((await LevelRaftStorage.open(db)).initialState().hardState, { term: 2, vote: 'n1', commit: 2, lease: 918 });
  await db.put(RAFT_KEYS.hardState, JSON.stringify({ term: 2, vote: 'n1', commit: 2 }));
  const old = (await LevelRaftStorage.open(db)).initialState().hardState;
  t.is(old.lease ?? 0, 0);
  t.is(old.term, 2);
  await db.put(RAFT_KEYS.hardState, JSON.stringify({ term: 2, vote: 'n1', commit: 2, lease: -1 }));
  await t.throwsAsync(LevelRaftStorage.open(db), { instanceOf: RaftStorageCorrupt, message: /hard state/ });
});

test('entries read back from LevelDB are plain Uint8Arrays (not Buffers), as the core and the transport expect', async (t) => {
  const dir = await tempDir(t);
  const db = new Level<string, string>(dir);
  t.teardown(() => db.close());
  const s = await LevelRaftStorage.open(db as unknown as PoolDb, { bootstrap: ['n1'] });
  await s.save({ entries: [ent(2, 2, 'payload')], hardState: { term: 2, vote: 'n1', commit: 2 } });
  const again = await LevelRaftStorage.open(db as unknown as PoolDb);
  const [e] = again.entries(2, 3, Infinity);
  t.is(Object.getPrototypeOf(e!.data), Uint8Array.prototype);
  t.is(Buffer.from(e!.data).toString(), 'payload');
});

test('shares a database with the pool store: neither touches the other’s keys', async (t) => {
  const dir = await tempDir(t);
  const db = new Level<string, string>(dir);
  t.teardown(() => db.close());
  const raft = await LevelRaftStorage.open(db as unknown as PoolDb, { bootstrap: ['n1'] });
  const pool = await LevelPoolStore.open({ db: db as unknown as PoolDb });
  await pool.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80 });
  await raft.save({ entries: [ent(2, 2)], hardState: { term: 2, vote: 'n1', commit: 2 } });
  const again = await LevelRaftStorage.open(db as unknown as PoolDb);
  t.is(again.lastIndex(), 2);
  t.is(pool.snapshot().servers.length, 1);
});

// ---- kill -9 --------------------------------------------------------------------------

test('acknowledged appends survive kill -9 of the writing process, snapshots and compactions included', async (t) => {
  const dir = await tempDir(t);
  const acked = await runUntilKilled('raft-writer.ts', dir, 80);
  const db = new Level<string, string>(dir);
  t.teardown(() => db.close());
  const s = await LevelRaftStorage.open(db as unknown as PoolDb);
  t.true(s.lastIndex() >= acked, `last index ${s.lastIndex()} >= acknowledged ${acked}`);
  t.true(s.initialState().hardState.commit >= acked, 'hard state saved with the entries');
  const first = s.firstIndex();
  t.true(first > 1, `compacted (first index ${first})`);
  const snap = s.snapshot();
  t.is(Buffer.from(snap.data).toString(), `state-${snap.metadata.index}`);
  for (const e of s.entries(first, acked + 1, Infinity)) t.is(Buffer.from(e.data).toString(), `cmd-${e.index}`);
});

// ---- lazy writes: pool keys and commit-only hard states ride with the next synced write

/** A memory-level database whose batch() calls are counted. */
async function countedStorage(): Promise<{ s: LevelRaftStorage; db: PoolDb; batches: () => number }> {
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  const s = await LevelRaftStorage.open(db, { confState: CONF });
  let n = 0;
  const batch = db.batch.bind(db) as (...a: unknown[]) => Promise<void>;
  (db as unknown as { batch: (...a: unknown[]) => Promise<void> }).batch = (...a: unknown[]) => {
    n++;
    return batch(...a);
  };
  return { s, db, batches: () => n };
}

const poolGet = (db: PoolDb, key: string): Promise<string | undefined> => db.get(key, { keyEncoding: 'utf8', valueEncoding: 'utf8' } as never) as Promise<string | undefined>;

test('lazy writes: pool keys and a commit-only hard state go down with the next synced save, in one batch and in order', async (t) => {
  const { s, db, batches } = await countedStorage();
  await s.save({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'n1', commit: 0 } });
  const before = batches();
  const commit = s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 1 } }, { sync: false });
  const pool = s.write([{ type: 'put', key: 'pool/applied', value: '1' }]);
  await new Promise((r) => setImmediate(r));
  t.is(batches(), before, 'nothing written yet: they wait');
  t.is(await poolGet(db, 'pool/applied'), undefined);
  await s.save({ entries: [ent(2, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } });
  await Promise.all([commit, pool]);
  t.is(batches(), before + 1, 'one batch for the three writes');
  t.is(await poolGet(db, 'pool/applied'), '1');
  t.is(s.initialState().hardState.commit, 1);
  t.is(s.lastIndex(), 2);
});

test('lazy writes: alone, they reach the disk by themselves (LAZY_FLUSH_MS), and flush() writes them at once', async (t) => {
  const { s, db } = await countedStorage();
  const alone = s.write([{ type: 'put', key: 'pool/applied', value: '7' }]);
  await alone; // resolves only once written, with no other write to ride along with
  t.is(await poolGet(db, 'pool/applied'), '7');
  void s.write([{ type: 'put', key: 'pool/applied', value: '8' }]);
  await s.flush();
  t.is(await poolGet(db, 'pool/applied'), '8');
});

test('lazy writes: after kill -9, every acknowledged entry is there and the pool on disk is never ahead of the commit index nor torn', async (t) => {
  const dir = await tempDir(t);
  const acked = await runUntilKilled('raft-lazy-writer.ts', dir, 120);
  const db = new Level<string, string>(dir);
  t.teardown(() => db.close());
  const s = await LevelRaftStorage.open(db as unknown as PoolDb);
  t.true(s.lastIndex() >= acked, `last index ${s.lastIndex()} >= acknowledged ${acked}`);
  const commit = s.initialState().hardState.commit;
  t.true(commit >= acked - 1, `commit ${commit}: at most the last commit-only hard state lost`);
  const applied = Number((await db.get('pool/applied')) ?? '0');
  t.true(applied <= commit, `pool applied ${applied} <= commit ${commit}`);
  t.true(applied > 0, 'lazy writes did reach the disk');
  const keys = await db.keys({ gte: 'pool/x-', lt: 'pool/x.' }).all();
  // The writer's first entry follows the bootstrap entry (index 1).
  t.deepEqual(keys, Array.from({ length: applied - 1 }, (_, i) => `pool/x-${String(i + 2).padStart(8, '0')}`), 'the pool keys are exactly those up to its applied index');
});
