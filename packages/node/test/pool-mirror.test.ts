// Workers get the pool as what changed (pool-mirror.ts): the mirror a worker keeps must
// equal the node's snapshot after every command, and tell its proxy only what changed.
import test from 'ava';
import { MemoryPoolStore, type PoolSnapshot } from '@weldr/store';
import { PoolMirror, poolMessage } from '../src/workers/pool-mirror.js';

const shape = (s: PoolSnapshot) => ({ index: s.index, settings: s.settings, servers: s.servers.map((r) => ({ ...r })) });

test('a mirror fed deltas equals the store after every command; a delta carries only the change', async (t) => {
  const store = new MemoryPoolStore();
  for (let port = 1; port <= 50; port++) await store.propose({ type: 'AddServer', ip: '10.0.0.1', port });
  let sent = store.snapshot();
  const first = poolMessage(null, sent);
  t.is(first.type, 'snapshot', 'the first message is the whole pool');
  const mirror = new PoolMirror(first.type === 'snapshot' ? first.snapshot : (undefined as never));
  // Seeded sequence of adds, removes, updates and a settings change.
  const seen = { delta: 0, settings: 0, update: 0 };
  let seed = 7;
  const rnd = (n: number): number => Math.floor(((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * n);
  for (let i = 0; i < 200; i++) {
    const port = 1 + rnd(80);
    const kind = rnd(4);
    try {
      if (kind === 0) await store.propose({ type: 'AddServer', ip: '10.0.0.1', port });
      else if (kind === 1) await store.propose({ type: 'RemoveServer', ip: '10.0.0.1', port });
      else if (kind === 2) await store.propose({ type: 'UpdateServer', ip: '10.0.0.1', port, weight: 1 + rnd(9) });
      else await store.propose({ type: 'UpdateSettings', balancer: rnd(2) === 0 ? 'round-robin' : 'least-connections' });
    } catch {
      continue; // refused (no such server, already there): nothing changed
    }
    const next = store.snapshot();
    const m = poolMessage(sent, next);
    const before = mirror.current;
    const got = m.type === 'pool-delta' ? mirror.apply(m) : mirror.reset(m.snapshot);
    t.deepEqual(shape(got), shape(next), `after command ${i}`);
    if (m.type === 'pool-delta') {
      seen.delta++;
      if (m.settings !== undefined) seen.settings++;
      if (kind === 2) seen.update++;
      t.true(m.changes.length <= 1, 'one command changes at most one server');
      t.deepEqual(got.changesSince?.(before)?.map((c) => c.id), m.changes.map((c) => c.id));
      t.is(got.changesSince?.(got), undefined, 'only the previous snapshot is known');
      if (m.settings === undefined) t.is(got.settings, before.settings, 'unchanged settings stay the same object');
    }
    sent = next;
  }
  t.true(seen.delta > 100 && seen.settings > 0 && seen.update > 0, `deltas of every kind were sent: ${JSON.stringify(seen)}`);
});

test('a delta from an older snapshot applied to a newer mirror (a worker started meanwhile) ends in the same state', async (t) => {
  const store = new MemoryPoolStore();
  await store.propose({ type: 'AddServer', ip: '10.0.0.2', port: 1 });
  const old = store.snapshot();
  await store.propose({ type: 'AddServer', ip: '10.0.0.2', port: 2 });
  const mid = store.snapshot();
  await store.propose({ type: 'RemoveServer', ip: '10.0.0.2', port: 1 });
  await store.propose({ type: 'AddServer', ip: '10.0.0.2', port: 3 });
  const now = store.snapshot();
  const mirror = new PoolMirror({ index: mid.index, servers: mid.servers, settings: mid.settings });
  const m = poolMessage(old, now);
  t.is(m.type, 'pool-delta');
  if (m.type === 'pool-delta') t.deepEqual(shape(mirror.apply(m)), shape(now));
});
