// Membership changes of a running cluster of real `weldr start` processes: grow and
// shrink under load, remove the leader, replace a member that lost its disk, and the
// refusal of a wiped member that comes back under its old flags. After each: every
// acknowledged write is on every member, linearizable reads agree, no two members were
// ever active at once, and no member holds a stale configuration.
import test from 'ava';
import { request } from 'undici';
import { watchForTwoActive } from './helpers/active-watch.js';
import { MemberCluster, Writer } from './helpers/members.js';
import { startOrigin } from './helpers/origins.js';
import { runWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

/** Every running member's linearizable view of the pool holds exactly `expected` (ports of `ip`). */
async function everyMemberHolds(t: import('ava').ExecutionContext, c: MemberCluster, ip: string, expected: number[]): Promise<void> {
  const want = expected.join(',');
  for (const m of c.running()) {
    const got = await eventually(`${m.id} to hold every acknowledged write`, async () => {
      const r = await c.call<{ ip: string; port: number }[]>(m.id, 'GET', '/servers');
      if (r.status !== 200) return undefined;
      const ports = r.json.filter((s) => s.ip === ip).map((s) => s.port).sort((a, b) => a - b);
      return ports.join(',') === want ? ports : undefined;
    }, 30_000);
    t.is(got.length, expected.length, `${m.id} holds all ${expected.length} acknowledged writes`);
  }
}

test.serial('grow 3 → 5 → 3 under writes through every member and proxied traffic through the active one; the leader is one of those removed', async (t) => {
  t.timeout(240_000, 'a membership drill on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const origin = await startOrigin(t, 'o1');
  // Health checks that a loaded machine passes: o1 stays healthy, so the proxy never
  // fails open to the servers the writer adds (loopback addresses nothing listens on).
  t.is((await c.call('n1', 'PATCH', '/settings', { healthCheck: { intervalMs: 5000, timeoutMs: 4000, unhealthyThreshold: 10, healthyThreshold: 1 } })).status, 200);
  t.is((await c.call('n1', 'POST', '/servers', { ip: '127.0.0.1', port: origin.port })).status, 201);
  await eventually('o1 to be routed by every member', async () => {
    for (const m of c.running()) {
      const r = await request(`http://127.0.0.1:${m.proxyPort}/`);
      if (r.statusCode !== 200) return undefined;
      await r.body.dump();
    }
    return true;
  }, 30_000);
  const watch = watchForTwoActive(() => c.activeNow());
  t.teardown(() => void watch.stop()); // a failed drill must not leave it sampling
  const writer = new Writer(c, '127.1.0.1', t);
  // Requests through whichever member is active: it must always route to the origin.
  let proxied = 0;
  const badProxied: string[] = [];
  let proxying = true;
  t.teardown(() => {
    proxying = false;
  });
  const proxy = (async () => {
    while (proxying) {
      const active = (await c.activeNow())[0];
      if (active === undefined) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        const r = await request(`http://127.0.0.1:${c.member(active).proxyPort}/`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
        const text = await r.body.text();
        if (r.statusCode === 200 && text.includes('o1')) proxied++;
        else badProxied.push(`${active}: ${r.statusCode}`);
      } catch (err) {
        // A member removed while the request was in flight may close its listener.
        if (c.running().some((m) => m.id === active)) badProxied.push(`${active}: ${(err as Error).message}`);
      }
    }
  })();

  await c.join('n4', 'n2');
  await c.join('n5', 'n3');
  t.deepEqual(await c.untilConfig((conf) => conf.length === 5), ['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter', 'n5:voter']);

  // Shrink: remove n5 through a follower, then the leader itself.
  const rmN5 = await eventually('n5\'s removal to be answered', async () => {
    const r = await c.call('n1', 'DELETE', '/cluster/members/n5', undefined, { 'idempotency-key': 'rm-n5' });
    return r.status === 503 || r.status === 504 ? undefined : r;
  }, 60_000);
  t.is(rmN5.status, 204, JSON.stringify(rmN5.json));
  await eventually('n5 to exit after its removal', () => (c.member('n5').proc!.running ? undefined : true), 30_000);
  t.is((await c.member('n5').proc!.exited).code, 0, 'a removed member exits 0');
  const leader = await c.active();
  const via = c.running().find((m) => m !== leader)!;
  // As a careful client: retried with the same key while the answer is indeterminate.
  const removed = await eventually('the leader\'s removal to be answered', async () => {
    const r = await c.call(via.id, 'DELETE', `/cluster/members/${leader.id}`, undefined, { 'idempotency-key': `rm-${leader.id}` });
    return r.status === 503 || r.status === 504 ? undefined : r;
  }, 60_000);
  t.is(removed.status, 204, JSON.stringify(removed.json));
  await eventually('the removed leader to exit', () => (leader.proc!.running ? undefined : true), 30_000);
  t.true(leader.proc!.lines.some((l) => l.event === 'member_removed'));
  const remaining = ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== leader.id);
  t.deepEqual(await c.untilConfig((conf) => conf.length === 3), remaining.map((id) => `${id}:voter`));
  const next = await c.active();
  t.not(next.id, leader.id);

  const acked = await writer.stop();
  proxying = false;
  await proxy;
  t.deepEqual(writer.refused, [], 'no write was refused');
  t.true(acked.length > 0);
  await everyMemberHolds(t, c, '127.1.0.1', acked);
  // Linearizable reads through every member agree, and so do the members' records.
  const reads = await Promise.all(c.running().map((m) => c.ports(m.id)));
  for (const r of reads) t.deepEqual(r, reads[0]);
  const records = await Promise.all(c.running().map(async (m) => (await c.read<{ members: { id: string }[] }>(m.id, '/cluster/members')).members.map((x) => x.id)));
  for (const r of records) t.deepEqual(r, remaining);
  t.deepEqual(badProxied, [], 'every proxied request through the active member reached the origin');
  t.true(proxied > 0);
  t.deepEqual(await watch.stop(), [], 'two members answered /ready 200 in the same round');
  // The self-loop refusal covers every member's listeners, not only the receiving node's.
  const other = c.running().find((m) => m.id !== next.id)!;
  const loop = await c.call<{ error: { code: string; message: string } }>(next.id, 'POST', '/servers', { ip: '127.0.0.1', port: other.proxyPort });
  t.is(loop.status, 400);
  t.regex(loop.json.error.message, new RegExp(`member ${other.id}`));
});

test.serial('a member killed and wiped comes back under its old flags: refused with a message, nothing acknowledged lost; replaced by a new node that joins', async (t) => {
  t.timeout(240_000, 'a membership drill on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const watch = watchForTwoActive(() => c.activeNow());
  t.teardown(() => void watch.stop()); // a failed drill must not leave it sampling
  const writer = new Writer(c, '127.2.0.1', t);
  await eventually('some writes', () => (writer.acked.length >= 20 ? true : undefined), 30_000);
  const leader = await c.active();
  const victim = c.running().find((m) => m !== leader)!;
  await c.kill(victim.id);
  c.wipe(victim.id);
  // Its old flags (--peers): it must refuse to take part, say how to rejoin, and exit non-zero.
  const again = c.spawn(victim, ['--peers', c.peers]);
  const exit = await again.exited;
  t.is(exit.code, 1, again.stderr);
  t.regex(again.stderr, /state was lost or replaced/);
  t.regex(again.stderr, new RegExp(`weldr member remove ${victim.id}.*--join`));
  t.true(again.lines.some((l) => l.event === 'state_lost'));
  // Restarted once more on the directory it just made: still refused.
  const third = c.spawn(victim, ['--peers', c.peers]);
  t.is((await third.exited).code, 1);

  // Replace it: remove the dead member, start a new node on an empty directory with --join.
  const survivors = c.running().map((m) => m.id);
  // Through the operator CLI, as the documented procedure says.
  const rm = await runWeldr(t, ['member', 'remove', victim.id, '--endpoints', `http://127.0.0.1:${c.member(survivors[0]!).adminPort}`]);
  t.is(rm.code, 0, rm.stderr);
  c.wipe(victim.id);
  await c.join(victim.id, survivors[1]!);
  const acked = await writer.stop();
  t.deepEqual(writer.refused, []);
  await everyMemberHolds(t, c, '127.2.0.1', acked);
  t.deepEqual(await c.untilConfig((conf) => conf.length === 3), ['n1:voter', 'n2:voter', 'n3:voter']);
  const members = (await c.read<{ members: { id: string; incarnation?: string }[] }>(survivors[0]!, '/cluster/members')).members;
  const before = victim.proc!.lines.find((l) => l.event === 'member')?.incarnation as string | undefined;
  t.is(members.find((m) => m.id === victim.id)?.incarnation, before, 'the new node is in the record under its own incarnation');
  // Restarted with neither --peers nor --join: its data directory says it is a member.
  await victim.proc!.stop('SIGTERM');
  await c.restart(victim.id);
  t.true(victim.proc!.lines.some((l) => l.event === 'member' && l.mode === 'member'));
  t.deepEqual(await c.untilConfig((conf) => conf.length === 3), ['n1:voter', 'n2:voter', 'n3:voter']);
  await everyMemberHolds(t, c, '127.2.0.1', acked);
  t.deepEqual(await watch.stop(), []);
});

test.serial('a member moved to other ports (Raft, admin, proxy) is reached there: writes through it and through the others, and every record names its new addresses', async (t) => {
  t.timeout(120_000, 'a membership drill on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const leader = await c.active();
  const id = c.running().find((m) => m !== leader)!.id;
  // The seeds' records are complete (the leader fills them in one entry at a time).
  await eventually('complete records', async () => {
    const r = await c.call<{ members: { raftAddress?: string }[] }>(leader.id, 'GET', '/cluster/members');
    return r.status === 200 && r.json.members.every((m) => m.raftAddress !== undefined) ? true : undefined;
  }, 30_000);
  const moved = await c.move(id);
  // Before 2026-12-07 the moved member heard from no leader and every write through it was 503.
  const through = async (via: string, port: number): Promise<void> => {
    await eventually(`a write through ${via}`, async () => {
      const r = await c.call(via, 'POST', '/servers', { ip: '127.3.0.1', port }, { 'idempotency-key': `moved-${port}` });
      return r.status === 201 || r.status === 200 ? true : undefined;
    }, 30_000);
  };
  await through(id, 1);
  const other = c.running().find((m) => m.id !== id && m.id !== leader.id)!.id;
  await through(other, 2);
  for (const m of c.running()) t.deepEqual((await c.ports(m.id)).filter((p) => p < 3), [1, 2], `${m.id} holds both writes`);
  await eventually('every member records the new addresses', async () => {
    for (const m of c.running()) {
      const r = await c.call<{ members: { id: string; raftAddress?: string; adminAddress?: string; proxyAddress?: string }[] }>(m.id, 'GET', '/cluster/members?stale=true');
      const rec = r.json.members?.find((x) => x.id === id);
      if (rec?.raftAddress !== `127.0.0.1:${moved.raftPort}` || rec.adminAddress !== `127.0.0.1:${moved.adminPort}` || rec.proxyAddress !== `127.0.0.1:${moved.proxyPort}`) return undefined;
    }
    return true;
  }, 30_000);
});
