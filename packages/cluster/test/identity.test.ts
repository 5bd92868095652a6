// The identity rules of the peer hello, against a recorded state: who is admitted, what
// is recorded (durably) before a peer's messages count, and when this node concludes
// that it lost its state or was removed.
import test from 'ava';
import { MemoryLevel } from 'memory-level';
import type { ConfState } from '@weldr/raft';
import { applyCommand, applyConfChangeEntry, initialState, memberConfChange, readPeerIncarnations, readPeerStarts, type NodeIdentity, type PoolDb, type PoolState } from '@weldr/store';
import { IdentityGuard } from '../src/identity.js';
import type { ClusterLogger } from '../src/types.js';

const silent: ClusterLogger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

interface World {
  state: PoolState;
  conf: ConfState;
  seeds: Set<string>;
  joined: string | null;
  identity: NodeIdentity;
  lost: string[];
  removed: string[];
  rolledBack: string[];
  db: PoolDb;
  guard: IdentityGuard;
}

/** n1's view of a cluster n1, n2, n3 (bootstrap applied, cluster id c1, n2's incarnation recorded in its record). */
async function world(overrides: Partial<Pick<World, 'identity'>> = {}): Promise<World> {
  let state = initialState();
  for (const [i, id] of ['n1', 'n2', 'n3'].entries()) state = applyConfChangeEntry(state, i + 1, { type: 'addVoter', nodeId: id }).state;
  state = applyCommand(state, 4, { requestId: 'init', command: { type: 'InitCluster', clusterId: 'c1' } }).state;
  state = applyCommand(state, 5, { requestId: 'u2', command: { type: 'UpdateMember', id: 'n2', incarnation: 'inc-n2' } }).state;
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  const w = {
    state,
    conf: { voters: ['n1', 'n2', 'n3'], learners: [] },
    seeds: new Set<string>(),
    joined: null,
    identity: overrides.identity ?? { memberId: 'n1', incarnation: 'inc-n1', createdAt: '2026-01-01T00:00:00.000Z', since: 0 },
    lost: [],
    removed: [],
    rolledBack: [],
    db,
  } as unknown as World;
  w.guard = await IdentityGuard.open({
    self: 'n1',
    identity: () => w.identity,
    db,
    log: silent,
    state: () => w.state,
    config: () => w.conf,
    seeds: () => w.seeds,
    joinedCluster: () => w.joined,
    onLostState: (m) => w.lost.push(m),
    onRemoved: (m) => w.removed.push(m),
    onRolledBack: (m) => w.rolledBack.push(m),
  });
  return w;
}

const hello = (from: string, extra: object = {}) => ({ from, remote: '127.0.0.1:1', ...extra });

test('members are admitted; an id outside the configuration is refused with this node’s index and cluster id', async (t) => {
  const w = await world();
  t.is(await w.guard.admit(hello('n2', { cluster: 'c1', incarnation: 'inc-n2' })), undefined);
  t.like(await w.guard.admit(hello('n9', { incarnation: 'x' })), { code: 'not-member', index: 5, cluster: 'c1' });
  t.like(await w.guard.admit(hello('n2', { cluster: 'other', incarnation: 'inc-n2' })), { code: 'cluster' });
  // A peer without a cluster id yet (a new seed) is not refused for it.
  t.is(await w.guard.admit(hello('n2', { incarnation: 'inc-n2' })), undefined);
});

test('a known incarnation must match; the first one seen is recorded durably before admission completes', async (t) => {
  const w = await world();
  t.like(await w.guard.admit(hello('n2', { incarnation: 'inc-other' })), { code: 'incarnation', expect: { incarnation: 'inc-n2', index: 5 } });
  t.like(await w.guard.admit(hello('n2')), { code: 'incarnation' }, 'no incarnation at all, when one is known, is refused too');
  const pending = w.guard.admit(hello('n3', { incarnation: 'inc-n3' }));
  t.true(pending instanceof Promise, 'first sight waits for the write');
  t.is(await pending, undefined);
  t.deepEqual([...(await readPeerIncarnations(w.db))], [['n3', { incarnation: 'inc-n3', index: 5 }]]);
  t.like(await w.guard.admit(hello('n3', { incarnation: 'inc-n3-again' })), { code: 'incarnation', expect: { incarnation: 'inc-n3' } });
  t.like(await w.guard.admit(hello('n3')), { code: 'incarnation' });
  t.deepEqual(w.guard.known('n3'), { incarnation: 'inc-n3', index: 5 });
  // A legacy peer (no incarnation, none known) is admitted without recording anything.
  const fresh = await world();
  t.is(await fresh.guard.admit(hello('n3')), undefined);
  t.is(fresh.guard.known('n3'), undefined);
  // The hello to a peer carries what this node knows of it.
  t.deepEqual(w.guard.helloFor('n2'), { cluster: 'c1', incarnation: 'inc-n1', expect: { incarnation: 'inc-n2', index: 5 } });
});

test('a peer that knows another incarnation of this node, learned at or after this node became a member, means this node lost its state', async (t) => {
  const w = await world();
  t.is(await w.guard.admit(hello('n2', { incarnation: 'inc-n2', expect: { incarnation: 'inc-n1', index: 5 } })), undefined);
  t.deepEqual(w.lost, []);
  const refusal = await w.guard.admit(hello('n2', { incarnation: 'inc-n2', expect: { incarnation: 'inc-old', index: 3 } }));
  t.like(refusal, { code: 'stopping' });
  t.is(w.lost.length, 1);
  t.regex(w.lost[0]!, /knows this node \(n1\) as incarnation inc-old.*this data directory is incarnation inc-n1.*--join/);
  // A joined node (since 40) ignores what a lagging peer knew before it joined.
  const joined = await world({ identity: { memberId: 'n1', incarnation: 'inc-n1', createdAt: 'x', since: 40 } });
  t.is(await joined.guard.admit(hello('n2', { incarnation: 'inc-n2', expect: { incarnation: 'inc-old', index: 39 } })), undefined);
  joined.guard.onRefused('n2', { code: 'incarnation', message: 'm', expect: { incarnation: 'inc-old', index: 12 } });
  t.deepEqual(joined.lost, []);
  joined.guard.onRefused('n2', { code: 'incarnation', message: 'm', expect: { incarnation: 'inc-old', index: 40 } });
  t.is(joined.lost.length, 1);
});

test('removed: only a refusal from a peer of this cluster that has applied past this node’s membership counts', async (t) => {
  const w = await world({ identity: { memberId: 'n1', incarnation: 'inc-n1', createdAt: 'x', since: 10 } });
  w.guard.onRefused('n2', { code: 'not-member', message: 'm', index: 9, cluster: 'c1' });
  w.guard.onRefused('n2', { code: 'not-member', message: 'm', index: 50, cluster: 'other' });
  w.guard.onRefused('n2', { code: 'not-member', message: 'm', index: 50 });
  w.guard.onRefused('n2', { code: 'not-ready', message: 'm', index: 50, cluster: 'c1' });
  t.deepEqual(w.removed, []);
  w.guard.onRefused('n2', { code: 'not-member', message: 'm', index: 10, cluster: 'c1' });
  t.is(w.removed.length, 1);
  // While a join is unconfirmed nothing counts.
  const joining = await world({ identity: { memberId: 'n1', incarnation: 'i', createdAt: 'x', since: null } });
  joining.guard.onRefused('n2', { code: 'not-member', message: 'm', index: 99, cluster: 'c1' });
  t.deepEqual(joining.removed, []);
});

test('a node that knows no configuration yet refuses without claiming anything; with a seed list it admits the seeds', async (t) => {
  const w = await world();
  w.state = initialState();
  w.conf = { voters: [], learners: [] };
  t.like(await w.guard.admit(hello('n2', { incarnation: 'i' })), { code: 'not-ready' });
  t.false('index' in ((await w.guard.admit(hello('n2', { incarnation: 'i' }))) ?? {}));
  w.seeds = new Set(['n2']);
  t.is(await w.guard.admit(hello('n2', { incarnation: 'i' })), undefined);
  t.like(await w.guard.admit(hello('n3', { incarnation: 'i' })), { code: 'not-member' });
});

test('a joined node without a configuration yet also admits a peer its join answer did not list, if it says it is of the cluster joined', async (t) => {
  const w = await world();
  w.state = initialState();
  w.conf = { voters: [], learners: [] };
  w.seeds = new Set(['n2']);
  w.joined = 'c1';
  t.is(await w.guard.admit(hello('n3', { cluster: 'c1', incarnation: 'i3' })), undefined, 'a member added after the listing');
  t.like(await w.guard.admit(hello('n5', { cluster: 'other', incarnation: 'i5' })), { code: 'not-member' });
  t.like(await w.guard.admit(hello('n5', { incarnation: 'i5' })), { code: 'not-member' }, 'no cluster id: no claim');
  // Once it holds a configuration, the configuration alone decides.
  w.conf = { voters: ['n1', 'n2'], learners: [] };
  t.like(await w.guard.admit(hello('n6', { cluster: 'c1', incarnation: 'i6' })), { code: 'not-member' });
});

test('first-seen incarnations are forgotten when the member is removed or its record gets another one', async (t) => {
  const w = await world();
  await w.guard.admit(hello('n3', { incarnation: 'inc-n3' }));
  const prev = w.state;
  w.state = applyConfChangeEntry(prev, 6, memberConfChange({ requestId: 'rm', command: { type: 'RemoveMember', id: 'n3' } })).state;
  await w.guard.membersChanged(prev, w.state);
  t.is(w.guard.known('n3'), undefined);
  t.deepEqual([...(await readPeerIncarnations(w.db))], []);
});

test('seeds whose bootstrap logs differ never talk: a stray seed is refused, and stops only when told so by an established cluster', async (t) => {
  const w = await world({ identity: { memberId: 'n1', incarnation: 'inc-n1', createdAt: 'x', since: 0, bootstrap: 'digest-a' } });
  t.like(await w.guard.admit(hello('n3', { incarnation: 'inc-n3', bootstrap: 'digest-b' })), { code: 'bootstrap', cluster: 'c1' });
  t.is(await w.guard.admit(hello('n3', { incarnation: 'inc-n3', bootstrap: 'digest-a' })), undefined);
  t.deepEqual(w.guard.helloFor('n3').bootstrap, 'digest-a');
  // This node is established (cluster c1): a refusal from a fresh seed does not stop it.
  w.guard.onRefused('n3', { code: 'bootstrap', message: 'm' });
  t.deepEqual(w.lost, []);
  // A fresh stray seed told by an established member stops.
  const stray = await world({ identity: { memberId: 'n1', incarnation: 'inc-n1', createdAt: 'x', since: 0, bootstrap: 'digest-b' } });
  stray.state = initialState();
  stray.guard.onRefused('n2', { code: 'bootstrap', message: 'not a seed', cluster: 'c1' });
  t.is(stray.lost.length, 1);
  t.regex(stray.lost[0]!, /--join/);
});

test('a peer that shows an older start than the latest seen under its incarnation (a copy of its directory put back) is refused; a later start is recorded, synced, first', async (t) => {
  const w = await world();
  const n2 = (n: number, id: string) => hello('n2', { cluster: 'c1', incarnation: 'inc-n2', start: { n, id } });
  t.is(await w.guard.admit(n2(3, 'a')), undefined);
  t.deepEqual((await readPeerStarts(w.db)).get('n2'), { incarnation: 'inc-n2', n: 3, id: 'a' }, 'recorded durably before the admission');
  t.is(await w.guard.admit(n2(3, 'a')), undefined, 'the same start reconnecting');
  // The directory copied while at start 2 (or 3), put back, started again: start 3 under another id.
  t.like(await w.guard.admit(n2(3, 'b')), { code: 'rolled-back', expect: { incarnation: 'inc-n2', start: { n: 3, id: 'a' } } });
  t.like(await w.guard.admit(n2(2, 'c')), { code: 'rolled-back' });
  t.is(await w.guard.admit(n2(4, 'd')), undefined, 'a later start (a restart) is admitted');
  t.deepEqual((await readPeerStarts(w.db)).get('n2'), { incarnation: 'inc-n2', n: 4, id: 'd' });
  // What this node says to n2 in its own hello.
  t.like(w.guard.helloFor('n2').expect, { incarnation: 'inc-n2', start: { n: 4, id: 'd' } });
  // A peer that predates starts, and the start of a peer seen for the first time: admitted.
  t.is(await w.guard.admit(hello('n2', { cluster: 'c1', incarnation: 'inc-n2' })), undefined);
  t.is(await w.guard.admit(hello('n3', { cluster: 'c1', incarnation: 'inc-n3', start: { n: 1, id: 'e' } })), undefined);
  t.deepEqual(w.rolledBack, []);
});

test('this node learns it is an older copy of itself from a peer\'s hello or refusal (a later start, or the same count under another id), never from an older start or another incarnation', async (t) => {
  const me: NodeIdentity = { memberId: 'n1', incarnation: 'inc-n1', createdAt: '2026-01-01T00:00:00.000Z', since: 0, start: { n: 5, id: 'mine' } };
  const fine = await world({ identity: me });
  for (const start of [{ n: 4, id: 'x' }, { n: 5, id: 'mine' }]) {
    t.is(await fine.guard.admit(hello('n2', { cluster: 'c1', incarnation: 'inc-n2', expect: { incarnation: 'inc-n1', index: 3, start } })), undefined);
  }
  fine.guard.onRefused('n2', { code: 'rolled-back', message: 'x', expect: { incarnation: 'other', index: 3, start: { n: 9, id: 'z' } } });
  t.deepEqual(fine.rolledBack, []);
  t.deepEqual(fine.lost.length, 1, 'another incarnation is lost state, as before');

  const copy = await world({ identity: me });
  await copy.guard.admit(hello('n2', { cluster: 'c1', incarnation: 'inc-n2', expect: { incarnation: 'inc-n1', index: 3, start: { n: 5, id: 'other' } } }));
  t.is(copy.rolledBack.length, 1);
  t.regex(copy.rolledBack[0]!, /older copy of the directory/);
  t.regex(copy.rolledBack[0]!, /--join/);

  const refused = await world({ identity: me });
  refused.guard.onRefused('n3', { code: 'rolled-back', message: 'x', index: 7, cluster: 'c1', expect: { incarnation: 'inc-n1', index: 3, start: { n: 6, id: 'later' } } });
  t.is(refused.rolledBack.length, 1);
  t.deepEqual(refused.lost, []);
});
