// Issue 8 item 1: two servers must never hold a lease at once, whatever each
// member's election timeout and tick length (--raft-election-timeout and
// --raft-heartbeat may differ per member, e.g. during a rolling change). The
// lease rests on the promise each follower made for the leader's round, not on
// the follower sharing the leader's flags.
import test from 'ava';
import { leaseMs, leaseTicks, RawNode, type Message } from '../src/index.js';
import { MemoryStorage } from '../src/testing/index.js';
import type { RaftOptions } from './sim/cluster.js';
import { TimedCluster } from './timed.js';

const ONE_SECOND: RaftOptions = { electionTick: 20, tickMs: 50 }; // --raft-election-timeout 1s, --raft-heartbeat 50ms
const HALF_SECOND: RaftOptions = { electionTick: 10, tickMs: 50 }; // 500ms / 50ms

interface Outcome {
  overlaps: number[];
  /** When n1 lost its lease, and when another server first held one (real time). */
  leaseEnd: number;
  nextLease: number;
  cutAt: number;
}

/**
 * n1 leads with `leader` timers; n2 and n3 run `followers` (n3 times out at
 * exactly its E, n2 later). Right after a round n2 and n3 acknowledged, n1 is
 * cut off from both; with `restartFollowers`, n2 and n3 are restarted at that
 * moment as well (a hasty rolling change: their restart windows alone carry
 * n1's lease).
 */
function cutOffAfterRound(o: {
  leader: RaftOptions;
  followers: RaftOptions;
  /** Timers n2 and n3 start with before switching to `followers`. */
  before?: RaftOptions;
  periods?: { leader: number; followers: number };
  restartFollowers?: boolean;
}): Outcome {
  const before = o.before ?? o.leader;
  const c = new TimedCluster({
    voters: ['n1', 'n2', 'n3'],
    raft: { heartbeatTick: 1, maxClockDrift: 0.1 },
    own: { n1: o.leader, n2: before, n3: before },
    random: { n1: 0, n2: 0.99, n3: 0.99 },
  });
  if (!c.stepUntil(() => c.node('n1').node.hasLease())) throw new Error('n1 was not elected');
  const fp = o.periods?.followers;
  if (!o.restartFollowers) {
    // The rolling change reached n2 and n3 (restarted with new flags) while n1 kept leading.
    c.node('n3').random.next = () => 0;
    c.restart('n2', o.followers, fp);
    c.restart('n3', o.followers, fp);
  } else {
    c.node('n3').random.next = () => 0;
  }
  if (o.periods !== undefined) c.node('n1').period = o.periods.leader;
  c.runUntil(c.now + 3000); // steady state: n1 leads, n2 and n3 acknowledge every round
  if (c.leaders().join() !== 'n1' || !c.node('n1').node.hasLease()) throw new Error('n1 lost its lease in steady state');
  // n1's next tick sends round q; n2 and n3 acknowledge it within 2 time units.
  const n1 = c.node('n1');
  const tq = n1.nextTick;
  c.runUntil(tq + 2.5);
  const q = n1.node.currentTick();
  if (n1.node.leaseValidUntil() !== q + leaseTicks(o.leader.electionTick!, 0.1)) throw new Error(`round ${q} was not acknowledged: lease until ${n1.node.leaseValidUntil()}`);
  if (o.restartFollowers) {
    c.restart('n2', o.followers, fp);
    c.restart('n3', o.followers, fp);
  }
  c.isolate('n1');
  const cutAt = c.now;
  let leaseEnd = -1;
  let nextLease = -1;
  while (c.now < cutAt + 20_000 && nextLease < 0) {
    c.step();
    if (leaseEnd < 0 && !n1.node.hasLease()) leaseEnd = c.now;
    if (['n2', 'n3'].some((id) => c.node(id).node.hasLease())) nextLease = c.now;
  }
  return { overlaps: c.overlaps, leaseEnd, nextLease, cutAt };
}

function check(t: import('ava').ExecutionContext, r: Outcome): void {
  t.log(`n1's lease ended ${r.leaseEnd - r.cutAt} after the cut, the next began ${r.nextLease - r.cutAt} after it`);
  t.true(r.nextLease > 0, 'n2 or n3 took over with a lease');
  t.deepEqual(r.overlaps, [], 'two leases at once');
  t.true(r.leaseEnd > 0 && r.leaseEnd < r.nextLease);
}

test('1 s leader, 500 ms followers (the issue): the followers wait out the lease n1 stated, not their own timeout', (t) => {
  // Before the fix n3 was elected ~500 ms after the round while n1 trusted its
  // lease for 750 ms: both held one for ~250 ms.
  check(t, cutOffAfterRound({ leader: ONE_SECOND, followers: HALF_SECOND }));
});

test('same election timeout in ticks, shorter ticks on the followers (--raft-heartbeat 100ms → 50ms)', (t) => {
  check(
    t,
    cutOffAfterRound({
      leader: { electionTick: 10, tickMs: 100 },
      before: { electionTick: 10, tickMs: 100 },
      followers: { electionTick: 10, tickMs: 50 },
      periods: { leader: 100, followers: 50 },
    }),
  );
});

test('mismatched timers and worst-case drift: the leader 10% slow, the followers 9% fast', (t) => {
  check(t, cutOffAfterRound({ leader: ONE_SECOND, followers: HALF_SECOND, periods: { leader: 55, followers: 45.5 } }));
});

test('followers restarted with a shorter timeout right after acknowledging: the persisted promise covers the restart window', (t) => {
  // Both restart at once, so no server remembers the round in memory: only
  // HardState.lease keeps them from electing someone inside n1's lease.
  check(t, cutOffAfterRound({ leader: ONE_SECOND, followers: HALF_SECOND, restartFollowers: true }));
});

test('a leader with a shorter timeout than its followers: they keep at least their own timeout', (t) => {
  check(t, cutOffAfterRound({ leader: HALF_SECOND, before: HALF_SECOND, followers: ONE_SECOND }));
});

// ---- the follower's side, message by message ----------------------------------------

const hb = (from: string, to: string, term: number, lease: number, tick = 5): Message => ({
  type: 'MsgHeartbeat', from, to, term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick, lease,
});
const vote = (type: 'MsgVote' | 'MsgPreVote', from: string, to: string, term: number): Message => ({
  type, from, to, term, logTerm: 1, index: 100, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0,
});

function follower(own: RaftOptions, storage = new MemoryStorage({ bootstrap: ['n1', 'n2', 'n3'] })) {
  const node = new RawNode({ id: 'n3', storage, random: () => 0, heartbeatTick: 1, ...own });
  const sent: Message[] = [];
  const flush = (): void => {
    while (node.hasReady()) {
      const rd = node.ready();
      storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}) });
      sent.push(...rd.messages);
      node.advance(rd);
    }
  };
  return { node, storage, sent, flush };
}

test('a follower refuses votes and pre-votes and does not campaign for the whole lease the leader stated, then does', (t) => {
  const stated = leaseMs(leaseTicks(20, 0.1), 50, 0.1); // what a 1 s / 50 ms leader asks for
  t.is(stated, 918);
  const f = follower(HALF_SECOND);
  for (let i = 0; i < 10; i++) f.node.tick(); // past the start-up window
  t.true(f.node.step(hb('n1', 'n3', 1, stated)));
  f.flush();
  const ack = f.sent.find((m) => m.type === 'MsgHeartbeatResp');
  t.is(ack?.lease, stated, 'the answer echoes the promise');
  t.is(f.storage.initialState().hardState.lease, stated, 'the promise is durable before the answer left');
  // Its own election timeout (10 ticks) passes; the promise (ceil(918/50) + 1 = 20 ticks) does not.
  for (let i = 0; i < 19; i++) f.node.tick();
  f.flush();
  t.is(f.node.role, 'follower', 'no campaign inside the promise');
  t.deepEqual(f.node.campaign(), { ok: false, reason: 'inLease', leader: 'n1' });
  f.sent.length = 0;
  f.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  f.node.step(vote('MsgVote', 'n2', 'n3', 2));
  f.flush();
  t.false(f.sent.some((m) => (m.type === 'MsgPreVoteResp' || m.type === 'MsgVoteResp') && !m.reject), 'no grant inside the promise');
  t.is(f.node.term, 1, 'a refused request does not move the term');
  f.node.tick(); // the 20th tick: the promise is kept
  f.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  f.flush();
  t.true(f.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject && m.term === 2), 'granted once the promise ran out');
});

test('a round that states a lease shorter than the follower\'s own timeout: it still refuses votes for its own timeout (§4.2.3: a leader it hears from is not disrupted)', (t) => {
  const stated = leaseMs(leaseTicks(10, 0.1), 50, 0.1); // a 500 ms leader: 429 ms, 10 ticks of 50 ms
  const f = follower(ONE_SECOND);
  for (let i = 0; i < 20; i++) f.node.tick();
  f.node.step(hb('n1', 'n3', 1, stated));
  for (let i = 0; i < 19; i++) f.node.tick();
  f.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  f.flush();
  t.false(f.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject), 'refused for its own E = 20 ticks');
  f.node.tick();
  f.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  f.flush();
  t.true(f.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject));
});

test('after a restart, with a shorter timeout than before, the promise made before the crash is kept', (t) => {
  const stated = leaseMs(leaseTicks(20, 0.1), 50, 0.1);
  const storage = new MemoryStorage({ bootstrap: ['n1', 'n2', 'n3'] });
  const before = follower(ONE_SECOND, storage);
  for (let i = 0; i < 20; i++) before.node.tick();
  before.node.step(hb('n1', 'n3', 1, stated));
  before.flush();
  // Crash right after the acknowledgement; restart with 500 ms.
  const after = follower(HALF_SECOND, storage);
  for (let i = 0; i < 19; i++) after.node.tick();
  after.flush();
  t.is(after.node.role, 'follower');
  after.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  after.flush();
  t.false(after.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject), 'still inside the promise after 19 ticks');
  after.node.tick();
  after.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  after.flush();
  t.true(after.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject), 'granted after ceil(918/50) + 1 = 20 ticks');
});

test('a round that states no lease (a peer that predates the field) leaves the follower its own timeout, and its echo counts for no lease', async (t) => {
  const f = follower(HALF_SECOND);
  for (let i = 0; i < 10; i++) f.node.tick();
  f.node.step(hb('n1', 'n3', 1, 0));
  f.flush();
  t.is(f.sent.find((m) => m.type === 'MsgHeartbeatResp')?.lease, 0);
  for (let i = 0; i < 10; i++) f.node.tick();
  f.flush();
  f.node.step(vote('MsgPreVote', 'n2', 'n3', 2));
  f.flush();
  t.true(f.sent.some((m) => m.type === 'MsgPreVoteResp' && !m.reject), 'own E = 10 ticks');

  // The leader's side: acknowledgements without its promise keep it leader
  // (check-quorum) but give it no lease.
  const { Scenario } = await import('./scenario.js');
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.isolate('n1');
  const n1 = s.node('n1');
  while (n1.hasLease()) s.tick('n1');
  const stated = leaseMs(leaseTicks(10, 0.1), 50, 0.1);
  const resp = (from: string, lease: number): Message => ({
    type: 'MsgHeartbeatResp', from, to: 'n1', term: n1.term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: n1.currentTick(), lease,
  });
  for (let i = 0; i < 30; i++) {
    s.tick('n1');
    n1.step(resp('n2', 0));
    n1.step(resp('n3', stated - 1));
    t.false(n1.hasLease(), 'an echo without the full promise is no acknowledgement for the lease');
  }
  t.is(n1.role, 'leader', 'but it keeps the leader in office (check-quorum)');
  n1.step(resp('n2', stated));
  t.true(n1.hasLease(), 'an echo of the promise is');
});

test('a follower without check-quorum keeps no promise, so it echoes none: a leader cannot lean on it for a lease', (t) => {
  const f = follower({ ...HALF_SECOND, checkQuorum: false });
  f.node.step(hb('n1', 'n3', 1, 429));
  f.flush();
  t.is(f.sent.find((m) => m.type === 'MsgHeartbeatResp')?.lease, 0);
});
