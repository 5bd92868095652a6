// The driver's queues are bounded (issue 8, item 7): requests waiting behind a slow disk
// write, peer messages likewise, and linearizable reads in flight. The excess fails at
// once with a retryable OverloadedError (or, for peer messages, is dropped — Raft
// tolerates loss) and is counted; a read that has its index but cannot reach it expires.
import test from 'ava';
import { NotLeaderError, OverloadedError } from '../src/driver.js';
import { encode, RecordingCluster, TICK_MS, track } from './harness/recording-cluster.js';

test('proposals beyond maxQueuedRequests during a stalled fsync fail at once with OverloadedError; the rest commit', async (t) => {
  const c = await RecordingCluster.create({ driver: { maxQueuedRequests: 4 } });
  const n1 = await c.elect('n1');
  n1.storage.gate.close();
  const first = track(n1.driver.propose(encode('in flight')));
  await c.settle();
  const queued = Array.from({ length: 10 }, (_, i) => track(n1.driver.propose(encode(`q${i}`))));
  await c.settle();
  t.deepEqual(
    queued.map((q) => q.state()),
    [...Array(4).fill('pending'), ...Array(6).fill('rejected')],
  );
  t.true(queued.slice(4).every((q) => q.error() instanceof OverloadedError));
  t.is(n1.driver.stats().proposalsRejected, 6);
  t.is(n1.driver.stats().queued, 4);
  n1.storage.gate.open();
  await c.deliver();
  t.is(first.state(), 'resolved');
  t.true(queued.slice(0, 4).every((q) => q.state() === 'resolved'));
  t.is(n1.driver.stats().queued, 0);
});

test('peer messages beyond maxQueuedMessages are dropped and counted', async (t) => {
  const c = await RecordingCluster.create({ driver: { maxQueuedMessages: 3 } });
  const n1 = await c.elect('n1');
  const n2 = c.node('n2');
  n2.storage.gate.close();
  const p = n1.driver.propose(encode('x')); // n2 starts saving it and stalls
  await c.deliver();
  t.is(n2.storage.gate.held, 1);
  const heartbeat = { type: 'MsgHeartbeat', from: 'n1', to: 'n2', term: n1.driver.node.term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0 } as const;
  const room = 3 - n2.driver.stats().queued;
  for (let i = 0; i < 10; i++) n2.driver.receive(heartbeat);
  t.is(n2.driver.stats().messagesDropped, 10 - room);
  t.is(n2.driver.stats().queued, 3);
  n2.storage.gate.open();
  await c.deliver();
  await p;
  t.deepEqual(n2.failures, []);
});

test('a read that has its index but cannot apply it expires after readTimeoutMs; a leader change does not fail it early', async (t) => {
  const c = await RecordingCluster.create({ driver: { readTimeoutMs: 5000 } });
  const n1 = await c.elect('n1');
  const lagging = (m: { to: string; type: string }): boolean => m.to === 'n3' && (m.type === 'MsgApp' || m.type === 'MsgSnap');
  c.drop(lagging);
  for (let i = 0; i < 3; i++) {
    const p = n1.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p;
  }
  const n3 = c.node('n3');
  const read = track(n3.driver.readBarrier());
  await c.ticks(2);
  t.is(read.state(), 'pending', 'index known, not applied');
  t.is(n3.driver.stats().pendingReads, 1);
  // The leader goes away and n2 takes over: the read's index is still a valid
  // linearization point, so the read keeps waiting for it…
  const startedAt = c.clock;
  c.drop((m) => lagging(m) || m.from === 'n1' || m.to === 'n1');
  // (n2 cannot commit without n3, which still gets no appends: it leads, but is not active.)
  for (let i = 0; i < 60 && c.node('n2').driver.node.role !== 'leader'; i++) await c.ticks(1);
  await c.ticks(2); // n3 hears n2's heartbeats
  t.is(n3.driver.node.leader, 'n2');
  t.is(read.state(), 'pending', 'a read with its index is not failed by a leader change');
  t.true(c.clock - startedAt < 4000);
  // …until its deadline: then it fails, retryable, and the map is empty again.
  await c.ticks((5000 - (c.clock - startedAt)) / TICK_MS + 2);
  t.is(read.state(), 'rejected');
  t.true(read.error() instanceof NotLeaderError);
  t.is(n3.driver.stats().readsExpired, 1);
  t.is(n3.driver.stats().pendingReads, 0);
});

test('linearizable reads beyond maxPendingReads are refused with OverloadedError and counted', async (t) => {
  const c = await RecordingCluster.create({ driver: { maxPendingReads: 2 } });
  await c.elect('n1');
  // The leader never answers n2's read requests.
  c.drop((m) => m.type === 'MsgReadIndex' || m.type === 'MsgReadIndexResp');
  const n2 = c.node('n2');
  const reads = Array.from({ length: 4 }, () => track(n2.driver.readBarrier()));
  await c.deliver();
  t.deepEqual(
    reads.map((r) => r.state()),
    ['pending', 'pending', 'rejected', 'rejected'],
  );
  t.true(reads[2]!.error() instanceof OverloadedError);
  t.is(n2.driver.stats().readsRejected, 2);
});

test('bounds must be positive integers', async (t) => {
  await t.throwsAsync(RecordingCluster.create({ driver: { maxQueuedRequests: 0 } }), { message: /maxQueuedRequests must be a positive integer/ });
  await t.throwsAsync(RecordingCluster.create({ driver: { readTimeoutMs: Number.NaN } }), { message: /readTimeoutMs/ });
});
