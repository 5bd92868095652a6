// Named scenarios from the Raft paper (§5) and thesis (ch. 3, 4, 6, 9), as event scripts.
import test from 'ava';
import { decodeConfChange } from '../src/index.js';
import { E, Scenario } from './scenario.js';

test('Figure 8: a leader never commits an entry of an earlier term by counting replicas (§5.4.2)', (t) => {
  // One entry per MsgApp so the old-term entry and the new no-op travel separately.
  const s = Scenario.cluster(5, { raft: { maxSizePerMsg: 1, checkQuorum: false, preVote: false } });
  // (a) S1 leads term 2 and gets entry "a" only onto S2.
  s.elect('n1');
  t.is(s.node('n1').term, 2);
  s.cut('n1', 'n3');
  s.cut('n1', 'n4');
  s.cut('n1', 'n5');
  const a = s.propose('n1', 'a');
  t.true(a.ok);
  const indexA = a.ok ? a.index : 0;
  t.is(s.node('n2').termAt(indexA), 2);
  // (b) S1 crashes; S5 wins term 3 with votes of S3, S4 and appends at the same index, then crashes.
  s.crash('n1');
  s.heal();
  s.filter = (m) => !(m.from === 'n5' && m.type === 'MsgApp');
  s.elect('n5');
  t.is(s.node('n5').term, 3);
  t.is(s.node('n5').termAt(indexA), 3);
  s.crash('n5');
  // (c) S1 restarts, wins term 4 and replicates "a" to S3: on a majority, but of term 2.
  // Followers may learn "a" (after probing) but never the new term's no-op behind it.
  s.filter = (m) =>
    !(m.type === 'MsgApp' && (s.n(m.to).raw?.lastIndex ?? 0) >= indexA && (m.entries ?? []).some((e) => e.index > indexA));
  s.restart('n1');
  s.elect('n1');
  t.is(s.node('n1').term, 4);
  t.deepEqual(
    ['n1', 'n2', 'n3'].map((id) => s.node(id).termAt(indexA)),
    [2, 2, 2],
  );
  t.true(s.node('n1').commitIndex < indexA, 'term-2 entry on a majority must not be committed by counting');
  // (d) S1 crashes; S5 (last term 3) can still win and overwrite index 2 everywhere.
  s.crash('n1');
  s.filter = () => true;
  s.restart('n5');
  s.elect('n5');
  t.true(s.node('n5').term >= 5);
  s.tick(undefined, 3);
  for (const id of ['n2', 'n3', 'n4', 'n5']) {
    t.is(s.node(id).termAt(indexA), 3, `${id} holds S5's entry`);
    t.false(s.applied(id).includes('a'), `${id} never applied the uncommitted "a"`);
  }
  s.restart('n1');
  s.tick(undefined, 3);
  t.is(s.node('n1').termAt(indexA), 3);
  t.false(s.applied('n1').includes('a'));
});

// Figure 7: the leader for term 8 and possible follower logs (a)–(f).
const LEADER_LOG = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIGURE_7: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

for (const [name, follower] of Object.entries(FIGURE_7)) {
  test(`Figure 7 (${name}): the leader brings a divergent follower log in line (§5.3)`, (t) => {
    const s = new Scenario(['n1', 'n2', 'n3'], {
      logs: { n1: LEADER_LOG, n2: follower, n3: LEADER_LOG },
      terms: { n1: 7, n2: 7, n3: 7 },
    });
    s.elect('n1');
    t.is(s.leader(), 'n1');
    t.is(s.node('n1').term, 8);
    t.true(s.propose('n1', 'x').ok);
    s.tick(undefined, 2);
    t.deepEqual(s.logTerms('n2'), s.logTerms('n1'));
    t.deepEqual(s.logTerms('n1'), [...LEADER_LOG, 8, 8]);
    t.is(s.node('n2').commitIndex, s.node('n1').lastIndex);
  });
}

test('Fast back-tracking: a follower with a long divergent suffix is repaired in few round trips', (t) => {
  const long = [1, 1, ...Array.from({ length: 200 }, () => 2)];
  const s = new Scenario(['n1', 'n2', 'n3'], {
    logs: { n1: [1, 1, 3, 3], n2: long, n3: [1, 1, 3, 3] },
    terms: { n1: 3, n2: 3, n3: 3 },
  });
  s.elect('n1');
  const rejections = s.delivered.filter((m) => m.type === 'MsgAppResp' && m.from === 'n2' && m.reject).length;
  t.true(rejections <= 3, `took ${rejections} rejections`);
  t.deepEqual(s.logTerms('n2'), s.logTerms('n1'));
});

test('Pre-vote: a partitioned server rejoins without disrupting the leader (§9.6)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  const term = s.node('n1').term;
  s.isolate('n3');
  s.tick(undefined, 10 * E);
  t.is(s.node('n3').term, term, 'pre-votes that fail do not raise the term');
  t.is(s.node('n3').role, 'preCandidate');
  s.heal();
  s.tick(undefined, 3);
  t.is(s.leader(), 'n1');
  t.is(s.node('n1').term, term);
  t.is(s.node('n3').leader, 'n1');
});

test('Check-quorum: a leader in a minority steps down and its lease lapses first (§6.2)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.tick(undefined, 1);
  t.true(s.node('n1').hasLease());
  s.isolate('n1');
  let stepDownTick = -1;
  let newLeaderTick = -1;
  for (let i = 1; i <= 5 * E; i++) {
    s.tick();
    const holders = ['n1', 'n2', 'n3'].filter((id) => s.node(id).hasLease());
    t.true(holders.length <= 1, `tick ${i}: ${holders.join(',')} hold leases`);
    if (stepDownTick < 0 && s.node('n1').role !== 'leader') stepDownTick = i;
    if (newLeaderTick < 0 && (s.node('n2').role === 'leader' || s.node('n3').role === 'leader')) newLeaderTick = i;
  }
  t.true(stepDownTick > 0 && stepDownTick <= E, `stepped down at ${stepDownTick}`);
  t.true(newLeaderTick > 0, 'the majority elected a leader');
  t.false(s.node('n1').hasLease());
});

test('Leadership transfer to an up-to-date follower (thesis §3.10)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.propose('n1', 'x');
  t.true(s.node('n1').transferLeadership('n2').ok);
  s.stabilize();
  t.is(s.leader(), 'n2');
  t.true(s.propose('n2', 'y').ok);
  s.tick(undefined, 2);
  t.deepEqual(s.applied('n1'), ['x', 'y']);
});

test('Leadership transfer to a lagging follower catches it up first and refuses proposals meanwhile', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.cut('n1', 'n3');
  for (let i = 0; i < 5; i++) s.propose('n1', `x${i}`);
  t.true(s.node('n3').lastIndex < s.node('n1').lastIndex);
  t.true(s.node('n1').transferLeadership('n3').ok);
  t.false(s.node('n1').hasLease(), 'no lease while a transfer is in progress');
  const refused = s.node('n1').propose(new Uint8Array([1]));
  t.deepEqual(refused, { ok: false, reason: 'transferring', leader: 'n1' });
  s.heal();
  s.tick(undefined, 2);
  t.is(s.leader(), 'n3');
  t.deepEqual(s.applied('n3'), ['x0', 'x1', 'x2', 'x3', 'x4']);
});

test('An aborted leadership transfer resumes proposals after an election timeout', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.crash('n3');
  s.propose('n1', 'x');
  t.true(s.node('n1').transferLeadership('n3').ok);
  t.is(s.status('n1').leadTransferee, 'n3');
  t.false(s.node('n1').propose(new Uint8Array([1])).ok);
  s.tick(undefined, E);
  t.is(s.status('n1').leadTransferee, null);
  t.is(s.leader(), 'n1');
  t.true(s.propose('n1', 'y').ok);
  s.tick(undefined, 1);
  t.true(s.node('n1').hasLease());
});

test('Membership: add a learner, promote it, then remove the leader (thesis §4)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.propose('n1', 'before');
  s.addServer('n4');
  t.true(s.node('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n4' }).ok);
  s.stabilize();
  s.tick(undefined, 2);
  t.deepEqual(s.status('n4').config, { voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  t.deepEqual(s.applied('n4'), ['before']);
  t.is(s.status('n1').progress?.['n4']?.isLearner, true);
  // One change at a time: promoting waits until the learner change is applied.
  t.true(s.node('n1').proposeConfChange({ type: 'addVoter', nodeId: 'n4' }).ok);
  t.deepEqual(s.node('n1').proposeConfChange({ type: 'removeNode', nodeId: 'n1' }), {
    ok: false,
    reason: 'confChangePending',
    leader: 'n1',
  });
  s.stabilize();
  s.tick(undefined, 1);
  t.deepEqual(s.status('n4').config.voters, ['n1', 'n2', 'n3', 'n4']);
  // Remove the leader itself: it steps down once the change commits and hands over.
  t.true(s.node('n1').proposeConfChange({ type: 'removeNode', nodeId: 'n1' }).ok);
  s.stabilize();
  s.tick(['n2', 'n3', 'n4'], 3);
  const leader = s.leader();
  t.truthy(leader);
  t.not(leader, 'n1');
  t.is(s.node('n1').role, 'follower');
  t.deepEqual(s.status(leader!).config.voters, ['n2', 'n3', 'n4']);
  t.true(s.propose(leader!, 'after').ok);
  s.tick(['n2', 'n3', 'n4'], 2);
  for (const id of ['n2', 'n3', 'n4']) t.deepEqual(s.applied(id), ['before', 'after']);
  t.deepEqual(s.node('n1').campaign(), { ok: false, reason: 'notMember', leader: null });
  for (const bad of [{ type: 'addVoter', nodeId: 'n2' }, { type: 'removeNode', nodeId: 'n9' }, { type: 'addLearner', nodeId: '' }] as const) {
    t.like(s.node(leader!).proposeConfChange(bad), { ok: false, reason: 'invalidConfChange' });
  }
  t.like(s.node(leader!).proposeConfChange({ type: 'addLearner', nodeId: 'n5', context: 'x'.repeat(16 * 1024 + 1) }), { ok: false, reason: 'invalidConfChange' });
});

test('Membership: a conf change carries its context to every member in the committed entry (etcd ConfChange.Context)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.addServer('n4');
  t.true(s.node('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: '{"raftAddress":"10.0.0.4:8688"}' }).ok);
  s.stabilize();
  for (const id of ['n1', 'n2', 'n3', 'n4']) {
    const storage = s.c.get(id).storage!;
    const entries = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity);
    const cc = entries.filter((e) => e.type === 'confChange').map((e) => decodeConfChange(e.data)).find((c) => c?.nodeId === 'n4');
    t.deepEqual(cc, { type: 'addLearner', nodeId: 'n4', context: '{"raftAddress":"10.0.0.4:8688"}' }, id);
  }
});

test('Requests that need a leader are refused with the known leader, if any', (t) => {
  const s = Scenario.cluster(3);
  t.like(s.node('n2').readIndex('r'), { ok: false, reason: 'noLeader' });
  t.like(s.node('n2').propose(new Uint8Array()), { ok: false, reason: 'noLeader' });
  s.elect('n1');
  t.deepEqual(s.node('n2').propose(new Uint8Array()), { ok: false, reason: 'notLeader', leader: 'n1' });
  t.like(s.node('n2').transferLeadership('n3'), { ok: false, reason: 'notLeader' });
  t.like(s.node('n1').transferLeadership('n9'), { ok: false, reason: 'invalidTarget' });
  t.like(s.node('n1').proposeConfChange({ type: 'removeNode', nodeId: 'n3' }), { ok: true });
});

test('Snapshot: a lagging follower behind the first retained entry installs a chunked snapshot (§7)', (t) => {
  const s = Scenario.cluster(3, {
    snapshotEvery: 5,
    compactKeep: 0,
    snapshotPad: 400,
    raft: { snapshotChunkSize: 64, snapshotChunksInFlight: 2 },
  });
  s.elect('n1');
  s.crash('n3');
  for (let i = 0; i < 30; i++) s.propose('n1', `x${i}`);
  t.true(s.node('n1').status().firstIndex > 10, 'the leader compacted its log');
  s.restart('n3');
  s.tick(undefined, 3);
  const chunks = s.delivered.filter((m) => m.type === 'MsgSnap' && m.to === 'n3');
  t.true(chunks.length > 1, `snapshot sent in ${chunks.length} chunk(s)`);
  t.is(s.node('n3').commitIndex, s.node('n1').commitIndex);
  t.deepEqual(s.applied('n3'), s.applied('n1'));
  t.true(s.propose('n1', 'after').ok);
  s.tick(undefined, 1);
  t.deepEqual(s.applied('n3').at(-1), 'after');
});

test('Snapshot: a new server joins from a snapshot, even when chunks are lost', (t) => {
  const s = Scenario.cluster(3, {
    snapshotEvery: 4,
    snapshotPad: 300,
    raft: { snapshotChunkSize: 50, snapshotChunksInFlight: 3 },
  });
  s.elect('n1');
  for (let i = 0; i < 12; i++) s.propose('n1', `x${i}`);
  s.addServer('n4');
  let dropped = 0;
  s.filter = (m) => {
    if (m.type !== 'MsgSnap' || m.snapshot!.chunk !== 2 || dropped === 2) return true;
    dropped++;
    return false;
  };
  t.true(s.node('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n4' }).ok);
  s.tick(undefined, 8);
  t.is(dropped, 2);
  t.deepEqual(s.applied('n4'), s.applied('n1'));
  t.is(s.node('n4').commitIndex, s.node('n1').commitIndex);
});

for (const readOnlyOption of ['safe', 'leaseBased'] as const) {
  test(`ReadIndex (${readOnlyOption}) never returns stale data across a leader change (thesis §6.4)`, (t) => {
    const s = Scenario.cluster(3, { raft: { readOnlyOption } });
    s.elect('n1');
    s.propose('n1', 'x1');
    s.tick(undefined, 1);
    s.isolate('n1');
    // Every clock runs (a paused clock would keep a stale lease alive: the
    // driver must tick from a monotonic clock and check it after a pause).
    s.tick(undefined, 3 * E);
    const leader = s.leader();
    t.true(leader === 'n2' || leader === 'n3');
    const w = s.propose(leader!, 'x2');
    t.true(w.ok);
    const writeIndex = w.ok ? w.index : 0;
    s.tick(['n2', 'n3'], 1);
    t.true(s.applied(leader!).includes('x2'), 'x2 acknowledged');
    // The deposed leader, asked after x2 was acknowledged, must not answer
    // with an older read point: its lease expired before n2/n3 could elect.
    s.node('n1').readIndex('old-1');
    s.tick('n1', 3 * E);
    const old = s.n('n1').readStates.find((r) => r.context === 'old-1');
    t.true(old === undefined || old.index >= writeIndex, 'the deposed leader never serves a stale read point');
    // A follower forwards to the leader; the read point covers the acknowledged write.
    const follower = leader === 'n2' ? 'n3' : 'n2';
    t.true(s.node(follower).readIndex('r-1').ok);
    s.stabilize();
    const rs = s.n(follower).readStates.find((r) => r.context === 'r-1');
    t.truthy(rs);
    t.true(rs!.index >= writeIndex);
    t.true(s.n(follower).appliedIndex >= rs!.index);
    t.true(s.applied(follower).includes('x2'));
  });
}

test('Lease: held only after a quorum acknowledged this term, lost at once on transfer', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  const until = s.node('n1').leaseValidUntil();
  t.not(until, null);
  t.true(until! > s.node('n1').currentTick());
  // Cut the leader's outgoing links: its lease runs out no later than leaseTicks after the last acked round.
  s.cut('n1', 'n2');
  s.cut('n1', 'n3');
  let ticks = 0;
  while (s.node('n1').hasLease()) {
    s.tick('n1');
    ticks++;
  }
  t.true(ticks <= E, `lease outlived ${ticks} ticks`);
});

test('Malformed or hostile peer messages are dropped without changing state', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.propose('n1', 'x');
  const before = JSON.stringify(s.status('n2'));
  const base = { from: 'n1', to: 'n2', term: 2, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0 };
  const junk: unknown[] = [
    null,
    42,
    'MsgApp',
    {},
    { ...base, type: 'MsgBogus' },
    { ...base, type: 'MsgApp', index: -1 },
    { ...base, type: 'MsgApp', term: '2' },
    { ...base, type: 'MsgApp', term: 2.5 },
    { ...base, type: 'MsgApp', from: '' },
    { ...base, type: 'MsgApp', to: 'n3' },
    { ...base, type: 'MsgApp', from: 'n2' },
    { ...base, type: 'MsgApp', entries: [{ term: 2, index: 5, type: 'normal', data: new Uint8Array() }] },
    { ...base, type: 'MsgApp', entries: [{ term: 9, index: 1, type: 'normal', data: new Uint8Array() }] },
    { ...base, type: 'MsgApp', entries: [{ term: 1, index: 1, type: 'normal', data: 'x' }] },
    { ...base, type: 'MsgSnap' },
    { ...base, type: 'MsgSnap', snapshot: { metadata: { index: 5, term: 1, confState: {} }, chunk: 0, chunks: 1, data: new Uint8Array() } },
    { ...base, type: 'MsgReadIndex' },
    { ...base, type: 'MsgHeartbeat', from: 'n9', term: 2 },
    { ...base, type: 'MsgTimeoutNow', from: 'n3' },
  ];
  // Responses from non-members and acknowledgements of entries never sent: dropped by the leader.
  t.false(s.node('n1').step({ ...base, type: 'MsgAppResp', from: 'n9', to: 'n1', index: 99 }));
  t.true(s.node('n1').step({ ...base, type: 'MsgAppResp', from: 'n2', to: 'n1', index: 1e9 }));
  t.is(s.status('n1').progress?.['n2']?.match, s.node('n1').lastIndex);
  for (const m of junk) {
    t.notThrows(() => t.false(s.node('n2').step(m)));
  }
  t.false(s.node('n2').step({ ...base, type: 'MsgBogus' }));
  s.c.flushAll();
  t.is(JSON.stringify(s.status('n2')), before);
  t.is(s.leader(), 'n1');
  t.true(s.propose('n1', 'y').ok);
  s.tick(undefined, 1);
  t.deepEqual(s.applied('n2'), ['x', 'y']);
});

// Paths the randomized sweep reaches too rarely to catch a mutation in (each
// test below fails when its rule is removed from the core).

test('§5.3: a MsgApp commits only up to its last new entry, never a follower tail it did not verify', (t) => {
  // n3's entry 4 (term 2) is not n1's (term 3); entry 3 matches.
  const s = new Scenario(['n1', 'n2', 'n3'], {
    logs: { n1: [1, 1, 2, 3], n2: [1, 1, 2, 3], n3: [1, 1, 2, 2] },
    terms: { n1: 3, n2: 3, n3: 3 },
  });
  s.cut('n1', 'n3');
  s.elect('n1');
  s.propose('n1', 'x');
  t.true(s.node('n1').commitIndex >= 5);
  const entry3 = { term: 2, index: 3, type: 'normal' as const, data: new TextEncoder().encode('n1@3') };
  // A short (or late) append from the leader: prev 2/1, entry 3, leader commit beyond n3's tail.
  const m = { type: 'MsgApp', from: 'n1', to: 'n3', term: s.node('n1').term, logTerm: 1, index: 2, commit: s.node('n1').commitIndex, reject: false, rejectHint: 0, tick: 0, entries: [entry3] };
  t.true(s.node('n3').step(m));
  t.is(s.node('n3').commitIndex, 3, 'entry 4 on n3 is not known to match the leader');
});

test('Votes: after a stray higher-term reply, same-term grants still respect the lease, and a vote alone is synced', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.tick(undefined, 2);
  const term = s.node('n3').term;
  const base = { logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0 };
  // A reply to some old message of n3's moves it to term + 1, with no leader.
  s.node('n3').step({ ...base, type: 'MsgAppResp', from: 'n2', to: 'n3', term: term + 1 });
  t.is(s.node('n3').term, term + 1);
  t.is(s.node('n3').leader, null);
  s.c.flushAll();
  s.c.network.drain();
  const vote = { ...base, type: 'MsgVote', from: 'n2', to: 'n3', term: term + 1, index: s.node('n2').lastIndex, logTerm: s.node('n2').termAt(s.node('n2').lastIndex)! };
  // n3 heard from n1 within the election timeout: its vote would break n1's lease.
  t.true(s.node('n3').step(vote));
  let rd = s.node('n3').ready();
  t.deepEqual(
    rd.messages.map((m) => [m.type, m.reject]),
    [['MsgVoteResp', true]],
  );
  s.n('n3').storage.save(rd);
  s.node('n3').advance(rd);
  // Out of the lease the vote is granted; the vote alone changed, and it must be fsynced before the grant is sent.
  s.isolate('n3');
  s.tick('n3', E);
  s.c.flushAll();
  s.c.network.drain();
  t.true(s.node('n3').step(vote));
  rd = s.node('n3').ready();
  t.deepEqual(
    rd.messages.map((m) => [m.type, m.reject]),
    [['MsgVoteResp', false]],
  );
  t.is(rd.hardState?.vote, 'n2');
  t.true(rd.mustSync);
});

test('§4.2.3: a follower that hears from its leader ignores a higher-term vote request entirely (no term change, no answer)', (t) => {
  const s = Scenario.cluster(3, { raft: { preVote: false } });
  s.elect('n1');
  s.tick(undefined, 2);
  const term = s.node('n2').term;
  s.c.flushAll();
  s.c.network.drain();
  const last = s.node('n3').lastIndex;
  t.true(s.node('n2').step({ type: 'MsgVote', from: 'n3', to: 'n2', term: term + 5, logTerm: s.node('n3').termAt(last)!, index: last, commit: 0, reject: false, rejectHint: 0, tick: 0 }));
  t.is(s.node('n2').term, term);
  t.false(s.node('n2').hasReady());
  t.is(s.node('n2').leader, 'n1');
});

test('A leader cut off from its quorum stops accepting proposals past maxUncommittedBytes, and accepts again once they commit', (t) => {
  const s = Scenario.cluster(3, { raft: { maxUncommittedBytes: 100, checkQuorum: false } });
  s.elect('n1');
  s.cut('n1', 'n2');
  s.cut('n1', 'n3');
  const n1 = s.node('n1');
  t.like(n1.propose(new Uint8Array(60)), { ok: true });
  t.like(n1.propose(new Uint8Array(30)), { ok: true });
  t.deepEqual(n1.propose(new Uint8Array(20)), { ok: false, reason: 'uncommittedLimit', leader: 'n1' });
  t.like(n1.propose(new Uint8Array(0)), { ok: true }, 'an empty command still fits');
  s.heal();
  s.tick(undefined, 3);
  t.is(s.node('n2').commitIndex, n1.commitIndex);
  t.like(n1.propose(new Uint8Array(90)), { ok: true }, 'committed proposals no longer count');
  // One proposal larger than the limit is accepted when nothing is outstanding.
  s.tick(undefined, 3);
  t.like(n1.propose(new Uint8Array(500)), { ok: true });
});

test('A single voter waits only on its own disk: maxUncommittedBytes never refuses it', (t) => {
  const s = Scenario.cluster(1, { raft: { maxUncommittedBytes: 100 } });
  s.elect('n1');
  for (let i = 0; i < 50; i++) t.like(s.node('n1').propose(new Uint8Array(40)), { ok: true });
});

test('Step-down: the leader abdicates at once, without a transfer, and sits out the next election', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.propose('n1', 'x');
  s.tick(undefined, 1);
  // n1 would otherwise campaign first (timeout E, the others 2E-2 and 2E-3).
  s.n('n1').random.next = () => 0;
  t.true(s.node('n1').hasLease());
  t.deepEqual(s.node('n1').stepDown(), { ok: true });
  t.is(s.node('n1').role, 'follower');
  t.false(s.node('n1').hasLease(), 'the lease goes with the leadership');
  t.deepEqual(s.node('n2').stepDown(), { ok: false, reason: 'notLeader', leader: 'n1' }, 'only a leader can step down');
  let newLeader: string | undefined;
  for (let i = 0; i < 4 * E && newLeader === undefined; i++) {
    s.tick();
    const holders = ['n1', 'n2', 'n3'].filter((id) => s.node(id).hasLease());
    t.true(holders.length <= 1, `tick ${i}: ${holders.join(',')} hold leases`);
    newLeader = s.leader();
  }
  t.true(newLeader === 'n2' || newLeader === 'n3', `the leadership moved (leader: ${newLeader})`);
  t.true(s.propose(newLeader!, 'y').ok);
  s.tick(undefined, 2);
  t.deepEqual(s.applied('n1'), ['x', 'y']);
});
