// Seeded fuzzing of RawNode.step with malformed and hostile peer input: it
// never throws, drops what validateMessage refuses without any effect, and
// whatever it accepts keeps the server's local invariants.
import test from 'ava';
import { InvalidMessage, MESSAGE_TYPES, validateMessage, type Message } from '../src/index.js';
import { Scenario } from './scenario.js';
import { Prng } from './sim/prng.js';

const JUNK: readonly unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  -0,
  '',
  'n1',
  'x'.repeat(300),
  '__proto__',
  'constructor',
  [],
  [1, 2],
  {},
  { length: 3 },
  new Uint8Array(3),
  Object.create(null),
  JSON.parse('{"__proto__": {"term": 5, "polluted": true}}'),
  () => 1,
  Symbol('s'),
  10n,
];

function hostileObject(rng: Prng): unknown {
  const r = rng.int(4);
  if (r === 0) {
    return new Proxy(
      {},
      {
        get() {
          throw new Error('proxy');
        },
        has() {
          throw new Error('proxy');
        },
      },
    );
  }
  if (r === 1) {
    return Object.defineProperty({ type: 'MsgHeartbeat', from: 'n1', to: 'n2' }, 'term', {
      get() {
        throw new Error('getter');
      },
      enumerable: true,
    });
  }
  if (r === 2) return JSON.parse('{"type":"MsgApp","from":"n1","to":"n2","__proto__":{"term":99}}');
  return rng.pick(JUNK);
}

function mutate(rng: Prng, m: Message, ids: readonly string[], term: number): Record<string, unknown> {
  const x: Record<string, unknown> = { ...m };
  const fields = ['type', 'from', 'to', 'term', 'logTerm', 'index', 'commit', 'reject', 'rejectHint', 'tick', 'entries', 'snapshot', 'context'];
  for (let k = rng.int(3) + 1; k > 0; k--) {
    const f = rng.pick(fields);
    const r = rng.int(6);
    if (r === 0) x[f] = rng.pick(JUNK);
    else if (r === 1) delete x[f];
    else if (r === 2 && typeof x[f] === 'number') x[f] = (x[f] as number) + rng.range(-3, 3);
    else if (r === 3) x[f] = f === 'type' ? rng.pick(MESSAGE_TYPES) : f === 'from' || f === 'to' ? rng.pick(ids) : rng.range(0, term + 2);
    else if (r === 4 && Array.isArray(x['entries']) && x['entries'].length > 0) {
      const es = (x['entries'] as Record<string, unknown>[]).map((e) => ({ ...e }));
      const e = rng.pick(es);
      e[rng.pick(['term', 'index', 'type', 'data'])] = rng.chance(0.5) ? rng.pick(JUNK) : rng.range(0, term + 2);
      x['entries'] = es;
    } else if (r === 5 && typeof x['snapshot'] === 'object' && x['snapshot'] !== null) {
      const c: Record<string, unknown> = { ...(x['snapshot'] as object) };
      c[rng.pick(['metadata', 'chunk', 'chunks', 'data'])] = rng.pick(JUNK);
      x['snapshot'] = c;
    }
  }
  return x;
}

interface Seen {
  term: number;
  commit: number;
  applied: number;
  terms: Map<number, number>;
}

for (const seed of [1, 2, 3, 4]) {
  test(`fuzz: step() with hostile input never throws nor corrupts state (seed ${seed})`, (t) => {
    const rng = new Prng(seed);
    const s = Scenario.cluster(3, { snapshotEvery: 4, snapshotPad: 40, raft: { snapshotChunkSize: 32 } });
    const ids = ['n1', 'n2', 'n3', 'n9', '__proto__'];
    s.elect('n1');
    for (let i = 0; i < 10; i++) s.propose('n1', `w${i}`);
    const samples = s.delivered.slice();
    const seen = new Map<string, Seen>();
    const check = (id: string, ctx: string): void => {
      const st = s.status(id);
      const prev = seen.get(id);
      t.true(st.commit <= st.lastIndex && st.applied <= st.commit, `${ctx}: ${id} commit ${st.commit} applied ${st.applied} last ${st.lastIndex}`);
      const terms = new Map<number, number>();
      for (let i = Math.max(st.firstIndex - 1, st.commit - 5); i <= st.commit; i++) terms.set(i, s.node(id).termAt(i)!);
      if (prev !== undefined) {
        t.true(st.term >= prev.term && st.commit >= prev.commit && st.applied >= prev.applied, `${ctx}: ${id} went backwards`);
        for (const [i, term] of prev.terms) {
          const now = s.node(id).termAt(i);
          if (now !== undefined && i <= st.commit) t.is(now, term, `${ctx}: ${id} committed entry ${i} changed term`);
        }
      }
      seen.set(id, { term: st.term, commit: st.commit, applied: st.applied, terms });
    };
    for (let round = 0; round < 1500; round++) {
      const to = rng.pick(['n1', 'n2', 'n3']);
      const base = rng.pick(samples);
      const term = s.node(to).term;
      let m: unknown;
      const r = rng.int(10);
      if (r === 0) m = hostileObject(rng);
      else if (r <= 6) m = mutate(rng, { ...base, to }, ids, term);
      else m = { ...base, to, term: rng.range(Math.max(0, term - 1), term + 1) };
      const invalid = (() => {
        try {
          return validateMessage(m) instanceof InvalidMessage;
        } catch {
          return true;
        }
      })();
      const before = JSON.stringify(s.status(to));
      let accepted = false;
      try {
        accepted = s.node(to).step(m);
      } catch (e) {
        t.fail(`round ${round}: step threw ${String(e)} on ${safeString(m)}`);
        return;
      }
      if (invalid) {
        t.false(accepted, `round ${round}: accepted invalid ${safeString(m)}`);
        t.false(s.node(to).hasReady() && s.node(to).ready().messages.length > 0, `round ${round}: invalid input produced output`);
        t.is(JSON.stringify(s.status(to)), before, `round ${round}: invalid input changed state`);
        continue;
      }
      try {
        s.stabilize();
      } catch (e) {
        t.fail(`round ${round}: processing ${safeString(m)} threw ${String(e)}`);
        return;
      }
      for (const id of ['n1', 'n2', 'n3']) check(id, `round ${round} (${safeString(m)})`);
      if (rng.chance(0.05)) s.tick();
    }
    // Liveness survives it too: with hostile input over, a leader emerges again.
    for (let i = 0; i < 60 * 10 && s.leader() === undefined; i++) s.tick();
    t.truthy(s.leader(), `no leader after hostile input (terms ${['n1', 'n2', 'n3'].map((id) => s.node(id).term).join(', ')})`);
  });
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.length} bytes>` : x))?.slice(0, 300) ?? String(v);
  } catch {
    return '<unprintable>';
  }
}

test('status(): a member named __proto__ is listed like any other', (t) => {
  const s = Scenario.cluster(3);
  s.elect('n1');
  t.true(s.node('n1').proposeConfChange({ type: 'addLearner', nodeId: '__proto__' }).ok);
  s.stabilize();
  const progress = s.status('n1').progress!;
  t.true(Object.prototype.hasOwnProperty.call(progress, '__proto__'));
  t.deepEqual(Object.keys(progress).sort(), ['__proto__', 'n1', 'n2', 'n3']);
  t.is(Object.getPrototypeOf(progress), Object.prototype);
});
