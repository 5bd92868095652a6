// Unit tests of the core's building blocks.
import test from 'ava';
import {
  applyConfChange,
  bootstrapEntries,
  decodeConfChange,
  encodeConfChange,
  leaseTicks,
  MAX_LEASE_MS,
  RawNode,
  validateMessage,
  InvalidMessage,
  type Entry,
} from '../src/index.js';
import { Inflights } from '../src/core/inflights.js';
import { RaftLog } from '../src/core/log.js';
import { quorumValue, voteResult } from '../src/core/quorum.js';
import { MemoryStorage, storageContract } from '../src/testing/index.js';

const ent = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index & 255]) });

for (const c of storageContract((confState) => new MemoryStorage({ confState }), (s) => s)) {
  test(`storage contract (MemoryStorage): ${c.name}`, async (t) => {
    await c.run();
    t.pass();
  });
}

test('MemoryStorage: append and lookup stay O(1) over a long compacted log', (t) => {
  const s = new MemoryStorage();
  const n = 300_000;
  const batch: Entry[] = [];
  for (let i = 1; i <= n; i++) {
    batch.push(ent(i, 1));
    if (batch.length === 1000) {
      s.append(batch);
      batch.length = 0;
      if (i % 10_000 === 0) {
        s.createSnapshot(i - 500, { voters: ['n1'], learners: [] }, new Uint8Array());
        s.compact(i - 500);
      }
    }
  }
  t.is(s.lastIndex(), n);
  t.is(s.firstIndex(), n - 500 + 1);
  t.is(s.term(n - 500), 1);
  t.is(s.entries(n - 10, n + 1, Infinity).length, 11);
  t.true((s as unknown as { ents: unknown[] }).ents.length < 5_000, 'the dead prefix is released');
});

test('RaftLog: unstable entries overlay storage; conflicts truncate (§5.3)', (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
  const log = new RaftLog(s, Infinity);
  t.is(log.lastIndex(), 3);
  t.deepEqual(log.maybeAppend(3, 2, [ent(4, 3), ent(5, 3)]), { lastNewIndex: 5, writtenFrom: 4 });
  t.is(log.maybeAppend(5, 9, []), undefined, 'mismatched previous term');
  // Overwrite from index 3 with a newer term.
  t.deepEqual(log.maybeAppend(2, 1, [ent(3, 4)]), { lastNewIndex: 3, writtenFrom: 3 });
  t.is(log.lastIndex(), 3);
  t.is(log.term(3), 4);
  t.deepEqual(log.slice(1, 4, Infinity)!.map((e) => e.term), [1, 1, 4]);
  log.commitTo(3);
  t.is(log.maybeAppend(1, 1, [ent(2, 5)]), undefined, 'never overwrite a committed entry');
  t.is(log.findConflictByTerm(3, 3), 2);
  t.true(log.isUpToDate(3, 4));
  t.false(log.isUpToDate(9, 3));
});

test('RaftLog.findConflictByTerm: binary search agrees with a linear scan on random logs, with and without compaction', (t) => {
  // Seeded LCG: deterministic.
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor((seed / 2147483648) * n); // high bits: an LCG's low bits cycle quickly
  };
  for (let round = 0; round < 200; round++) {
    const s = new MemoryStorage();
    const ents: Entry[] = [];
    let term = 1;
    const n = 1 + rnd(60);
    for (let i = 1; i <= n; i++) {
      if (rnd(4) === 0) term += 1 + rnd(3);
      ents.push(ent(i, term));
    }
    s.append(ents);
    const compactTo = rnd(3) === 0 ? rnd(n) : 0;
    if (compactTo > 0) {
      s.createSnapshot(compactTo, { voters: ['n1'], learners: [] }, new Uint8Array());
      s.compact(compactTo);
    }
    const log = new RaftLog(s, Infinity);
    const dummy = log.firstIndex() - 1;
    const linear = (i: number, tt: number): number => {
      for (; i > dummy; i--) {
        const ti = log.term(i);
        if (ti === undefined || ti <= tt) return i;
      }
      return i;
    };
    for (let q = 0; q < 20; q++) {
      const i = rnd(n + 3);
      const tt = rnd(term + 3);
      t.is(log.findConflictByTerm(i, tt), linear(i, tt), `log terms ${ents.map((e) => e.term).join(',')} compacted to ${compactTo}, i=${i}, t=${tt}`);
    }
  }
});

test('Inflights: bounded by count and by bytes, freed in order', (t) => {
  const f = new Inflights(3, 100);
  f.add(1, 10);
  f.add(2, 10);
  t.false(f.full());
  f.add(3, 10);
  t.true(f.full());
  f.freeLE(2);
  t.is(f.count, 1);
  f.add(10, 95);
  t.true(f.full(), 'byte bound');
  f.freeFirstOne();
  f.freeLE(10);
  t.is(f.count, 0);
  t.is(f.bytes, 0);
});

test('quorum: commit index and vote tally over voters only', (t) => {
  const match: Record<string, number> = { a: 5, b: 3, c: 9, d: 1, e: 7 };
  t.is(quorumValue(['a', 'b', 'c', 'd', 'e'], (id) => match[id]!, 0), 5);
  t.is(quorumValue(['a', 'b', 'c'], (id) => match[id]!, 0), 5);
  t.is(quorumValue(['a', 'b'], (id) => match[id]!, 0), 3);
  const votes = new Map([['a', true], ['b', true], ['x', true]]);
  t.is(voteResult(['a', 'b', 'c'], votes), 'won');
  t.is(voteResult(['a', 'b', 'c', 'd', 'e'], votes), 'pending');
  t.is(voteResult(['c', 'd', 'e'], new Map([['c', false], ['d', false]])), 'lost');
});

test('membership: single-server changes and their encoding (thesis §4.1)', (t) => {
  const cs = { voters: ['n1', 'n2', 'n3'], learners: [] };
  t.deepEqual(applyConfChange(cs, { type: 'addLearner', nodeId: 'n4' }), { voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  t.deepEqual(applyConfChange({ voters: ['n1'], learners: ['n4'] }, { type: 'addVoter', nodeId: 'n4' }), {
    voters: ['n1', 'n4'],
    learners: [],
  });
  t.is(typeof applyConfChange(cs, { type: 'addVoter', nodeId: 'n1' }), 'string');
  t.is(typeof applyConfChange({ voters: ['n1'], learners: [] }, { type: 'removeNode', nodeId: 'n1' }), 'string');
  t.deepEqual(decodeConfChange(encodeConfChange({ type: 'removeNode', nodeId: 'n2' })), { type: 'removeNode', nodeId: 'n2' });
  t.deepEqual(decodeConfChange(encodeConfChange({ type: 'addLearner', nodeId: 'n4', context: '{"a":1}' })), { type: 'addLearner', nodeId: 'n4', context: '{"a":1}' });
  t.deepEqual(decodeConfChange(new TextEncoder().encode('{"type":"addLearner","nodeId":"n4","context":7}')), { type: 'addLearner', nodeId: 'n4' }, 'a context that is not a string is dropped, the change kept');
  t.is(decodeConfChange(new TextEncoder().encode('{"type":"nuke"}')), undefined);
  t.is(decodeConfChange(new Uint8Array([0xff])), undefined);
  t.deepEqual(bootstrapEntries(['n2', 'n1']).map((e) => [e.index, e.term, decodeConfChange(e.data)?.nodeId]), [
    [1, 1, 'n1'],
    [2, 1, 'n2'],
  ]);
});

test('validateMessage accepts well-formed messages and names what is wrong otherwise', (t) => {
  const ok = { type: 'MsgHeartbeat', from: 'n1', to: 'n2', term: 3, logTerm: 0, index: 0, commit: 2, reject: false, rejectHint: 0, tick: 7, lease: 429 };
  t.deepEqual(validateMessage(ok) as unknown, ok);
  t.deepEqual(validateMessage({ ...ok, extra: 1 }) as unknown, ok, 'unknown fields are dropped');
  const bad = validateMessage({ ...ok, commit: -1 });
  t.true(bad instanceof InvalidMessage);
  t.regex((bad as Error).message, /commit/);
  t.true(validateMessage({ ...ok, type: 'MsgNope' }) instanceof InvalidMessage);
  t.false(validateMessage(JSON.parse(JSON.stringify(ok))) instanceof InvalidMessage, 'survives a JSON round trip');
  // lease: the promise a round asks for, in ms; absent (a peer that predates it) reads as 0.
  const { lease: _, ...old } = ok;
  t.is((validateMessage(old) as { lease: number }).lease, 0);
  t.is((validateMessage({ ...ok, lease: MAX_LEASE_MS }) as { lease: number }).lease, MAX_LEASE_MS);
  for (const lease of [-1, 1.5, '429', null, MAX_LEASE_MS + 1]) {
    const v = validateMessage({ ...ok, lease });
    t.true(v instanceof InvalidMessage, `lease ${String(lease)}`);
    t.regex((v as Error).message, /lease/);
  }
  // §5.3: entries are consecutive, their terms never decrease nor exceed the sender's term.
  const app = { ...ok, type: 'MsgApp', index: 4, logTerm: 2, commit: 0 };
  const ent = (index: number, term: number) => ({ index, term, type: 'normal', data: new Uint8Array(0) });
  t.false(validateMessage({ ...app, entries: [ent(5, 2), ent(6, 3)] }) instanceof InvalidMessage);
  t.true(validateMessage({ ...app, entries: [ent(5, 4)] }) instanceof InvalidMessage, 'an entry above the sender\'s term');
  t.true(validateMessage({ ...app, entries: [ent(5, 1)] }) instanceof InvalidMessage, 'an entry below the previous term');
  t.true(validateMessage({ ...app, entries: [ent(6, 2)] }) instanceof InvalidMessage, 'a gap');
});

test('a heartbeat claiming a commit beyond the follower\'s log moves its commit no further than its last entry', (t) => {
  const storage = new MemoryStorage({ bootstrap: ['n1', 'n2', 'n3'] });
  const n2 = new RawNode({ id: 'n2', storage, random: () => 0.5 });
  const last = n2.lastIndex;
  n2.step({ type: 'MsgHeartbeat', from: 'n1', to: 'n2', term: 2, logTerm: 0, index: 0, commit: last + 100, reject: false, rejectHint: 0, tick: 3, lease: 0 });
  t.is(n2.commitIndex, last);
});

test('leaseTicks: L·(1+ρ) < (E−1)·(1−ρ)', (t) => {
  for (const e of [3, 5, 10, 20, 50]) {
    for (const rho of [0, 0.05, 0.1, 0.2]) {
      const l = leaseTicks(e, rho);
      t.true(l * (1 + rho) < (e - 1) * (1 - rho), `E=${e} ρ=${rho} L=${l}`);
      t.true((l + 1) * (1 + rho) >= (e - 1) * (1 - rho) - 1e-9, `E=${e} ρ=${rho}: L=${l} is the largest`);
    }
  }
  t.is(leaseTicks(10, 0.1), 7);
});

test('RawNode: Ready contract — one outstanding Ready, advance marks entries stable and applied', (t) => {
  const storage = new MemoryStorage({ bootstrap: ['n1'] });
  const n = new RawNode({ id: 'n1', storage, random: () => 0 });
  let rd = n.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1], 'the bootstrap entry is applied');
  t.throws(() => n.ready());
  storage.save(rd);
  n.advance(rd);
  for (let i = 0; i < 20 && n.role !== 'leader'; i++) {
    n.tick();
    while (n.hasReady()) {
      rd = n.ready();
      storage.save(rd);
      n.advance(rd);
    }
  }
  t.is(n.role, 'leader');
  const p = n.propose(new Uint8Array([42]));
  t.true(p.ok);
  rd = n.ready();
  t.is(rd.entries.at(-1)?.data[0], 42);
  t.true(rd.mustSync);
  t.not(rd.hardState?.commit, p.ok ? p.index : -1, 'not committed before it is on the leader\'s own disk (thesis §10.2.1)');
  storage.save(rd);
  n.advance(rd);
  rd = n.ready();
  t.is(rd.hardState?.commit, p.ok ? p.index : -1, 'a single voter commits once its write is durable');
  t.deepEqual(rd.committedEntries.map((e) => e.index), [p.ok ? p.index : -1]);
  storage.save(rd);
  n.advance(rd);
  t.is(n.status().applied, p.ok ? p.index : -1);
  t.false(n.hasReady());
  t.is(n.confStateAt(1)?.voters[0], 'n1');
});

test('MemoryNetwork: partitions, one-way cuts and seeded faults', async (t) => {
  const { MemoryNetwork } = await import('../src/testing/index.js');
  const msg = (from: string, to: string) =>
    ({ type: 'MsgHeartbeat', from, to, term: 1, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0 }) as const;
  const net = new MemoryNetwork();
  net.partition(['a'], ['b', 'c']);
  net.cutLink('b', 'c');
  net.send([msg('a', 'b'), msg('b', 'a'), msg('b', 'c'), msg('c', 'b')]);
  t.deepEqual(net.drain().map((m) => `${m.from}${m.to}`), ['cb']);
  net.heal();
  let now = 0;
  let seed = 1;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const lossy = new MemoryNetwork({ random: rnd, now: () => now });
  lossy.faults = { drop: 0.5, duplicate: 0.5, minDelay: 5, maxDelay: 10 };
  lossy.send(Array.from({ length: 200 }, () => msg('a', 'b')));
  t.is(lossy.popDue(4), undefined, 'nothing before the minimum delay');
  now = 10;
  const got = lossy.drain().length;
  t.true(got > 100 && got < 200, `delivered ${got} of 200 with 50% loss and 50% duplication`);
});

test('RawNode.reportUnreachable moves a pipelining follower back to probing', (t) => {
  const storages = ['n1', 'n2'].map(() => new MemoryStorage({ bootstrap: ['n1', 'n2'] }));
  const nodes = ['n1', 'n2'].map((id, i) => new RawNode({ id, storage: storages[i]!, random: () => 0.9 }));
  const pump = () => {
    for (let round = 0; round < 50; round++) {
      const msgs = [];
      for (let i = 0; i < 2; i++) {
        while (nodes[i]!.hasReady()) {
          const rd = nodes[i]!.ready();
          storages[i]!.save(rd);
          msgs.push(...rd.messages);
          nodes[i]!.advance(rd);
        }
      }
      if (msgs.length === 0) return;
      for (const m of msgs) nodes[m.to === 'n1' ? 0 : 1]!.step(m);
    }
  };
  for (let i = 0; i < 10; i++) for (const n of nodes) n.tick(); // out of the boot-time lease
  t.true(nodes[0]!.campaign().ok);
  pump();
  t.is(nodes[0]!.role, 'leader');
  t.is(nodes[0]!.status().progress?.['n2']?.state, 'replicate');
  nodes[0]!.reportUnreachable('n2');
  t.is(nodes[0]!.status().progress?.['n2']?.state, 'probe');
});

test('RaftConfig.mayCampaign: while it says no, a voter neither pre-votes nor campaigns (timeouts, campaign()), yet still grants votes', (t) => {
  const storage = new MemoryStorage({ bootstrap: ['n1', 'n2', 'n3'] });
  let allowed = false;
  const n = new RawNode({ id: 'n1', storage, random: () => 0, mayCampaign: () => allowed });
  const sent: string[] = [];
  const pump = (): void => {
    while (n.hasReady()) {
      const rd = n.ready();
      storage.save(rd);
      for (const m of rd.messages) sent.push(m.type);
      n.advance(rd);
    }
  };
  pump();
  for (let i = 0; i < 100; i++) {
    n.tick();
    pump();
  }
  t.deepEqual(sent, [], 'ten election timeouts: nothing sent');
  t.is(n.role, 'follower');
  t.deepEqual(n.campaign(), { ok: false, reason: 'campaignHeld', leader: null });
  // A vote request from a peer (its own restart window over) is still answered.
  n.step({ type: 'MsgVote', from: 'n2', to: 'n1', term: 2, logTerm: 1, index: n.lastIndex, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0 });
  pump();
  t.deepEqual(sent, ['MsgVoteResp']);
  allowed = true;
  sent.length = 0;
  for (let i = 0; i < 100 && !sent.includes('MsgPreVote'); i++) {
    n.tick();
    pump();
  }
  t.true(sent.includes('MsgPreVote'), 'allowed again: it campaigns');
});
