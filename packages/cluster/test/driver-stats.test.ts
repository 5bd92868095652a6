// What the driver counts for /metrics: proposals by outcome, their time to apply on the
// fake clock, and snapshots taken and installed.
import test from 'ava';
import { PROPOSAL_BUCKETS } from '../src/driver.js';
import { encode, RecordingCluster, track } from './harness/recording-cluster.js';

test('proposals are counted by outcome and timed from propose() to applied', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  for (let i = 0; i < 3; i++) {
    const p = leader.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p;
  }
  const refused = track(c.node('n2').driver.propose(encode('not here')));
  await c.deliver();
  t.is(refused.state(), 'rejected', 'a follower refuses');
  const leaderStats = leader.driver.stats().proposals;
  t.like(leaderStats, { applied: 3, failed: 0, pending: 0 });
  // The fake clock did not move while delivering: every write took 0 s.
  t.deepEqual(leaderStats.buckets, PROPOSAL_BUCKETS.map(() => 3));
  t.is(leaderStats.sum, 0);
  t.like(c.node('n2').driver.stats().proposals, { applied: 0, failed: 1, pending: 0 });
});

test('snapshots taken by every member and installed by one that fell behind are counted', async (t) => {
  const c = await RecordingCluster.create({ driver: { snapshotEvery: 5, snapshotKeep: 0 } });
  const leader = await c.elect('n1');
  c.drop((m) => m.to === 'n3' || m.from === 'n3');
  for (let i = 0; i < 12; i++) {
    const p = leader.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p;
  }
  t.true(leader.driver.stats().snapshotsTaken >= 2, `taken: ${leader.driver.stats().snapshotsTaken}`);
  t.is(c.node('n3').driver.stats().snapshotsInstalled, 0);
  c.heal();
  await c.ticks(5);
  t.is(c.node('n3').app.appliedIndex, leader.app.appliedIndex);
  t.true(c.node('n3').driver.stats().snapshotsInstalled >= 1, 'n3 caught up from a snapshot');
});

test('a state large next to its entries is snapshotted once the entries since the last snapshot add up to its size, not every snapshotEvery entries', async (t) => {
  const write = async (c: RecordingCluster, n: number): Promise<void> => {
    const leader = c.node('n1');
    for (let i = 0; i < n; i++) {
      const p = leader.driver.propose(encode('0123456789')); // 10 bytes
      await c.deliver();
      await p;
    }
  };
  for (const ratio of [undefined, 0] as const) {
    const c = await RecordingCluster.create({ driver: { snapshotEvery: 5, snapshotKeep: 0, ...(ratio === undefined ? {} : { snapshotLogRatio: ratio }) } });
    await c.elect('n1');
    for (const n of c.nodes.values()) n.app.snapshotPad = 200;
    const taken = (): number => c.node('n1').driver.stats().snapshotsTaken;
    await write(c, 5);
    const first = taken();
    t.true(first >= 1, 'the first snapshot: the one before was empty');
    await write(c, 15); // 150 bytes since: less than a 200-byte snapshot
    if (ratio === undefined) t.is(taken(), first, 'default: waits for as many bytes of log as the snapshot has');
    else t.true(taken() >= first + 3, `ratio 0: every 5 entries (taken ${taken() - first} more)`);
    await write(c, 10); // 250 bytes since
    t.true(taken() > first, 'taken once the log since is as large as the snapshot');
  }
});
