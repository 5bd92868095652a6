// PoolReplica: the replicated state machine as the driver sees it.
import test from 'ava';
import { MemoryLevel } from 'memory-level';
import { advanceIndex, fullStateOps, initialState, loadState, UTF8, type PoolDb } from '@weldr/store';
import { PoolReplica } from '../src/raft-pool-store.js';

test('a state written before member records (a cluster upgraded in place) adopts the Raft configuration as records, once', async (t) => {
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  let state = initialState();
  for (let i = 1; i <= 5; i++) state = advanceIndex(state, i);
  await db.batch(fullStateOps(state), UTF8 as never);
  const replica = await PoolReplica.open(db);
  t.true(await replica.adoptConfiguration({ voters: ['n1', 'n2'], learners: ['n3'] }));
  t.deepEqual([...replica.current.cluster.members.values()].map((m) => `${m.id}:${m.role}`), ['n1:voter', 'n2:voter', 'n3:learner']);
  t.is(replica.appliedIndex, 5, 'the applied index does not move');
  t.false(await replica.adoptConfiguration({ voters: ['n9'], learners: [] }), 'only once: records exist now');
  t.is((await loadState(db))?.cluster.members.size, 3, 'durable');
});
