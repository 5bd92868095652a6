import test from 'ava';
import type { Message } from '@weldr/raft';
import { IsolationGate, MAX_ISOLATION_MS } from '../src/index.js';

const quiet = { info: () => undefined, warn: () => undefined };
const msg = { type: 'MsgHeartbeat', from: 'n2', to: 'n1', term: 1 } as unknown as Message;

test('while isolated nothing is sent or admitted; the gate opens by itself when the time is up', async (t) => {
  const sent: Message[][] = [];
  // The gate's clock is injected (a loaded machine may take longer than the isolation
  // between two statements); its own timer still runs in real time.
  let now = 0;
  const gate = new IsolationGate(quiet, () => now);
  const transport = gate.wrap({ send: (m) => sent.push([...m]) });
  transport.send([msg]);
  t.is(sent.length, 1);
  gate.isolate(50);
  t.like(gate.status(), { isolated: true });
  transport.send([msg]);
  t.false(gate.admit(msg));
  t.is(sent.length, 1, 'dropped while isolated');
  now = 50;
  await new Promise((r) => setTimeout(r, 120));
  t.deepEqual(gate.status(), { isolated: false });
  t.true(gate.admit(msg));
  transport.send([msg]);
  t.is(sent.length, 2);
});

test('heal() ends an isolation early and says whether there was one', (t) => {
  const gate = new IsolationGate(quiet);
  t.false(gate.heal('requested'));
  gate.isolate(60_000);
  t.true(gate.heal('requested'));
  t.true(gate.admit(msg));
});

test('a late timer cannot keep the node cut off: the clock decides', (t) => {
  let now = 0;
  const gate = new IsolationGate(quiet, () => now);
  gate.isolate(1000);
  now = 999;
  t.false(gate.admit(msg));
  now = 1000;
  t.true(gate.admit(msg));
  gate.heal('stopping');
});

test('durations outside 1 ms … 10 min are refused', (t) => {
  const gate = new IsolationGate(quiet);
  for (const bad of [0, -1, 1.5, MAX_ISOLATION_MS + 1, Number.NaN]) t.throws(() => gate.isolate(bad), { instanceOf: RangeError });
  t.deepEqual(gate.status(), { isolated: false });
});
