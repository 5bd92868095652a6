// Two of three data directories wiped (a majority lost) while the member that kept its
// state is away. Restarted with their old flags (--peers), the two wiped seeds look
// exactly like the seeds of a brand-new cluster. Before the bootstrap gate they elected
// a leader between them, became active with an empty pool and acknowledged writes —
// every write the cluster had acknowledged silently gone, and the member that held them
// refused on its return as "another cluster" (found by a drill: kill -9 all three, wipe
// two, start those two). Now a new cluster's first election waits until every seed has
// been reached, the wiped seeds hold, and the returning member tells them their state
// was lost (exit 1, state_lost). Also the price: a new cluster's seeds elect no leader
// until the last one starts.
import test from 'ava';
import { MemberCluster } from './helpers/members.js';
import { eventually, scaled, sleep } from './helpers/wait.js';

/** Samples `/ready` of every running member and a write through `via` for `ms`: what became active, what was acknowledged. */
async function holdFor(c: MemberCluster, via: string, ms: number): Promise<{ active: string[]; acknowledged: number[] }> {
  const active = new Set<string>();
  const acknowledged: number[] = [];
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end && i < 1000; i++) {
    for (const id of await c.activeNow()) active.add(id);
    const port = 40_000 + i;
    const r = await c.call(via, 'POST', '/servers', { ip: '127.9.0.1', port }).catch(() => undefined);
    if (r !== undefined && (r.status === 200 || r.status === 201)) acknowledged.push(port);
    await sleep(100);
  }
  return { active: [...active], acknowledged };
}

test.serial('two seeds wiped while the third is away: no leader, nothing acknowledged; the third back, both stop with state_lost and it keeps every write', async (t) => {
  t.timeout(180_000, 'a drill with restarts on a loaded machine');
  const c = MemberCluster.empty(t);
  for (const id of ['n1', 'n2', 'n3']) await c.define(id);
  c.seeds.push('n1', 'n2', 'n3');

  // The price of the gate: two seeds of a new cluster elect no leader before the third starts.
  await Promise.all(['n1', 'n2'].map((id) => c.startSeed(id)));
  const early = await holdFor(c, 'n1', scaled(3000));
  t.deepEqual(early.active, [], 'no seed active before every seed was reached');
  t.deepEqual(early.acknowledged, []);
  t.true(c.member('n1').proc!.lines.some((l) => l.event === 'bootstrap_waiting' && Array.isArray(l.missing) && l.missing.includes('n3')));
  await c.startSeed('n3');
  await c.active();

  const acked: number[] = [];
  for (let port = 1; port <= 10; port++) {
    const r = await c.call('n1', 'POST', '/servers', { ip: '127.8.0.1', port });
    t.true(r.status === 201 || r.status === 200, `write ${port}: ${r.status}`);
    acked.push(port);
  }
  // Every member applied them (n2 and n3 are about to lose them).
  for (const id of ['n2', 'n3']) {
    await eventually(`${id} to hold the writes`, async () => ((await c.ports(id, true)).length >= acked.length ? true : undefined), 30_000);
  }

  // n1's commit index and pool keys go down lazily (within LAZY_FLUSH_MS, 20 ms, of the
  // answer): with both other disks about to be wiped, n1 alone must know they committed.
  await sleep(500);
  for (const id of ['n1', 'n2', 'n3']) await c.kill(id);
  c.wipe('n2');
  c.wipe('n3');
  // Their old flags.
  await Promise.all(['n2', 'n3'].map((id) => c.startSeed(id)));
  const wiped = await holdFor(c, 'n2', scaled(4000));
  t.deepEqual(wiped.active, [], 'two wiped seeds must not become active on an empty pool');
  t.deepEqual(wiped.acknowledged, [], 'nor acknowledge writes into a new, empty cluster');
  for (const id of ['n2', 'n3']) {
    const waiting = c.member(id).proc!.lines.find((l) => l.event === 'bootstrap_waiting');
    t.deepEqual(waiting?.missing, ['n1'], `${id} says whom it waits for`);
  }

  // The member that kept the state returns (no flags: it is a member).
  await c.restart('n1');
  for (const id of ['n2', 'n3']) {
    const proc = c.member(id).proc!;
    const exit = await proc.exited;
    t.is(exit.code, 1, `${id}: ${proc.stderr}`);
    t.regex(proc.stderr, /state was lost or replaced/);
    t.true(proc.lines.some((l) => l.event === 'state_lost'));
  }
  t.deepEqual(await c.ports('n1', true), acked, 'every acknowledged write is on the member that kept its data');
});
