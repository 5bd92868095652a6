import test from 'ava';
import { LeastConnections, PowerOfTwo, RoundRobin, WeightedRoundRobin, createBalancer } from '../src/balancers/index.js';

interface P {
  name: string;
  weight: number;
  active: number;
}
const peers = (...weights: number[]): P[] => weights.map((weight, i) => ({ name: String.fromCharCode(97 + i), weight, active: 0 }));
const count = (picks: (P | null)[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const p of picks) out[p!.name] = (out[p!.name] ?? 0) + 1;
  return out;
};

/** Deterministic PRNG (mulberry32) so p2c tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('empty candidates give null for every balancer', (t) => {
  for (const kind of ['round-robin', 'weighted-round-robin', 'least-connections', 'power-of-two'] as const) {
    t.is(createBalancer<P>(kind, Math.random).pick([]), null, kind);
  }
});

test('round-robin rotates evenly and survives a shrinking list', (t) => {
  const rr = new RoundRobin<P>();
  const ps = peers(1, 1, 1);
  t.deepEqual(
    Array.from({ length: 6 }, () => rr.pick(ps)!.name),
    ['a', 'b', 'c', 'a', 'b', 'c'],
  );
  rr.pick(ps);
  rr.pick(ps);
  t.is(rr.pick(ps.slice(0, 1))!.name, 'a');
});

test('weighted round-robin is exact per cycle and interleaved (nginx smooth WRR)', (t) => {
  const wrr = new WeightedRoundRobin<P>();
  const ps = peers(5, 1, 1);
  const seq = Array.from({ length: 7 }, () => wrr.pick(ps)!.name);
  t.deepEqual(seq, ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  t.deepEqual(count(Array.from({ length: 700 }, () => wrr.pick(ps))), { a: 500, b: 100, c: 100 });
});

test('weighted round-robin with equal weights is plain rotation', (t) => {
  const wrr = new WeightedRoundRobin<P>();
  const ps = peers(2, 2, 2);
  t.deepEqual(count(Array.from({ length: 300 }, () => wrr.pick(ps))), { a: 100, b: 100, c: 100 });
});

/** nginx's smooth weighted round-robin, written out plainly: the reference for WeightedRoundRobin. */
function smoothReference(): (candidates: readonly P[]) => P {
  let last: readonly P[] | null = null;
  let scores: number[] = [];
  return (candidates) => {
    if (candidates !== last) {
      last = candidates;
      scores = candidates.map(() => 0);
    }
    const total = candidates.reduce((sum, c) => sum + c.weight, 0);
    candidates.forEach((c, i) => (scores[i]! += c.weight));
    let best = 0;
    for (let i = 1; i < candidates.length; i++) if (scores[i]! > scores[best]!) best = i;
    scores[best]! -= total;
    return candidates[best]!;
  };
}

test('weighted round-robin picks exactly as smooth WRR, equal weights (the O(1) path) or not, across candidate changes', (t) => {
  const random = seeded(13);
  const wrr = new WeightedRoundRobin<P>();
  const ref = smoothReference();
  for (let round = 0; round < 200; round++) {
    const n = 2 + Math.floor(random() * 12);
    const uniform = random() < 0.5;
    const w = 1 + Math.floor(random() * 5);
    const ps = peers(...Array.from({ length: n }, () => (uniform ? w : 1 + Math.floor(random() * 5))));
    const picks = 1 + Math.floor(random() * 3 * n);
    for (let i = 0; i < picks; i++) t.is(wrr.pick(ps)!.name, ref(ps).name, `round ${round} pick ${i}`);
  }
});

test('weighted round-robin over 1,000 equal origins rotates through every one', (t) => {
  const wrr = new WeightedRoundRobin<P>();
  const ps: P[] = Array.from({ length: 1000 }, (_, i) => ({ name: `o${i}`, weight: 1, active: 0 }));
  const first = Array.from({ length: 1000 }, () => wrr.pick(ps)!.name);
  t.deepEqual(first, ps.map((p) => p.name));
  t.is(wrr.pick(ps)!.name, 'o0');
});

test('least-connections picks the least loaded relative to weight, rotating ties', (t) => {
  const lc = new LeastConnections<P>();
  const ps = peers(1, 1, 1);
  ps[0]!.active = 3;
  ps[1]!.active = 1;
  ps[2]!.active = 2;
  t.is(lc.pick(ps)!.name, 'b');
  const idle = peers(1, 1, 1);
  t.deepEqual(count(Array.from({ length: 30 }, () => lc.pick(idle))), { a: 10, b: 10, c: 10 });
  const weighted = peers(4, 1);
  weighted[0]!.active = 3; // 3/4 < 1/1
  weighted[1]!.active = 1;
  t.is(lc.pick(weighted)!.name, 'a');
});

test('power-of-two: two distinct samples, the less loaded wins; seeded and reproducible', (t) => {
  const ps = peers(1, 1, 1, 1);
  const a = Array.from({ length: 50 }, () => new PowerOfTwo<P>(seeded(42)).pick(ps)!.name);
  const b = Array.from({ length: 50 }, () => new PowerOfTwo<P>(seeded(42)).pick(ps)!.name);
  t.deepEqual(a, b);
  // A heavily loaded peer is never chosen while it is compared with an idle one.
  ps[2]!.active = 100;
  const p2c = new PowerOfTwo<P>(seeded(7));
  const picks = count(Array.from({ length: 4000 }, () => p2c.pick(ps)));
  t.false('c' in picks);
  for (const n of ['a', 'b', 'd']) t.true(picks[n]! > 1000, `${n}: ${picks[n]}`);
  // With two peers both are always sampled: the idle one always wins.
  const two = peers(1, 1);
  two[0]!.active = 1;
  const p = new PowerOfTwo<P>(seeded(1));
  t.deepEqual(count(Array.from({ length: 100 }, () => p.pick(two))), { b: 100 });
});

test('power-of-two spreads load across idle peers', (t) => {
  const p = new PowerOfTwo<P>(seeded(3));
  const ps = peers(1, 1, 1);
  const c = count(Array.from({ length: 3000 }, () => p.pick(ps)));
  for (const n of ['a', 'b', 'c']) t.true(c[n]! > 800 && c[n]! < 1200, `${n}: ${c[n]}`);
});

test('a phase staggers rotations that run side by side: the first picks of N balancers (a node\'s workers) reach N different peers, and each still spreads evenly', (t) => {
  for (const kind of ['round-robin', 'weighted-round-robin', 'least-connections'] as const) {
    for (const weights of [[1, 1], [1, 1, 1], [3, 3, 3, 3], [2, 1, 1]]) {
      const ps = peers(...weights);
      const n = Math.min(weights.length, 3);
      const balancers = Array.from({ length: n }, (_, phase) => createBalancer<P>(kind, Math.random, phase));
      const first = balancers.map((b) => b.pick(ps)!.name);
      if (weights.every((w) => w === weights[0])) t.is(new Set(first).size, n, `${kind} ${weights}: first picks ${first}`);
      else t.true(new Set(first).size > 1, `${kind} ${weights}: first picks ${first}`);
      // Over whole cycles each balancer still gives every peer its share.
      const total = weights.reduce((a, w) => a + w, 0);
      for (const b of balancers) {
        const got = count(Array.from({ length: total * 10 }, () => b.pick(ps)));
        const want = Object.fromEntries(ps.map((p) => [p.name, kind === 'weighted-round-robin' ? p.weight * 10 : total * 10 / ps.length]));
        if (kind === 'weighted-round-robin' || weights.every((w) => w === weights[0])) t.deepEqual(got, want, `${kind} ${weights}`);
      }
    }
  }
  // A phase beyond the candidates wraps; phase 0 is the rotation as before.
  t.is(new RoundRobin<P>(5).pick(peers(1, 1, 1))!.name, 'c');
  t.is(new LeastConnections<P>(4).pick(peers(1, 1, 1))!.name, 'b');
  t.is(new WeightedRoundRobin<P>(7).pick(peers(1, 1, 1))!.name, 'b');
  t.deepEqual(Array.from({ length: 3 }, ((rr) => () => rr.pick(peers(1, 1, 1))!.name)(new RoundRobin<P>(0))), ['a', 'b', 'c']);
  // After the first pick, a list that shrank below the position starts again at the first
  // candidate, as before phases (not at position % length).
  for (const b of [new RoundRobin<P>(1), new LeastConnections<P>(1)]) {
    const five = peers(1, 1, 1, 1, 1);
    t.deepEqual(Array.from({ length: 3 }, () => b.pick(five)!.name), ['b', 'c', 'd']);
    t.is(b.pick(five.slice(0, 3))!.name, 'a');
  }
});
