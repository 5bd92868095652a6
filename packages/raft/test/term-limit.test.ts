// Issue 8 item 6: a term at or near the limit, or far ahead of ours, is refused
// and never adopted, whoever sends it; otherwise one message wedges the cluster
// for good (no later election can use a higher term).
import test from 'ava';
import { InvalidMessage, validateMessage, type Message, type MessageType } from '../src/index.js';
import { MAX_TERM, MAX_TERM_JUMP } from '../src/core/validate.js';
import { E, Scenario } from './scenario.js';

const msg = (type: MessageType, from: string, to: string, term: number, extra: Partial<Message> = {}): Message => ({
  type, from, to, term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 1, lease: 0, ...extra,
});

/** The cluster still elects a leader at a sane term and commits a write. */
function stillWorks(t: import('ava').ExecutionContext, s: Scenario): void {
  for (const id of s.up()) t.true(s.node(id).term < 100, `${id} kept a sane term (${s.node(id).term})`);
  s.isolate('n1'); // force an election among the others
  s.tick(undefined, 4 * E);
  s.heal();
  s.tick(undefined, 2);
  const l = s.leader();
  t.truthy(l, 'a leader is elected');
  t.true(s.node(l!).term < 100);
  t.true(s.propose(l!, 'after').ok);
  s.tick(undefined, 2);
  t.true(s.applied('n2').includes('after'), 'and commits');
}

test('one heartbeat with term 2^40 does not wedge the cluster (it did: every node adopted it and no election could follow)', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  for (const to of ['n2', 'n3']) t.false(s.node(to).step(msg('MsgHeartbeat', 'n1', to, 2 ** 40)));
  t.false(s.node('n1').step(msg('MsgHeartbeat', 'n2', 'n1', 2 ** 40)));
  s.stabilize();
  stillWorks(t, s);
  const v = validateMessage(msg('MsgHeartbeat', 'n1', 'n2', 2 ** 40));
  t.true(v instanceof InvalidMessage, 'a transport refuses (and logs) it on arrival');
  t.regex((v as Error).message, /term beyond/);
});

const SENDERS: [string, MessageType, string][] = [
  ['leader', 'MsgApp', 'n1'],
  ['leader', 'MsgHeartbeat', 'n1'],
  ['candidate', 'MsgVote', 'n2'],
  ['pre-candidate', 'MsgPreVote', 'n2'],
  ['response', 'MsgAppResp', 'n2'],
  ['response', 'MsgHeartbeatResp', 'n2'],
  ['response', 'MsgVoteResp', 'n2'],
  ['response', 'MsgPreVoteResp', 'n2'],
];

for (const [role, type, from] of SENDERS) {
  test(`a ${role}'s ${type} with a term at, near or far beyond the limit is refused and never adopted`, (t) => {
    const s = Scenario.cluster(3);
    s.elect('n1');
    s.tick(undefined, E + 1); // outside the start-up windows: a vote request would be heard
    const to = from === 'n1' ? 'n3' : 'n1';
    const before = s.node(to).term;
    for (const term of [2 ** 40, 2 ** 40 - 1, MAX_TERM + 1, before + MAX_TERM_JUMP + 1]) {
      t.false(s.node(to).step(msg(type, from, to, term)), `term ${term} refused`);
      t.is(s.node(to).term, before, `term ${term} not adopted`);
      t.false(s.node(to).hasReady() && s.node(to).ready().messages.length > 0, 'and not answered');
    }
    stillWorks(t, s);
  });
}

test('the bounds: MAX_TERM itself is valid, and a jump of exactly MAX_TERM_JUMP is adopted (no legitimate gap comes near it)', (t) => {
  t.false(validateMessage(msg('MsgAppResp', 'n2', 'n1', MAX_TERM)) instanceof InvalidMessage);
  t.true(validateMessage(msg('MsgAppResp', 'n2', 'n1', MAX_TERM + 1)) instanceof InvalidMessage);
  t.true(validateMessage(msg('MsgAppResp', 'n2', 'n1', 1, { logTerm: MAX_TERM + 1 })) instanceof InvalidMessage);
  const s = Scenario.cluster(3);
  s.elect('n1');
  const term = s.node('n1').term;
  s.node('n1').step(msg('MsgAppResp', 'n2', 'n1', term + MAX_TERM_JUMP));
  t.is(s.node('n1').term, term + MAX_TERM_JUMP);
  t.is(s.node('n1').role, 'follower');
});
