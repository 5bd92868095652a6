// RaftCluster.open on a member's data directory: the marker's progress record and the
// structural invariants of the Raft log and the pool refuse a directory that lost
// writes, instead of letting the member vote and acknowledge with it (issue 8, item 5).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { DataDirRefusedError, fullStateOps, initialState, logKey, readMarker, UTF8, type PoolDb } from '@weldr/store';
import { RaftCluster } from '../src/raft-cluster.js';
import type { RaftClusterOptions } from '../src/types.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

async function options(t: ExecutionContext): Promise<RaftClusterOptions> {
  const dir = await mkdtemp(join(tmpdir(), 'weldr-member-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return {
    id: 'n1',
    data: join(dir, 'n1'),
    raft: { host: '127.0.0.1', port: 0 },
    peers: [
      { id: 'n2', address: { host: '127.0.0.1', port: 9 } },
      { id: 'n3', address: { host: '127.0.0.1', port: 9 } },
    ],
    heartbeatMs: 50,
    electionTimeoutMs: 500,
  };
}

/** Change the member's database while it is stopped. */
async function tamper(data: string, fn: (db: PoolDb) => Promise<void>): Promise<void> {
  const db = new Level<string, string>(data) as unknown as PoolDb;
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

test('a clean stop records the member’s progress in the marker; the next open checks it', async (t) => {
  const config = await options(t);
  const first = await RaftCluster.open(config, silent);
  await first.stop();
  t.like(await readMarker(config.data), { nodeId: 'n1', progress: { clean: true, appliedIndex: 0, commitIndex: 3, lastIndex: 3 } });
  const again = await RaftCluster.open(config, silent);
  t.like(await readMarker(config.data), { progress: { clean: false, commitIndex: 3, lastIndex: 3 } });
  await again.stop();
});

test('Raft log entries removed while the member was stopped: refused (it would vote with a shorter log)', async (t) => {
  const config = await options(t);
  await (await RaftCluster.open(config, silent)).stop();
  // The bootstrap log is 1..3; drop the last entry and the hard state's claim with it.
  await tamper(config.data, async (db) => {
    await db.batch([{ type: 'del', key: logKey(3) } as never, { type: 'put', key: 'raft/hardstate', value: '{"term":1,"vote":null,"commit":2}', ...UTF8 } as never]);
  });
  const err = await t.throwsAsync(RaftCluster.open(config, silent), { instanceOf: DataDirRefusedError });
  t.is(err?.reason, 'damaged');
  t.regex(err!.message, /its Raft commit index is 2, but it was 3 when weldr stopped cleanly/);
});

test('a pool applied beyond the Raft commit index: refused', async (t) => {
  const config = await options(t);
  await (await RaftCluster.open(config, silent)).stop();
  await tamper(config.data, async (db) => {
    await db.batch(fullStateOps({ ...initialState(), appliedIndex: 10 }) as never, UTF8 as never);
  });
  const err = await t.throwsAsync(RaftCluster.open(config, silent), { instanceOf: DataDirRefusedError });
  t.regex(err!.message, /its pool is applied up to index 10, beyond the Raft commit index 3: the Raft log lost writes/);
});

test('a member directory opened under another id: refused', async (t) => {
  const config = await options(t);
  await (await RaftCluster.open(config, silent)).stop();
  const err = await t.throwsAsync(RaftCluster.open({ ...config, id: 'n2' }, silent), { instanceOf: DataDirRefusedError });
  t.is(err?.reason, 'other-node');
});
