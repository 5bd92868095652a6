// Thesis §10.2.1: the leader writes its log in parallel with replicating it. Its
// appends may leave before its own write (mayPrecedePersistence), so it must count its
// own copy toward a commit only once the write is done — else one follower's copy plus
// the leader's unwritten one would "commit" an entry that a leader crash loses.
import test from 'ava';
import { mayPrecedePersistence, type Message, type MessageType } from '../src/index.js';
import { text } from './sim/cluster.js';
import { Scenario } from './scenario.js';

test('a leader sends its appends before its own write, but counts its copy only once written', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.stabilize();
  const n1 = s.n('n1');
  const p = n1.node.propose(text('x'));
  if (!p.ok) throw new Error(`propose refused: ${p.reason}`);
  // The driver takes the Ready and sends what may go first; the write stays in flight.
  const rd = n1.node.ready();
  t.deepEqual(rd.entries.map((e) => e.index), [p.index]);
  const early = rd.messages.filter(mayPrecedePersistence);
  const toN2 = early.find((m) => m.type === 'MsgApp' && m.to === 'n2');
  t.truthy(toN2, 'the append to n2 may leave before n1 has written the entry');
  // n2 writes it and acknowledges; the acknowledgement reaches n1 while its write is in flight.
  t.true(s.c.deliver(toN2!));
  s.c.flush('n2');
  const ack = s.c.network.drain().find((m) => m.type === 'MsgAppResp' && m.from === 'n2' && m.index === p.index);
  t.truthy(ack);
  t.true(n1.node.step(ack!));
  t.true(n1.node.commitIndex < p.index, 'n2 alone holds the entry on disk: not committed');
  // n1's write completes: now two of three hold it.
  n1.storage.save(rd);
  n1.node.advance(rd);
  t.is(n1.node.commitIndex, p.index);
  t.deepEqual(n1.node.ready().committedEntries.map((e) => e.index), [p.index]);
});

test('a crash between sending and writing loses nothing committed', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  s.stabilize();
  const n1 = s.n('n1');
  const p = n1.node.propose(text('lost'));
  if (!p.ok) throw new Error(`propose refused: ${p.reason}`);
  const rd = n1.node.ready();
  const toN2 = rd.messages.find((m) => m.type === 'MsgApp' && m.to === 'n2')!;
  s.c.deliver(toN2);
  s.c.flush('n2');
  for (const m of s.c.network.drain()) if (m.to === 'n1') n1.node.step(m);
  // n1 dies before its write; n3 never saw the entry. n2 and n3 go on, then n1 returns.
  s.crash('n1');
  s.elect('n2');
  s.restart('n1');
  s.tick(undefined, 3);
  t.is(s.node('n1').termAt(p.index), p.term, 'the entry survives on n2 and is replicated');
  for (const id of ['n1', 'n2', 'n3']) t.true(s.applied(id).includes('lost'), `${id} applies it once n2 leads`);
});

test('only the leader\'s replication traffic and the ReadIndex exchange may precede persistence', (t) => {
  const m = (type: MessageType): Message => ({ type, from: 'a', to: 'b', term: 1, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0 });
  const early = ['MsgApp', 'MsgHeartbeat', 'MsgSnap', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp'];
  const late = ['MsgAppResp', 'MsgHeartbeatResp', 'MsgSnapResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgPreVoteResp'];
  for (const type of early) t.true(mayPrecedePersistence(m(type as MessageType)), type);
  for (const type of late) t.false(mayPrecedePersistence(m(type as MessageType)), type);
});
