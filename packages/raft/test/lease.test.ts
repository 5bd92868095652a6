// The lease under clock-rate skew: the deposed leader's lease must run out
// before anyone else can be elected, with the old leader's clock 10% slow and
// the others' 10% fast — the worst case leaseTicks() is sized for.
import test from 'ava';
import { leaseTicks } from '../src/index.js';
import { Cluster } from './sim/cluster.js';

const E = 10;

function run(slowLeader: number, fastFollowers: number, drift: number) {
  const c = new Cluster({ voters: ['n1', 'n2', 'n3'], seed: 3, raft: { electionTick: E, heartbeatTick: 1, maxClockDrift: drift } });
  // n1 gets the shortest timeout so that it is elected first.
  for (const n of c.nodes.values()) {
    n.period = 100;
    n.nextTick = n.period + (n.id === 'n1' ? 50 : 0);
    n.random.next = () => (n.id === 'n1' ? 0 : 0.99);
  }
  for (const id of ['n1', 'n2', 'n3']) c.start(id);
  let leaseEnd = -1;
  let otherElected = -1;
  let isolatedAt = -1;
  let overlap = false;
  const step = (): void => {
    const next = [...c.nodes.values()].reduce((a, b) => (b.nextTick < a.nextTick ? b : a));
    const mt = c.network.nextTime();
    if (mt !== undefined && mt <= next.nextTick) {
      c.now = mt;
      const m = c.network.popDue(c.now); // undefined when its link was cut
      if (m !== undefined) {
        c.deliver(m);
        c.flush(m.to);
      }
    } else {
      c.now = next.nextTick;
      next.nextTick += next.period;
      next.node.tick();
      c.flush(next.id);
    }
    const holders = [...c.nodes.values()].filter((n) => n.node.hasLease());
    if (holders.length > 1) overlap = true;
  };
  c.network.faults.minDelay = c.network.faults.maxDelay = 1;
  for (let i = 0; i < 10_000 && !c.get('n1').node.hasLease(); i++) step();
  if (!c.get('n1').node.hasLease()) throw new Error('n1 was not elected');
  // Worst case from here on: the followers' randomized timeouts at their
  // minimum E (restarted to redraw them), their clocks fast and n1's slow.
  for (const id of ['n2', 'n3']) {
    c.get(id).random.next = () => 0;
    c.start(id);
  }
  c.get('n1').period = slowLeader;
  c.get('n2').period = fastFollowers;
  c.get('n3').period = fastFollowers + 3; // distinct from n2's, or they split votes forever
  for (let i = 0; i < 500; i++) step(); // steady state
  c.network.partition(['n1'], ['n2', 'n3']);
  isolatedAt = c.now;
  while (c.now < isolatedAt + 40 * E * 100) {
    step();
    if (leaseEnd < 0 && !c.get('n1').node.hasLease()) leaseEnd = c.now;
    if (otherElected < 0 && ['n2', 'n3'].some((id) => c.get(id).node.role === 'leader')) otherElected = c.now;
  }
  return { leaseEnd, otherElected, overlap, isolatedAt };
}

test('lease: with ±10% clock skew the old lease ends before a new leader is elected', (t) => {
  const r = run(110, 90, 0.1);
  t.false(r.overlap);
  t.true(r.otherElected > 0, 'the majority elected a leader');
  t.true(r.leaseEnd > 0 && r.leaseEnd < r.otherElected, `lease ended at ${r.leaseEnd}, new leader at ${r.otherElected}`);
  // Margin: the lease is leaseTicks(E, ρ) slow ticks at most.
  t.true(r.leaseEnd - r.isolatedAt <= (leaseTicks(E, 0.1) + 1) * 110);
});

test('lease: without the drift margin the same skew would let two leases overlap', (t) => {
  // Configured as if clocks were perfect (ρ = 0) while they are skewed by 20%:
  // the lease is then too long — this is what the margin protects against.
  const r = run(120, 80, 0);
  t.true(r.otherElected > 0);
  t.true(r.overlap || r.leaseEnd >= r.otherElected, 'the check above is not vacuous');
});

test('lease: the exact worst case (leader 10% slow, followers 10% fast, ticking right after receipt) keeps less than one leader tick of margin', (t) => {
  // Every delay 1 unit; n2's randomized timeout is exactly E. n1 leads; at some
  // heartbeat round q (sent at n1's tick, acknowledged by both) n1 is cut off,
  // and n2/n3 tick right after receiving q: their E ticks (E − 1 periods) are
  // as short as the bound allows, and n2 campaigns at the first instant it may.
  const c = new Cluster({ voters: ['n1', 'n2', 'n3'], seed: 5, raft: { electionTick: E, heartbeatTick: 1, maxClockDrift: 0.1 } });
  for (const n of c.nodes.values()) {
    n.period = 100;
    n.nextTick = n.period + (n.id === 'n1' ? 50 : 0);
    n.random.next = () => (n.id === 'n1' ? 0 : 0.99);
  }
  for (const id of ['n1', 'n2', 'n3']) c.start(id);
  c.network.faults.minDelay = c.network.faults.maxDelay = 1;
  const step = (): void => {
    const next = [...c.nodes.values()].reduce((a, b) => (b.nextTick < a.nextTick ? b : a));
    const mt = c.network.nextTime();
    if (mt !== undefined && mt <= next.nextTick) {
      c.now = mt;
      const m = c.network.popDue(c.now);
      if (m !== undefined) {
        c.deliver(m);
        c.flush(m.to);
      }
    } else {
      c.now = next.nextTick;
      next.nextTick += next.period;
      next.node.tick();
      c.flush(next.id);
    }
  };
  for (let i = 0; i < 10_000 && !c.get('n1').node.hasLease(); i++) step();
  t.true(c.get('n1').node.hasLease());
  c.get('n2').random.next = () => 0; // randomized timeout exactly E (drawn at restart)
  c.start('n2');
  c.get('n1').period = 110;
  for (const id of ['n2', 'n3']) c.get(id).period = 91;
  for (let i = 0; i < 300; i++) step();
  // Run to n1's next tick: it sends round q and both acknowledge it (2 units).
  const n1 = c.get('n1');
  const tq = n1.nextTick;
  while (c.now < tq) step(); // n1 ticks at tq: round q leaves
  const q = n1.node.currentTick();
  // n2 and n3 receive q at tq + 1; their next ticks come just after.
  c.get('n3').nextTick = tq + 1.25;
  c.get('n2').nextTick = tq + 1.5;
  while (c.now < tq + 2.5) step();
  t.true(n1.node.leaseValidUntil() === q + leaseTicks(E, 0.1), 'round q acknowledged by a quorum');
  c.network.partition(['n1'], ['n2', 'n3']);
  let leaseEnd = -1;
  let secondLease = -1;
  while (c.now < tq + 20 * 110) {
    step();
    if (leaseEnd < 0 && !n1.node.hasLease()) leaseEnd = c.now;
    if (secondLease < 0 && ['n2', 'n3'].some((id) => c.get(id).node.hasLease())) secondLease = c.now;
  }
  t.log(`n1's lease ended at tq+${leaseEnd - tq}, the next began at tq+${secondLease - tq}`);
  t.true(secondLease > 0, 'n2 or n3 took over with a lease');
  t.true(leaseEnd > 0 && leaseEnd < secondLease, `n1's lease ended at tq+${leaseEnd - tq}, the next began at tq+${secondLease - tq}`);
  // Tight: one more lease tick (L + 1) on n1's slow clock would have overlapped.
  t.true(tq + (leaseTicks(E, 0.1) + 1) * 110 > secondLease, `margin ${secondLease - leaseEnd} is less than one leader tick`);
});
