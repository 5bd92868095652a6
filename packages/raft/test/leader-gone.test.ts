// Issue 11 item 4, the fast failover path: a follower with evidence that the leader's
// process is gone (RawNode.leaderGone, README "Fast failover") waives the promise it
// made to that leader in that term — nothing else — and campaigns at once, staggered by
// rank. Deterministic: simulated real time (timed.ts), E = 10 ticks of 50 ms, 1 ms
// message delay; a crash (Cluster.crash) is a dead process: it holds no lease anyone
// acts on, so the overlap check leaves it out.
import test from 'ava';
import { parseLeaderGoneContext, RawNode, type Message } from '../src/index.js';
import { TimedCluster } from './timed.js';

const TICK = 50;
const E = 10;

/** n1 leads in steady state (its followers have just acknowledged a round). */
function steady(voters: readonly string[] = ['n1', 'n2', 'n3']): TimedCluster {
  const random: Record<string, number> = {};
  for (const id of voters) random[id] = id === 'n1' ? 0 : 0.99;
  const c = new TimedCluster({ voters, raft: { electionTick: E, heartbeatTick: 1, tickMs: TICK }, random });
  if (!c.stepUntil(() => c.node('n1').node.hasLease())) throw new Error('n1 was not elected');
  c.runUntil(c.now + 3000);
  if (c.leaders().join() !== 'n1' || !c.node('n1').node.hasLease()) throw new Error('n1 lost its lease in steady state');
  return c;
}

function gone(c: TimedCluster, id: string, term: number, leader = 'n1'): boolean {
  const ok = c.node(id).node.leaderGone(term, leader);
  c.c.flush(id);
  return ok;
}

/** Real time from now until a server other than `old` holds a lease (-1: none within `limit`). */
function untilNewLease(c: TimedCluster, old: string, limit = 20_000): { after: number; holder: string } {
  const from = c.now;
  while (c.now < from + limit) {
    c.step();
    for (const n of c.c.nodes.values()) if (n.id !== old && n.raw !== null && n.raw.hasLease()) return { after: c.now - from, holder: n.id };
  }
  return { after: -1, holder: '' };
}

function voteRequest(from: string, to: string, node: RawNode, type: 'MsgPreVote' | 'MsgVote', term: number, context?: string): Message {
  const last = node.lastIndex;
  return {
    type,
    from,
    to,
    term,
    logTerm: node.termAt(last) ?? 0,
    index: last,
    commit: 0,
    reject: false,
    rejectHint: 0,
    tick: 0,
    lease: 0,
    ...(context === undefined ? {} : { context }),
  };
}

/** Grants `id` has sent (taken off the network with everything else in flight). A vote request refused in a lease gets no answer at all. */
function grants(c: TimedCluster, id: string, type: Message['type']): Message[] {
  return c.c.network.drain().filter((m) => m.from === id && m.type === type && !m.reject);
}

test('kill -9 of the leader with evidence at both survivors: a new lease within a few ticks, never two', (t) => {
  const c = steady();
  const term = c.node('n1').node.term;
  c.c.crash('n1');
  t.true(gone(c, 'n2', term));
  c.runUntil(c.now + 3); // the other survivor's probes finish a moment later
  t.true(gone(c, 'n3', term));
  const r = untilNewLease(c, 'n1');
  t.true(r.after >= 0, 'a new leader was elected');
  t.true(r.after < 4 * TICK, `new lease after ${r.after} ms of simulated time`);
  t.deepEqual(c.overlaps, []);
});

test('without evidence the survivors wait out their promise, exactly as before', (t) => {
  const c = steady();
  c.node('n3').random.next = () => 0.5; // distinct timeouts, or they split votes forever
  c.c.crash('n1');
  const r = untilNewLease(c, 'n1');
  t.true(r.after >= E * TICK - 2 * TICK, `new lease after ${r.after} ms`);
  t.deepEqual(c.overlaps, []);
});

test('evidence at the same instant on every survivor does not split the vote (rank stagger), 5 members', (t) => {
  const c = steady(['n1', 'n2', 'n3', 'n4', 'n5']);
  const term = c.node('n1').node.term;
  c.c.crash('n1');
  for (const id of ['n2', 'n3', 'n4', 'n5']) t.true(gone(c, id, term));
  const r = untilNewLease(c, 'n1');
  t.is(r.holder, 'n2', 'the first in rank wins');
  t.true(r.after >= 0 && r.after < 2 * TICK, `new lease after ${r.after} ms`);
  t.is(c.node('n2').node.term, term + 1, 'one election, no split');
  t.deepEqual(c.overlaps, []);
});

test('a survivor that sees the evidence late: the first pre-vote is refused, the retry wins well within 1 s', (t) => {
  const c = steady();
  const term = c.node('n1').node.term;
  c.c.crash('n1');
  t.true(gone(c, 'n2', term));
  c.runUntil(c.now + 30); // n3's evidence comes 30 ms later: it refused n2's first pre-vote
  t.true(gone(c, 'n3', term));
  const r = untilNewLease(c, 'n1');
  t.true(r.after >= 0 && r.after < 4 * TICK, `new lease ${r.after} ms after n3's evidence`);
  t.deepEqual(c.overlaps, []);
});

test('evidence about an old term, another leader, or acted on already is ignored', (t) => {
  const c = steady();
  const n2 = c.node('n2').node;
  const term = n2.term;
  t.false(n2.leaderGone(term - 1, 'n1'), 'an older term');
  t.false(n2.leaderGone(term + 1, 'n1'), 'a later term');
  t.false(n2.leaderGone(term, 'n3'), 'not the leader it promised');
  t.false(n2.leaderGone(term, 'n2'), 'itself');
  t.false(c.node('n1').node.leaderGone(term, 'n1'), 'the leader about itself');
  t.is(n2.role, 'follower');
  t.true(n2.leaderGone(term, 'n1'));
  t.false(n2.leaderGone(term, 'n1'), 'once');
});

test('a voter without the evidence still refuses; one with it grants only a candidate that saw the same', (t) => {
  const c = steady();
  const n2 = c.node('n2').node;
  const n3 = c.node('n3').node;
  const term = n3.term;
  const same = `leader-gone ${term} n1`;
  c.c.network.drain();
  // n2 claims the leader is gone; n3 saw nothing: its promise to n1 holds.
  n3.step(voteRequest('n2', 'n3', n3, 'MsgPreVote', term + 1, same));
  c.c.flush('n3');
  t.is(grants(c, 'n3', 'MsgPreVoteResp').length, 0, 'no evidence: refused');
  n3.step(voteRequest('n2', 'n3', n3, 'MsgVote', term + 1, same));
  c.c.flush('n3');
  t.is(n3.term, term, 'a refused vote request does not move the term');
  // Now n3 has the evidence itself (rank 1 of n2, n3: it does not campaign at once).
  t.true(n3.leaderGone(term, 'n1'));
  c.c.flush('n3');
  t.is(n3.role, 'follower');
  for (const ctx of [undefined, `leader-gone ${term - 1} n1`, `leader-gone ${term} n3`, 'transfer-ish']) {
    n3.step(voteRequest('n2', 'n3', n3, 'MsgPreVote', term + 1, ctx));
    c.c.flush('n3');
    t.is(grants(c, 'n3', 'MsgPreVoteResp').length, 0, `refused with context ${String(ctx)}`);
  }
  n3.step(voteRequest('n2', 'n3', n3, 'MsgPreVote', term + 1, same));
  c.c.flush('n3');
  t.is(grants(c, 'n3', 'MsgPreVoteResp').length, 1, 'the same evidence: granted');
  t.is(n2.term, term);
});

test('false evidence at one follower while the leader lives: nobody else is elected, the next round clears it', (t) => {
  const c = steady();
  const term = c.node('n1').node.term;
  t.true(gone(c, 'n2', term)); // n2 (rank 0) campaigns at once; n3 refuses
  c.runUntil(c.now + 3000);
  t.deepEqual(c.leaders(), ['n1']);
  t.is(c.node('n1').node.term, term, 'no new term');
  t.true(c.node('n1').node.hasLease());
  t.deepEqual(c.overlaps, []);
  // The next round n2 accepted proved n1 alive: evidence can be acted on again.
  t.true(c.node('n2').node.leaderGone(term, 'n1'));
});

test('false evidence at the one follower a half-partitioned leader rests on elects nobody', (t) => {
  // n1's lease rests on n3 alone (n1-n2 cut); n3 wrongly sees n1 gone. n2's own
  // campaign (its promise ran out, no evidence) must not get n3's vote.
  const { c, term } = falseEvidence('n2', 'n3');
  t.deepEqual(c.overlaps, []);
  t.deepEqual(c.leaders(), ['n1']);
  t.is(c.node('n1').node.term, term);
});

test('a restarted follower keeps its persisted promise: evidence cannot waive the restart window', (t) => {
  const c = steady();
  const term = c.node('n1').node.term;
  c.c.crash('n1');
  c.restart('n2'); // n2 restarts at the moment n1 dies: whom it promised is forgotten
  t.false(gone(c, 'n2', term), 'the restart window is not waivable');
  t.true(gone(c, 'n3', term));
  const r = untilNewLease(c, 'n1');
  t.true(r.after >= 0);
  t.true(r.after >= (E - 1) * TICK, `n2 voted only after its restart window: ${r.after} ms`);
  t.deepEqual(c.overlaps, []);
});

test('a promise older than the dead leader\'s rounds (the restart window) still holds after the waiver', (t) => {
  const c = steady();
  const term = c.node('n1').node.term;
  c.restart('n2');
  c.runUntil(c.now + 2 * TICK); // n2 accepts n1's rounds again: it may act on evidence about n1
  c.c.crash('n1');
  t.true(gone(c, 'n2', term), 'waives what it promised n1 since the restart');
  t.true(gone(c, 'n3', term));
  const r = untilNewLease(c, 'n1');
  t.true(r.after >= (E - 3) * TICK, `n2 kept its restart window: new lease after ${r.after} ms`);
  t.deepEqual(c.overlaps, []);
});

test('false evidence at the one follower a half-partitioned leader rests on cannot elect that follower either', (t) => {
  // n1's lease rests on n2 alone (n1-n3 cut, n3's promise runs out); n2 wrongly sees n1
  // gone and campaigns at once (rank 0). n3 has no evidence: it must not grant the
  // waived campaign, even though its own promise has run out.
  const { c, term } = falseEvidence('n3', 'n2');
  t.deepEqual(c.overlaps, []);
  t.true(c.node('n1').node.hasLease() || c.leaders().every((id) => id === 'n1'), `leaders: ${c.leaders().join()}`);
  t.is(c.node('n2').node.role === 'leader', false, 'n2 was not elected on its own evidence');
  t.is(c.node('n1').node.term, term);
});

test('parseLeaderGoneContext reads what the core sends, and nothing else', (t) => {
  t.deepEqual(parseLeaderGoneContext('leader-gone 12 n1'), { term: 12, leader: 'n1' });
  t.deepEqual(parseLeaderGoneContext('leader-gone 3 a b'), { term: 3, leader: 'a b' });
  for (const c of [undefined, 'transfer', 'leader-gone', 'leader-gone x n1', 'leader-gone 12', 'leader-gone 12 ', 'leader-gone  n1']) t.is(parseLeaderGoneContext(c), undefined, String(c));
});

/**
 * n1 leads; its link with `cut` is cut both ways, so its lease rests on `liar` alone,
 * which wrongly sees n1 gone for 40 ticks — re-waived after every event (each round it
 * accepts clears the waiver): the worst case for n1's lease.
 */
function falseEvidence(cut: string, liar: string): { c: ReturnType<typeof steady>; term: number } {
  const c = steady();
  const term = c.node('n1').node.term;
  c.c.network.cutLink('n1', cut);
  c.c.network.cutLink(cut, 'n1');
  const node = c.node(liar).node;
  const until = c.now + 40 * TICK;
  while (c.now < until) {
    if (node.leaderGone(node.term, 'n1')) c.c.flush(liar);
    c.step();
  }
  return { c, term };
}
