// ServerTable and the HashTrie under it, against a plain sorted Map as the model:
// random adds, updates, removes and re-adds; every version keeps its contents, order
// and size, and the difference between any two versions is exactly what changed.
import test from 'ava';
import { compareServers, ServerTable, type ServerRecord } from '../src/index.js';
import { HashTrie, hashKey } from '../src/pool/hash-trie.js';
import { seededRandom as rng } from '../src/testing/index.js';

function record(id: string, createdIndex: number, updatedIndex = createdIndex, weight = 1): ServerRecord {
  return Object.freeze({ id, ip: '10.0.0.1', port: 1, weight, healthCheck: {}, draining: false, createdIndex, updatedIndex });
}

function modelList(model: Map<string, ServerRecord>): ServerRecord[] {
  return [...model.values()].sort(compareServers);
}

test('random writes: every version matches the model in content, canonical order and size', (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    let table = ServerTable.EMPTY;
    const model = new Map<string, ServerRecord>();
    const versions: { table: ServerTable; model: Map<string, ServerRecord> }[] = [];
    // Few distinct ids so removes and re-adds hit existing ones; many writes so leaves split and merge.
    const ids = Array.from({ length: 400 }, (_, i) => `s${i}`);
    for (let index = 1; index <= 4000; index++) {
      const id = ids[Math.floor(r() * ids.length)]!;
      const old = model.get(id);
      const p = r();
      if (old === undefined || p < 0.15) {
        // Add, or remove-and-add-again (a new createdIndex: moves last).
        const rec = record(id, index);
        table = table.with(rec);
        model.set(id, rec);
      } else if (p < 0.55) {
        table = table.without(id);
        model.delete(id);
      } else {
        const rec = record(id, old.createdIndex, index, old.weight + 1);
        table = table.with(rec);
        model.set(id, rec);
      }
      if (index % 97 === 0) versions.push({ table, model: new Map(model) });
    }
    for (const v of versions) {
      const expected = modelList(v.model);
      t.deepEqual([...v.table.values()], expected, `seed ${seed}: contents and order`);
      t.is(v.table.size, expected.length);
      t.deepEqual(v.table.list(), expected);
      for (const rec of expected) t.is(v.table.get(rec.id), rec);
    }
    // Differences between versions are exactly the records that differ.
    for (let i = 1; i < versions.length; i += 3) {
      const a = versions[i - 1]!;
      const b = versions[i]!;
      const expected = new Map<string, [ServerRecord | undefined, ServerRecord | undefined]>();
      for (const id of new Set([...a.model.keys(), ...b.model.keys()])) {
        if (a.model.get(id) !== b.model.get(id)) expected.set(id, [a.model.get(id), b.model.get(id)]);
      }
      const got = b.table.changesSince(a.table);
      t.is(got.length, expected.size, `seed ${seed}: ${got.length} changes, expected ${expected.size}`);
      for (const c of got) t.deepEqual([c.before, c.after], expected.get(c.id));
    }
  }
});

test('from() needs canonical order; with() of the same record is a no-op; without() of an absent id too', (t) => {
  const a = record('a', 1);
  const b = record('b', 2);
  t.throws(() => ServerTable.from([b, a]), { message: /canonical order/ });
  const table = ServerTable.from([a, b]);
  t.is(table.with(a), table);
  t.is(table.without('zz'), table);
  t.deepEqual([...table.keys()], ['a', 'b']);
  t.deepEqual([...table].map(([id]) => id), ['a', 'b']);
  t.deepEqual(table.changesSince(table), []);
  // A table built from the same records independently still diffs correctly (no shared nodes).
  t.deepEqual(ServerTable.from([a, b]).changesSince(ServerTable.from([a])), [{ id: 'b', before: undefined, after: b }]);
});

test('a write copies a bounded part of the table: 100 writes on 10,000 servers touch a few nodes each', (t) => {
  let table = ServerTable.from(Array.from({ length: 10_000 }, (_, i) => record(`s${String(i).padStart(5, '0')}`, i + 1)));
  const before = table;
  for (let i = 0; i < 100; i++) table = table.with(record(`new${i}`, 20_000 + i));
  const changes = table.changesSince(before);
  t.is(changes.length, 100, 'the diff finds only the new records');
  t.is(table.size, 10_100);
  t.is(table.get('s00042'), before.get('s00042'), 'untouched records are shared');
});

test('hash trie: colliding keys share a bucket and survive deletes; the root stays usable', (t) => {
  // Find two keys with the same 32-bit hash by brute force over a small alphabet.
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; pair === undefined && i < 2_000_000; i++) {
    const k = `k${i}`;
    const h = hashKey(k);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, k];
    else seen.set(h, k);
  }
  if (pair === undefined) throw new Error('no 32-bit collision among 2,000,000 keys: the hash is broken');
  let trie = HashTrie.empty<number>().set(pair[0], 1).set(pair[1], 2).set('x', 3);
  t.is(trie.size, 3);
  t.is(trie.get(pair[0]), 1);
  t.is(trie.get(pair[1]), 2);
  trie = trie.delete(pair[0]);
  t.is(trie.get(pair[0]), undefined);
  t.is(trie.get(pair[1]), 2);
  t.is(trie.size, 2);
  trie = trie.delete(pair[1]).delete('x');
  t.is(trie.size, 0);
  t.is(trie.set('y', 4).get('y'), 4);
});
