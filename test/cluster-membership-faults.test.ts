// Membership changes meeting faults and refusals, with real processes: the leader
// killed in the middle of a change; a change that would lose the quorum; a second
// change while one is in flight; backup and restore into a new cluster; a node that
// tries to join with another cluster's data directory.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { watchForTwoActive } from './helpers/active-watch.js';
import { MemberCluster, Writer } from './helpers/members.js';
import { makeTempDir } from './helpers/node.js';
import { runWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

/**
 * A write as a careful client makes it on a loaded machine: one Idempotency-Key, retried
 * while the answer is 503 (an election moved the leadership); the final status.
 */
async function writeOnce(c: MemberCluster, id: string, method: string, path: string, key: string, body?: unknown): Promise<number> {
  return eventually(`${method} ${path}`, async () => {
    const r = await c.call(id, method, path, body, { 'idempotency-key': key });
    return r.status === 503 ? undefined : r.status;
  }, 30_000);
}

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

test.serial('the leader killed in the middle of adding a member: the join completes once, every member agrees, nothing acknowledged is lost', async (t) => {
  t.timeout(240_000, 'a membership drill on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const watch = watchForTwoActive(() => c.activeNow());
  t.teardown(() => void watch.stop()); // a failed drill must not leave it sampling
  const writer = new Writer(c, '127.3.0.1', t);
  await eventually('some writes', () => (writer.acked.length >= 10 ? true : undefined), 30_000);
  const leader = await c.active();
  const via = c.running().find((m) => m !== leader)!;
  const joining = c.join('n4', via.id);
  joining.catch(() => undefined); // awaited below
  // Whoever leads when the request arrives proposes it (an election may have moved the
  // leadership since): kill that one, right after it proposed.
  const proposer = await eventually('a leader to propose adding n4', () =>
    c.running().find((m) => m.proc!.lines.some((l) => l.event === 'member_change_proposed' && l.member === 'n4')), 60_000, 5);
  await c.kill(proposer.id);
  const n4 = await joining;
  await c.restart(proposer.id, ['--peers', c.peers]);
  t.deepEqual(await c.untilConfig((conf) => conf.length === 4 && conf.every((x) => x.endsWith(':voter'))), ['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter']);
  const acked = await writer.stop();
  t.deepEqual(writer.refused, []);
  const want = acked.join(',');
  for (const m of c.running()) {
    await eventually(`${m.id} holds every acknowledged write`, async () => {
      const ports = (await c.ports(m.id)).filter((p) => acked.includes(p));
      return ports.join(',') === want ? true : undefined;
    }, 30_000);
  }
  const reads = await Promise.all(c.running().map((m) => c.ports(m.id)));
  for (const r of reads) t.deepEqual(r, reads[0], 'linearizable reads agree');
  const records = (await c.read<{ members: { id: string; role: string }[] }>(n4.id, '/cluster/members')).members;
  t.deepEqual(records.map((m) => `${m.id}:${m.role}`), ['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter'], 'one record for n4, not two');
  t.deepEqual(await watch.stop(), []);
});

test.serial('refusals: a removal that would lose the live quorum (409 QUORUM_AT_RISK), a second change while one is in flight (409 CHANGE_IN_PROGRESS)', async (t) => {
  t.timeout(240_000, 'a membership drill on a loaded machine');
  const c = await MemberCluster.seed(t, 3, [], { relayed: true });
  const leader = await c.active();
  const [down, other] = c.running().filter((m) => m !== leader);
  await c.kill(down!.id);
  // Whoever leads by then (an election may move it) must see the killed member as not live.
  await eventually(`the leader to see ${down!.id} as not live`, async () => {
    const now = await c.active();
    return (await c.view(now.id)).members.find((m) => m.id === down!.id)?.live === false ? true : undefined;
  }, 30_000);
  // With one voter down a loaded machine may be between leaders (503): asked again, as a client would.
  const refused = await eventually('an answer other than 503 to the removal', async () => {
    const r = await c.call<ErrorBody>(other!.id, 'DELETE', `/cluster/members/${other!.id}`);
    return r.status === 503 ? undefined : r;
  }, 30_000, 200);
  t.is(refused.status, 409);
  t.is(refused.json.error.code, 'QUORUM_AT_RISK');
  t.regex(refused.json.error.message, new RegExp(`removing ${other!.id} would leave 2 voters of which 1 is live.*${down!.id}.*force=true`));
  await c.restart(down!.id, ['--peers', c.peers]);
  t.deepEqual(await c.untilConfig((conf) => conf.length === 3), ['n1:voter', 'n2:voter', 'n3:voter'], 'nothing changed');

  // A change whose entry the followers do not get (the relays hold the leader's appends;
  // heartbeats pass, so it keeps leading) stays in flight; a second one is refused.
  const l = await c.active();
  // A follower relays to the address in the leader's member record: a just-elected leader
  // (the restarted member, say) may not have published it yet, and with its appends held
  // it could not; wait for it first.
  // On every member, not only the leader: once the appends are held below, a follower
  // that had not applied the record yet could not get it (nor relay) until they flow again.
  await eventually(`${l.id}'s member record to carry its admin address on every member`, async () => {
    for (const m of c.running()) {
      const list = await c.read<{ members: { id: string; adminAddress?: string }[] }>(m.id, '/cluster/members?stale=true');
      if (list.members.find((x) => x.id === l.id)?.adminAddress === undefined) return undefined;
    }
    return true;
  }, 30_000);
  c.holdAppends(l.id, true);
  const add = (id: string) => ({ id, raftAddress: `127.0.0.1:${id === 'n8' ? 1 : 2}`, adminAddress: '127.0.0.1:3', autoPromote: false });
  const first = c.call(l.id, 'POST', '/cluster/members', add('n8'), { 'idempotency-key': 'add-n8' });
  first.catch(() => undefined); // awaited below; a failed assertion before that must not leave it unhandled
  await l.proc!.waitForLine('the first change to be proposed', (x) => x.event === 'member_change_proposed' && x.member === 'n8');
  const second = await c.call<ErrorBody>(l.id, 'POST', '/cluster/members', add('n9'));
  t.is(second.status, 409, JSON.stringify(second.json));
  t.is(second.json.error.code, 'CHANGE_IN_PROGRESS');
  t.regex(second.json.error.message, /AddMember n8 is in flight/);
  // Through a follower that knows the leader (the restarted one may not have heard from it yet).
  const follower = await eventually('a follower that knows the leader', async () => {
    for (const m of c.running()) if (m !== l && (await c.view(m.id)).leaderId === l.id) return m;
    return undefined;
  }, 30_000);
  const viaFollower = await c.call<ErrorBody>(follower.id, 'DELETE', `/cluster/members/${down!.id}`);
  t.is(viaFollower.status, 409, `relayed to the leader, refused the same way: ${JSON.stringify(viaFollower.json)}`);
  c.holdAppends(l.id, false);
  t.is((await first).status, 201);
  const replay = await c.call(l.id, 'POST', '/cluster/members', add('n8'), { 'idempotency-key': 'add-n8' });
  t.is(replay.status, 201);
  t.is(replay.headers['idempotent-replayed'], 'true');
  t.is((await c.call(l.id, 'POST', '/cluster/members', add('n9'))).status, 201, 'once the first is applied, the next change goes through');
  for (const id of ['n8', 'n9']) t.is((await c.call(l.id, 'DELETE', `/cluster/members/${id}`)).status, 204);
  t.deepEqual(await c.untilConfig((conf) => conf.length === 3), ['n1:voter', 'n2:voter', 'n3:voter']);
});

test.serial('snapshot save → restore seeds a new cluster with the same pool and settings; a node with that cluster’s data directory cannot join another cluster', async (t) => {
  t.timeout(240_000, 'a membership drill on a loaded machine');
  const a = await MemberCluster.seed(t, 3);
  const leader = await a.active();
  t.is(await writeOnce(a, leader.id, 'PATCH', '/settings', 'backup-settings', { balancer: 'least-connections', healthCheck: { path: '/healthz', intervalMs: 3000 } }), 200);
  for (let port = 1; port <= 12; port++) {
    t.is(await writeOnce(a, leader.id, 'POST', '/servers', `backup-add-${port}`, { ip: '127.4.0.1', port, weight: (port % 5) + 1, ...(port % 3 === 0 ? { healthCheck: { path: '/h' } } : {}) }), 201);
  }
  t.is(await writeOnce(a, leader.id, 'PATCH', '/servers/127.4.0.1/4', 'backup-drain', { draining: true }), 200);
  t.is(await writeOnce(a, leader.id, 'DELETE', '/servers/127.4.0.1/5', 'backup-remove'), 204);
  const follower = a.running().find((m) => m !== leader)!;
  const saved = await a.call<{ format: string; version: number; index: number; clusterId: string; state: { servers: unknown[] } }>(follower.id, 'GET', '/cluster/snapshot');
  t.is(saved.status, 200);
  t.is(saved.json.format, 'weldr-snapshot');
  t.is(saved.json.version, 1);
  t.is(String(saved.headers['x-weldr-index']), String(saved.json.index));
  t.regex(String(saved.headers['content-disposition']), /attachment; filename="weldr-snapshot-\d+\.json"/);
  t.is(saved.json.state.servers.length, 11);
  // The operator CLI writes the same document.
  const file = join(makeTempDir(t, 'weldr-backup-'), 'backup.json');
  const cli = await runWeldr(t, ['snapshot', 'save', file, '--endpoints', `http://127.0.0.1:${follower.adminPort}`]);
  t.is(cli.code, 0, cli.stderr);
  const viaCli = JSON.parse(readFileSync(file, 'utf8')) as typeof saved.json;
  t.deepEqual(viaCli.state.servers, saved.json.state.servers, 'the same pool');
  const servers = await a.read(leader.id, '/servers');
  const settings = await a.read(leader.id, '/settings');

  // A new cluster from the file: r1 restores, r2 joins it.
  const b = MemberCluster.empty(t);
  const r1 = await b.define('r1');
  b.spawn(r1, ['--restore', file]);
  await r1.proc!.waitForLine('started', (l) => l.event === 'started', 30_000);
  await b.active();
  t.deepEqual(await b.read('r1', '/servers'), servers, 'the pool, exactly (order, weights, overrides, draining, indexes)');
  t.deepEqual(await b.read('r1', '/settings'), settings);
  const bMembers = await b.read<{ clusterId: string; members: { id: string }[] }>('r1', '/cluster/members');
  t.not(bMembers.clusterId, saved.json.clusterId, 'a new cluster id');
  t.deepEqual(bMembers.members.map((m) => m.id), ['r1']);
  await b.join('r2', 'r1');
  t.deepEqual(await b.read('r2', '/servers'), servers);
  // The audit log came with the snapshot: the restored cluster knows who changed the pool.
  type Audit = { entries: { index: number; idempotencyKey: string; command: { type: string } }[] };
  const upTo = (page: Audit) => page.entries.filter((e) => e.index <= saved.json.index);
  const auditA = upTo(await a.read<Audit>(leader.id, '/audit'));
  t.true(auditA.filter((e) => e.command.type === 'AddServer').length >= 12, 'cluster A audited its writes');
  t.deepEqual(upTo(await b.read<Audit>('r1', '/audit')), auditA, 'the restored member holds the audit log');
  t.deepEqual(upTo(await b.read<Audit>('r2', '/audit?stale=true')), auditA, 'and so does the member that joined it');

  // r2's data directory belongs to cluster B: joining cluster A with it is refused.
  const r2 = b.member('r2');
  await r2.proc!.stop('SIGTERM');
  const wrong = b.spawn(r2, ['--join', `http://127.0.0.1:${leader.adminPort}`]);
  const exit = await wrong.exited;
  t.is(exit.code, 1, wrong.stderr);
  t.regex(wrong.stderr, /belongs to cluster [0-9a-f]+, but http:\/\/127\.0\.0\.1:\d+ is cluster [0-9a-f]+/);
  t.deepEqual(await a.untilConfig((conf) => conf.length === 3), ['n1:voter', 'n2:voter', 'n3:voter'], 'cluster A is untouched');

  // --restore needs an empty data directory, and a readable file.
  await r1.proc!.stop('SIGTERM');
  const again = b.spawn(r1, ['--restore', file]);
  t.is((await again.exited).code, 1);
  t.regex(again.stderr, /--restore needs an empty data directory/);
  const bad = join(makeTempDir(t, 'weldr-backup-'), 'bad.json');
  writeFileSync(bad, '{"format":"weldr-snapshot","version":9}');
  const r3 = await b.define('r3');
  const corrupt = b.spawn(r3, ['--restore', bad]);
  t.is((await corrupt.exited).code, 1);
  t.regex(corrupt.stderr, /format version 9/);
});
