// The driver's half of the Ready contract, on a deterministic cluster (fake clock,
// recording storage and network; test/harness/recording-cluster.ts):
//
//   a message that promises durable state (an acknowledgement, a vote, a lease echo) never
//   leaves before the write it promises; the leader's appends may leave before its own
//   write (thesis §10.2.1) but never carry a commit index a majority has not written;
//   nothing is applied before a majority has it on disk; a ReadIndex read on a lagging
//   follower waits for its index to be applied; isActive() counts every tick owed to the
//   clock, also while a disk write is in flight; a proposal whose index another leader's
//   entry took is reported lost.
//
// Each of these was a hand-put bug that no fast test caught (issue 8, item 10).
import test from 'ava';
import { leaseTicks, mayPrecedePersistence, type Message } from '@weldr/raft';
import { ProposalLostError } from '../src/driver.js';
import { ELECTION_TICK, encode, RecordingCluster, TICK_MS, track, type RecordedEvent } from './harness/recording-cluster.js';

/**
 * Replays the event log against what each node had on disk at each moment: messages that
 * announce durable state must not run ahead of their sender's disk, commit indexes and
 * applies must not run ahead of a majority's. Returns how many messages it checked.
 */
function checkAgainstDisk(t: import('ava').ExecutionContext, events: readonly RecordedEvent[], ids: readonly string[]): number {
  const disk = new Map<string, { lastIndex: number; term: number; vote: string | null }>();
  for (const id of ids) disk.set(id, { lastIndex: 3, term: 1, vote: null });
  /** The highest index at least a majority of the nodes hold on disk (no conflicting logs in these runs). */
  const majorityDurable = (): number => {
    const last = ids.map((id) => disk.get(id)!.lastIndex).sort((a, b) => b - a);
    return last[Math.floor(ids.length / 2)]!;
  };
  let checked = 0;
  for (const e of events) {
    if (e.kind === 'persist') disk.set(e.node, { lastIndex: e.lastIndex, term: e.term, vote: e.vote });
    if (e.kind === 'apply') t.true(e.last <= majorityDurable(), `${e.node} applied up to ${e.last} with only ${majorityDurable()} on a majority's disks`);
    if (e.kind !== 'send') continue;
    const d = disk.get(e.node)!;
    for (const m of e.messages) {
      // Pre-votes carry a term the sender has not adopted (thesis §9.6): nothing to persist.
      if (m.type === 'MsgPreVote' || m.type === 'MsgPreVoteResp') continue;
      checked++;
      t.true(m.term <= d.term, `${m.from} sent ${m.type} at term ${m.term} with term ${d.term} on disk`);
      if (mayPrecedePersistence(m)) {
        // The leader's own copy counts for a commit only once written (Raft.persisted).
        if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat') t.true(m.commit <= majorityDurable(), `${m.from} sent commit ${m.commit} with ${majorityDurable()} on a majority's disks`);
        continue;
      }
      const last = m.entries?.at(-1)?.index;
      if (last !== undefined) t.true(last <= d.lastIndex, `${m.from} sent entries up to ${last} with ${d.lastIndex} on disk`);
      if (m.type === 'MsgAppResp' && !m.reject) t.true(m.index <= d.lastIndex, `${m.from} acknowledged ${m.index} with ${d.lastIndex} on disk`);
      if (m.type === 'MsgVoteResp' && !m.reject) t.is(d.vote, m.to, `${m.from} granted its vote to ${m.to} before persisting it`);
    }
  }
  return checked;
}

test('no message runs ahead of the disk it promises, the leader\'s appends leave before its own write, nothing is applied before a majority wrote it', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  for (let i = 0; i < 5; i++) {
    const p = leader.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p;
  }
  // A lagging follower catches up, a read on it goes through the leader.
  c.drop((m) => m.to === 'n3' && m.type === 'MsgApp');
  for (let i = 0; i < 3; i++) {
    const p = leader.driver.propose(encode(`x${i}`));
    await c.deliver();
    await p;
  }
  c.heal();
  const read = c.node('n3').driver.readBarrier();
  await c.ticks(2);
  await read;

  // Within one Ready: a message that must wait for the write comes after it; the
  // leader's appends come before it (sent as the write starts).
  let readies = 0;
  let early = 0;
  for (const id of c.ids) {
    let persisted = false;
    let readyPersists = false;
    const mine = c.events.filter((x) => x.node === id);
    for (let i = 0; i < mine.length; i++) {
      const e = mine[i]!;
      if (e.kind === 'ready') {
        readies++;
        persisted = false;
        // Does this Ready write anything? (a persist before the next ready)
        readyPersists = false;
        for (let j = i + 1; j < mine.length && mine[j]!.kind !== 'ready'; j++) if (mine[j]!.kind === 'persist') readyPersists = true;
        continue;
      }
      if (e.kind === 'persist') persisted = true;
      if (e.kind !== 'send' || !readyPersists || persisted) continue;
      for (const m of e.messages) {
        t.true(mayPrecedePersistence(m), `${id}: ${m.type} sent before its Ready was written`);
        if (m.type === 'MsgApp' && (m.entries?.length ?? 0) > 0) early++;
      }
    }
  }
  const checked = checkAgainstDisk(t, c.events, c.ids);
  t.true(readies > 20 && checked > 50, `the run exercised the contract (${readies} Readies, ${checked} messages)`);
  t.true(early >= 8, `the leader sent ${early} appends before writing them itself`);
  for (const id of c.ids) t.is(c.node(id).app.appliedIndex, leader.app.appliedIndex);
});

test('a ReadIndex read on a lagging follower is released only once its index is applied there', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  // n3 stops receiving the log (appends and snapshots), but still hears heartbeats and
  // answers to its read requests: it learns a read index it has not reached.
  c.drop((m) => m.to === 'n3' && (m.type === 'MsgApp' || m.type === 'MsgSnap'));
  for (let i = 0; i < 4; i++) {
    const p = leader.driver.propose(encode(`w${i}`));
    await c.deliver();
    await p;
  }
  const n3 = c.node('n3');
  const target = leader.app.appliedIndex;
  t.true(n3.app.appliedIndex < target, 'n3 lags');
  const read = track(n3.driver.readBarrier());
  await c.deliver();
  await c.ticks(3);
  const resp = c.events.some((e) => e.kind === 'send' && e.messages.some((m: Message) => m.type === 'MsgReadIndexResp' && m.to === 'n3'));
  t.true(resp, 'the leader answered the read index');
  t.is(read.state(), 'pending', `released with applied ${n3.app.appliedIndex} < read index ${target}: a stale read`);

  c.heal();
  await c.ticks(3);
  t.is(read.state(), 'resolved');
  t.true(n3.app.appliedIndex >= target);
});

test('isActive() counts the ticks owed to the clock: a leader whose timer did not fire is not active past its lease', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  t.true(leader.driver.isActive());
  // No tick(), no message: only the clock moves, past the lease (at most E ticks).
  c.clock += (ELECTION_TICK + 1) * TICK_MS;
  t.false(leader.driver.isActive(), 'the lease is judged against a stale tick count');
});

test('isActive() counts owed ticks while a disk write is in flight too', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  leader.storage.gate.close();
  const p = track(leader.driver.propose(encode('held')));
  await c.settle();
  t.is(leader.storage.gate.held, 1, 'the leader waits on its disk');
  t.true(leader.driver.isActive(), 'still within the lease');
  c.clock += (leaseTicks(ELECTION_TICK, 0.1) + 1) * TICK_MS;
  t.false(leader.driver.isActive(), 'a leader stuck on its disk past its lease is not active');
  leader.storage.gate.open();
  await c.deliver();
  t.not(p.state(), 'pending');
});

test('a proposal whose index another leader filled is rejected as lost, never acknowledged with the other entry', async (t) => {
  const c = await RecordingCluster.create();
  const n1 = await c.elect('n1');
  const first = n1.driver.propose(encode('before'));
  await c.deliver();
  await first;
  // Cut n1 off, then let it accept a proposal nobody else will see.
  c.drop((m) => m.from === 'n1' || m.to === 'n1');
  const lost = track(n1.driver.propose(encode('orphan')));
  await c.deliver();
  const orphanIndex = n1.storage.lastIndex();
  // n2 (or n3) is elected in a later term and commits its own entry at that index.
  let newLeader = null;
  for (let i = 0; i < 20 * ELECTION_TICK && newLeader === null; i++) {
    await c.ticks(1);
    newLeader = ['n2', 'n3'].map((id) => c.node(id)).find((n) => n.driver.isActive()) ?? null;
  }
  t.truthy(newLeader, 'another leader was elected');
  const theirs = newLeader!.driver.propose(encode('theirs'));
  await c.deliver();
  await theirs;
  t.true(newLeader!.storage.lastIndex() >= orphanIndex);
  // n1 comes back, its entry is overwritten, and it applies the new leader's entry there.
  c.heal();
  await c.ticks(3);
  t.true(n1.app.appliedIndex >= orphanIndex);
  t.is(lost.state(), 'rejected', `resolved with ${String(lost.value()?.result)}`);
  t.true(lost.error() instanceof ProposalLostError);
});

test('a write answered on the leader is answered before the commit notices leave (they wake the followers); the notices still go, in order', async (t) => {
  const c = await RecordingCluster.create();
  const leader = await c.elect('n1');
  const notices = (index: number): Message[] =>
    c.events.flatMap((e) => (e.kind === 'send' && e.node === 'n1' ? e.messages.filter((m) => m.type === 'MsgApp' && (m.entries?.length ?? 0) === 0 && m.commit >= index) : []));
  for (let i = 0; i < 3; i++) {
    let sentWhenAnswered = -1;
    const p = leader.driver.propose(encode(`w${i}`)).then((r) => {
      sentWhenAnswered = notices(r.index).length;
      return r;
    });
    await c.deliver();
    const { index } = await p;
    t.is(sentWhenAnswered, 0, `write ${index}: answered before any notice of its commit was sent`);
    t.is(notices(index).length, 2, `write ${index}: one notice per follower, sent once the answer was out`);
    // The followers learn the commit and apply it.
    for (const id of ['n2', 'n3']) t.true(c.node(id).app.appliedIndex >= index, `${id} applied ${index}`);
  }
  // Per peer, the core's order: a commit notice never overtakes an append sent after it.
  for (const id of ['n2', 'n3']) {
    let lastIndex = 0;
    for (const e of c.events) {
      if (e.kind !== 'send' || e.node !== 'n1') continue;
      for (const m of e.messages) {
        if (m.to !== id || m.type !== 'MsgApp') continue;
        t.true(m.index >= lastIndex, `to ${id}: append at ${m.index} after one at ${lastIndex}`);
        lastIndex = m.index;
      }
    }
  }
});
