// The driver stops for good — no zombie — when a write to its storage fails (also one
// made in the background), when the state machine cannot apply, or when a listener
// throws inside the loop: it gives up its role, answers every caller, sends nothing
// more, and reports the failure once through onFatal (issue 8, item 4).
import test from 'ava';
import type { Role } from '@weldr/raft';
import { DriverFailedError, NotLeaderError } from '../src/driver.js';
import { encode, RecordingCluster, track } from './harness/recording-cluster.js';

test('a failed save stops the leader: role given up, the write answered, nothing sent after, onFatal once', async (t) => {
  const c = await RecordingCluster.create();
  const n1 = await c.elect('n1');
  const roles: [Role, string | null][] = [];
  n1.driver.onRoleChange((role, leader) => roles.push([role, leader]));
  const acked = n1.driver.propose(encode('before'));
  await c.deliver();
  await acked;

  n1.storage.failNext = Object.assign(new Error('IO error: 000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' });
  const write = track(n1.driver.propose(encode('during')));
  await c.settle();
  const failedAt = c.events.length;
  t.is(write.state(), 'rejected');
  t.true(write.error() instanceof DriverFailedError, 'the caller is told the outcome is unknown');
  t.deepEqual(
    n1.failures.map((f) => [f.kind, f.error.message]),
    [['storage', 'IO error: 000003.log: No space left on device']],
  );
  t.false(n1.driver.isActive());
  t.deepEqual(roles.at(-1), ['follower', null], 'role listeners hear that the role is gone');

  // Later input changes nothing and nothing leaves n1; later requests are refused as
  // not applied (retryable on another node).
  const after = n1.driver.propose(encode('after'));
  await t.throwsAsync(after, { instanceOf: NotLeaderError, message: /stopped after a fatal failure \(IO error: 000003\.log: No space left on device\)/ });
  await t.throwsAsync(n1.driver.readBarrier(), { instanceOf: NotLeaderError });
  await c.ticks(30);
  t.deepEqual(
    c.events.slice(failedAt).filter((e) => e.node === 'n1' && e.kind !== 'ready'),
    [],
    'n1 persisted, sent or applied something after its failure',
  );
  t.is(n1.failures.length, 1, 'reported once');
  // The others carry on with a new leader.
  t.true(['n2', 'n3'].some((id) => c.node(id).driver.isActive()));
});

test('a failed background write (snapshot or compaction) stops the driver without waiting for the next save', async (t) => {
  const c = await RecordingCluster.create({ driver: { snapshotEvery: 3, snapshotKeep: 0 } });
  const n1 = await c.elect('n1');
  n1.storage.failNext = new Error('IO error: read-only file system');
  // Writes until the snapshot's background write fails.
  for (let i = 0; i < 4 && n1.failures.length === 0; i++) {
    const p = n1.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p.catch(() => undefined);
  }
  t.deepEqual(
    n1.failures.map((f) => f.kind),
    ['storage'],
  );
  t.false(n1.driver.isActive());
});

test('a state machine that cannot apply stops the driver (kind apply)', async (t) => {
  const c = await RecordingCluster.create();
  const n1 = await c.elect('n1');
  c.node('n2').app.failNext = new Error('IO error: pool write failed');
  const p = n1.driver.propose(encode('x'));
  await c.deliver();
  await p;
  t.deepEqual(
    c.node('n2').failures.map((f) => [f.kind, f.error.message]),
    [['apply', 'IO error: pool write failed']],
  );
  t.deepEqual(c.node('n1').failures, []);
});

test('a role listener that throws inside the loop stops the driver (kind listener); the other listeners still hear the role go', async (t) => {
  const c = await RecordingCluster.create();
  const n2 = c.node('n2');
  const heard: [Role, string | null][] = [];
  n2.driver.onRoleChange(() => {
    throw new Error('listener bug');
  });
  n2.driver.onRoleChange((role, leader) => heard.push([role, leader]));
  await c.elect('n1');
  t.deepEqual(
    n2.failures.map((f) => [f.kind, f.error.message]),
    [['listener', 'listener bug']],
  );
  t.deepEqual(heard.at(-1), ['follower', null]);
  // Refused, and honestly: the request never reached the core.
  await t.throwsAsync(n2.driver.readBarrier(), { instanceOf: NotLeaderError, message: /fatal failure \(listener bug\)/ });
  t.true(c.node('n1').driver.isActive(), 'the rest of the cluster is unaffected');
});

test('requests queued behind the failed write are refused as not applied', async (t) => {
  const c = await RecordingCluster.create();
  const n1 = await c.elect('n1');
  n1.storage.gate.close();
  const inFlight = track(n1.driver.propose(encode('in flight')));
  await c.settle();
  const queued = track(n1.driver.propose(encode('queued')));
  n1.storage.failNext = new Error('IO error: disk gone');
  n1.storage.gate.open();
  await c.settle();
  t.true(inFlight.error() instanceof DriverFailedError, 'the write being saved: outcome unknown');
  t.true(queued.error() instanceof NotLeaderError, 'the queued write never reached the log: retryable elsewhere');
});
