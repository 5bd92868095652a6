// Membership in one process: RaftCluster members over real TCP on loopback and real
// LevelDB directories. Seed records, join → learner → automatic promotion, one change
// at a time, the live-quorum refusal, removing the leader, and a wiped member refused.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { StoreError, writeIdentity, type AddMemberCommand, type PoolDb } from '@weldr/store';
import { TEST_TIME_SCALE } from '@weldr/store/testing';
import { encodeFrame, FrameDecoder, RaftCluster, type ClusterEnd, type MemberList } from '../src/index.js';
import type { ClusterLogger } from '../src/types.js';
import { PORT_RANGES, portPicker } from './harness/ports.js';

const LOGS: string[] = [];
function mk(b: object): ClusterLogger { const f = (lvl: string) => (o: object, m?: string) => { LOGS.push(`${Date.now() % 100000} ${lvl} ${JSON.stringify({ ...b, ...o })} ${m ?? ''}`); }; return { debug() {}, info: f('info'), warn: f('warn'), error: f('error'), child: (c: object) => mk({ ...b, ...c }) }; }
const silent: ClusterLogger = mk({});

const freePort = portPicker(PORT_RANGES.membership);

/** Polls `fn` until it gives a value; on timeout the error says `what`, and what `seen()` describes then. */
async function until<T>(what: string, fn: () => T | undefined | false, ms = 30_000, seen?: () => string): Promise<T> {
  const end = Date.now() + ms * TEST_TIME_SCALE;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}${seen === undefined ? '' : `; ${seen()}`}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Member {
  readonly id: string;
  readonly dir: string;
  raftPort: number;
  cluster: RaftCluster | null;
  ended: ClusterEnd | null;
}

class Harness {
  readonly members = new Map<string, Member>();
  private gateway: Server | null = null;
  gatewayUrl = '';

  constructor(private readonly t: ExecutionContext) {}

  static async seeds(t: ExecutionContext, ids: string[], electionTimeoutMs = 500): Promise<Harness> {
    const h = new Harness(t);
    for (const id of ids) await h.define(id);
    const peers = ids.map((id) => ({ id, address: { host: '127.0.0.1', port: h.members.get(id)!.raftPort } }));
    await Promise.all(ids.map((id) => h.start(id, { peers, electionTimeoutMs })));
    return h;
  }

  async define(id: string): Promise<Member> {
    const dir = await mkdtemp(join(tmpdir(), `weldr-members-${id}-`));
    this.t.teardown(() => rm(dir, { recursive: true, force: true }));
    const m: Member = { id, dir, raftPort: await freePort(), cluster: null, ended: null };
    this.members.set(id, m);
    return m;
  }

  async start(id: string, opts: { peers?: { id: string; address: { host: string; port: number } }[]; join?: string; electionTimeoutMs?: number } = {}): Promise<RaftCluster> {
    const m = this.members.get(id)!;
    m.ended = null;
    const c = await RaftCluster.open(
      {
        id,
        data: m.dir,
        raft: { host: '127.0.0.1', port: m.raftPort },
        peers: opts.peers ?? [],
        heartbeatMs: 50,
        electionTimeoutMs: opts.electionTimeoutMs ?? 500,
        ...(opts.join === undefined ? {} : { join: opts.join, joinDeadlineMs: 20_000 }),
      },
      mk({ n: id }),
    );
    m.cluster = c;
    void c.ended.then((end) => (m.ended = end));
    this.t.teardown(() => this.stop(id));
    // Admin and proxy "listeners" are only advertised here: nothing listens on them.
    await c.start({ admin: { host: '127.0.0.1', port: 40_000 + m.raftPort - 20_000 }, proxy: { host: '127.0.0.1', port: 50_000 + m.raftPort - 20_000 } });
    return c;
  }

  async stop(id: string): Promise<void> {
    const m = this.members.get(id)!;
    const c = m.cluster;
    m.cluster = null;
    await c?.stop().catch(() => undefined);
  }

  running(): RaftCluster[] {
    return [...this.members.values()].flatMap((m) => (m.cluster === null || m.ended !== null ? [] : [m.cluster]));
  }

  leader(): Promise<RaftCluster> {
    return until('a leader', () => this.running().find((c) => c.driver.node.role === 'leader' && c.isActive()));
  }

  /** A stand-in for the admin API's membership routes, always served by the current leader. */
  async serveGateway(listed: (list: MemberList, leader: RaftCluster) => MemberList = (list) => list): Promise<string> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const leader = await this.leader();
          try {
            if (req.method === 'GET') {
              const list = listed(await leader.listMembers(), leader);
              res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
              return;
            }
            const body = JSON.parse(Buffer.concat(chunks).toString()) as AddMemberCommand;
            const result = await leader.addMember({ ...body, type: 'AddMember', autoPromote: true }, { requestId: String(req.headers['idempotency-key']) });
            res.writeHead(result.change === 'added' ? 201 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...result.member, clusterId: result.clusterId }));
          } catch (err) {
            const code = err instanceof StoreError ? err.code : 'INTERNAL';
            res.writeHead(code === 'CHANGE_IN_PROGRESS' ? 409 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message: (err as Error).message } }));
          }
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.gateway = server;
    this.t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Every running member holds the same records and the same Raft configuration. */
  async converged(): Promise<string[]> {
    return until('every member to hold the same members', () => {
      const views = this.running().map((c) => {
        const conf = c.driver.node.config;
        const records = c.info().members.map((m) => `${m.id}:${m.role}`);
        return JSON.stringify([[...conf.voters, ...conf.learners.map((l) => `${l}(l)`)], records, c.driver.status().appliedIndex]);
      });
      return views.length > 0 && views.every((v) => v === views[0]) ? (JSON.parse(views[0]!) as [string[]])[0] : undefined;
    });
  }
}

test('seed members: the first leader records a cluster id, and every member its Raft, admin and proxy addresses and incarnation', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  const list = await until('complete records', () => {
    const records = h.running().map((c) => c.info());
    return records.every((r) => r.clusterId !== null && r.members.every((m) => m.adminAddress !== undefined && m.proxyAddress !== undefined)) ? records : undefined;
  });
  const ids = new Set(list.map((r) => r.clusterId));
  t.is(ids.size, 1, 'one cluster id everywhere');
  const members = await leader.listMembers();
  for (const m of members.members) {
    const port = h.members.get(m.id)!.raftPort;
    t.is(m.raftAddress, `127.0.0.1:${port}`);
    t.is(m.adminAddress, `127.0.0.1:${40_000 + port - 20_000}`);
    t.is(m.proxyAddress, `127.0.0.1:${50_000 + port - 20_000}`);
    t.regex(m.incarnation ?? '', /^[0-9a-f]{16}$/);
    t.is(m.role, 'voter');
  }
  // The relay target of a follower is the leader's record, and member listeners are known for the self-loop check.
  const follower = h.running().find((c) => c !== leader)!;
  const leaderId = leader.info().nodeId;
  t.deepEqual(follower.leaderAdminUrl(), { leaderId, url: `http://127.0.0.1:${40_000 + h.members.get(leaderId)!.raftPort - 20_000}` });
  t.is(follower.memberListeners().length, 6);
});

test('a node joins as a learner, is promoted once caught up, and every member follows the configuration; a second change in flight is refused', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  for (let port = 1; port <= 30; port++) await leader.store.propose({ type: 'AddServer', ip: '10.0.0.1', port });
  const url = await h.serveGateway();
  await h.define('n4');
  await h.start('n4', { join: url });
  await until(
    'n4 promoted',
    () => h.running().every((c) => c.info().members.some((m) => m.id === 'n4' && m.role === 'voter')),
    30_000,
    // What each member saw when it timed out: a failure says which step stalled.
    () =>
      h
        .running()
        .map((c) => {
          const i = c.info();
          return `${i.nodeId} (${c.driver.node.role}, term ${c.driver.node.term}, commit ${c.driver.node.commitIndex}): ${JSON.stringify(i.members.map((m) => [m.id, m.role]))} progress ${JSON.stringify(c.driver.node.status().progress?.['n4'] ?? null)}`;
        })
        .join(' | '),
  );
  t.deepEqual(await h.converged(), ['n1', 'n2', 'n3', 'n4']);
  const n4 = h.members.get('n4')!.cluster!;
  t.is(n4.store.snapshot().servers.length, 30, 'the new member received the pool');

  // One change at a time: two concurrent changes through the leader, the second refused
  // (once the automatic promotion, itself a change, is applied on the leader).
  const l = await h.leader();
  while ((await l.listMembers()).members.find((m) => m.id === 'n4')?.role !== 'voter') await new Promise((r) => setTimeout(r, 20));
  const add = (id: string): AddMemberCommand => ({ type: 'AddMember', id, raftAddress: `127.0.0.1:${id === 'n5' ? 1 : 2}`, adminAddress: '127.0.0.1:3', autoPromote: false });
  const first = l.addMember(add('n5'), { requestId: 'add-n5' });
  const second = await l.addMember(add('n6')).catch((err: unknown) => err);
  t.like(second, { code: 'CHANGE_IN_PROGRESS' });
  const same = l.addMember(add('n5'), { requestId: 'add-n5' });
  const [a, b] = await Promise.all([first, same]);
  t.like(a, { change: 'added', member: { id: 'n5', role: 'learner' } });
  t.deepEqual(b, a, 'the same Idempotency-Key joins the change in flight');
  const replay = await l.addMember(add('n5'), { requestId: 'add-n5' });
  t.true(replay.duplicate);
  t.like(await l.addMember(add('n5')), { change: 'unchanged' }, 'the same member again is no change');
  await t.throwsAsync(l.addMember({ ...add('n5'), raftAddress: '127.0.0.1:9' }), { message: /already a member with other addresses/ });
  await t.throwsAsync(l.addMember(add('n6'), { requestId: 'add-n5' }), { message: /already used/ });
  // A learner that never speaks is not promoted, unless forced (then 4 of 5 voters are live: a quorum).
  const silentOne = await l.promoteMember('n5').catch((err: unknown) => err);
  t.like(silentOne, { code: 'NOT_CAUGHT_UP' });
  t.regex((silentOne as Error).message, /has not heard from it/);
  t.like(await l.promoteMember('n5', { force: true }), { change: 'promoted', member: { role: 'voter' } });
  await l.removeMember('n5');
  t.deepEqual(await h.converged(), ['n1', 'n2', 'n3', 'n4']);
});

// The member list a joining node gets can be incomplete: right after a cluster starts,
// the leader fills the seeds' addresses into their records one entry at a time, and a
// member added (or a leader elected) after the listing is not in it. The new node must
// still take the leader's connection and answer it, or it never receives the
// configuration (and nothing says why).
for (const [what, listed] of [
  [
    'before the add, no record names a Raft address yet (it asks again once added)',
    (list: MemberList) => (list.members.some((m) => m.id === 'n4') ? list : { ...list, members: list.members.map(({ raftAddress: _, ...m }) => m) }),
  ],
  [
    'the leader is never listed (its cluster id admits it, its hello gives its address)',
    (list: MemberList, leader: RaftCluster) => ({ ...list, members: list.members.filter((m) => m.id !== leader.info().nodeId) }),
  ],
] as const) {
  test(`a node joins although the member list it was given is incomplete: ${what}`, async (t) => {
    const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
    const leader = await h.leader();
    await until('a cluster id', () => h.running().every((c) => c.info().clusterId !== null) || undefined);
    await leader.store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
    const url = await h.serveGateway(listed);
    await h.define('n4');
    await h.start('n4', { join: url });
    await until('n4 promoted', () => h.running().every((c) => c.info().members.some((m) => m.id === 'n4' && m.role === 'voter')));
    t.deepEqual(await h.converged(), ['n1', 'n2', 'n3', 'n4']);
    t.is(h.members.get('n4')!.cluster!.store.snapshot().servers.length, 1);
  });
}

test('a node added, then stopped before it received anything, asks again under the same incarnation when started again', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const url = await h.serveGateway();
  const m = await h.define('n4');
  // What a node killed right after the join answer leaves: its identity, added at an
  // index, and no Raft state at all.
  const incarnation = 'a1b2c3d4e5f60718';
  const res = await fetch(`${url}/cluster/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `join-n4-${incarnation}` },
    body: JSON.stringify({ id: 'n4', raftAddress: `127.0.0.1:${m.raftPort}`, adminAddress: `127.0.0.1:${40_000 + m.raftPort - 20_000}`, proxyAddress: `127.0.0.1:${50_000 + m.raftPort - 20_000}`, incarnation }),
  });
  t.is(res.status, 201);
  const added = (await res.json()) as { addedIndex: number };
  const db = new Level<string, string>(m.dir) as unknown as PoolDb;
  await db.open();
  await writeIdentity(db, { memberId: 'n4', incarnation, createdAt: new Date().toISOString(), since: added.addedIndex });
  await db.close();
  const n4 = await h.start('n4', { join: url });
  await until('n4 promoted', () => h.running().every((c) => c.info().members.some((r) => r.id === 'n4' && r.role === 'voter')));
  t.deepEqual(await h.converged(), ['n1', 'n2', 'n3', 'n4']);
  t.is((await n4.listMembers()).members.find((r) => r.id === 'n4')?.incarnation, incarnation, 'the same incarnation');
});

test('a member restarted on another Raft address is reached there: it tells the members its address although it knows no leader yet', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  const moved = h.running().find((c) => c !== leader)!.info().nodeId;
  const records = async (): Promise<MemberList[]> => Promise.all(h.running().map((c) => c.listMembers({ stale: true })));
  for (let i = 0; !(await records()).every((l) => l.members.every((r) => r.raftAddress !== undefined)); i++) {
    if (i > 1500) throw new Error('the seeds\' records never named their addresses');
    await new Promise((r) => setTimeout(r, 20));
  }
  await h.stop(moved);
  const m = h.members.get(moved)!;
  m.raftPort = await freePort();
  const again = await h.start(moved);
  // The leader still sends to the old address: the moved member hears from no leader
  // until the record names the new one, which only its own word can bring about.
  const result = await (await h.leader()).store.propose({ type: 'AddServer', ip: '10.0.0.7', port: 7 });
  t.true(result.outcome.ok);
  await until(`${moved} to apply a write made after it moved`, () => again.store.snapshot().servers.some((s) => s.ip === '10.0.0.7') || undefined);
  for (let i = 0; !(await records()).every((l) => l.members.find((r) => r.id === moved)?.raftAddress === `127.0.0.1:${m.raftPort}`); i++) {
    if (i > 1500) throw new Error('the records never named the new address');
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('every member restarted on new Raft ports finds the others through the --peers it is given; the records follow', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  const records = async (): Promise<MemberList[]> => Promise.all(h.running().map((c) => c.listMembers({ stale: true })));
  for (let i = 0; !(await records()).every((l) => l.members.every((r) => r.raftAddress !== undefined)); i++) {
    if (i > 1500) throw new Error('the seeds\' records never named their addresses');
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let p = 1; p <= 5; p++) t.true((await leader.store.propose({ type: 'AddServer', ip: '10.0.0.8', port: p })).outcome.ok);
  const ids = ['n1', 'n2', 'n3'];
  for (const id of ids) await h.stop(id);
  // Every record now names an address nobody listens on; only --peers names the new ones.
  for (const id of ids) h.members.get(id)!.raftPort = await freePort();
  const peers = ids.map((id) => ({ id, address: { host: '127.0.0.1', port: h.members.get(id)!.raftPort } }));
  await Promise.all(ids.map((id) => h.start(id, { peers })));
  const moved = await h.leader();
  t.true((await moved.store.propose({ type: 'AddServer', ip: '10.0.0.8', port: 9 })).outcome.ok);
  t.is(moved.store.snapshot().servers.filter((s) => s.ip === '10.0.0.8').length, 6, 'nothing acknowledged before the move is lost');
  for (let i = 0; !(await records()).every((l) => l.members.every((r) => r.raftAddress === `127.0.0.1:${h.members.get(r.id)!.raftPort}`)); i++) {
    if (i > 1500) throw new Error('the records never named the new addresses');
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('a change that would leave no quorum of live voters is refused and says why; removing the dead voter instead is fine', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  let leader = await h.leader();
  const leaderId = leader.info().nodeId;
  const [down, other] = ['n1', 'n2', 'n3'].filter((id) => id !== leaderId);
  await h.stop(down!);
  await new Promise((r) => setTimeout(r, 1200)); // two election timeouts: no longer live
  // Asked of whoever leads now: on a loaded machine the leadership can move between the
  // two survivors meanwhile (NOT_LEADER is asked again; an accepted removal fails below).
  let err: unknown;
  for (const started = Date.now(); Date.now() - started < 30_000; ) {
    leader = await h.leader();
    err = await leader.removeMember(other!).then(
      () => new Error('the removal was accepted'),
      (e: unknown) => e,
    );
    if ((err as { code?: string }).code !== 'NOT_LEADER') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.like(err, { code: 'QUORUM_AT_RISK' });
  t.regex((err as Error).message, new RegExp(`removing ${other} would leave 2 voters of which 1 is live .*${down} \\(silent for`));
  await t.throwsAsync(leader.removeMember('n9'), { message: /not a member/ });
  t.like(await leader.promoteMember(other!), { change: 'unchanged', member: { role: 'voter' } });
  // Removing the dead one is fine: the live ones remain a quorum.
  await leader.removeMember(down!);
  leader = await h.leader();
  t.deepEqual([...leader.driver.node.config.voters].sort(), [leaderId, other!].sort());
});

test('removing the leader: it commits its removal, hands off, and ends with member_removed; a restart of its data directory is refused', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  const id = leader.info().nodeId;
  await leader.store.propose({ type: 'AddServer', ip: '10.0.0.9', port: 9 });
  await leader.removeMember(id);
  const end = await until('the removed leader to end', () => h.members.get(id)!.ended ?? undefined);
  t.is(end.reason, 'member_removed');
  t.is(end.exitCode, 0);
  await h.stop(id);
  const next = await h.leader();
  t.not(next.info().nodeId, id);
  t.deepEqual([...next.driver.node.config.voters].sort(), ['n1', 'n2', 'n3'].filter((x) => x !== id));
  t.is((await next.store.linearizableSnapshot()).servers.length, 1);
  await t.throwsAsync(h.start(id), { message: /was removed from the cluster/ });
});

test('a member whose data directory was wiped and that restarts with its old flags stops with a message and never counts as its old self', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  for (let port = 1; port <= 5; port++) await leader.store.propose({ type: 'AddServer', ip: '10.0.0.1', port });
  const victim = ['n1', 'n2', 'n3'].find((id) => id !== leader.info().nodeId)!;
  await until('complete records', () => h.running().every((c) => c.info().members.every((m) => m.adminAddress !== undefined)));
  await h.stop(victim);
  const m = h.members.get(victim)!;
  await rm(m.dir, { recursive: true, force: true });
  const peers = ['n1', 'n2', 'n3'].map((id) => ({ id, address: { host: '127.0.0.1', port: h.members.get(id)!.raftPort } }));
  await h.start(victim, { peers });
  const end = await until('the wiped member to stop', () => m.ended ?? undefined);
  t.is(end.reason, 'state_lost');
  t.is(end.exitCode, 1);
  t.regex(end.message, /state was lost or replaced.*--join/);
  t.true(m.cluster!.driver.node.term <= 1, 'it never took part in an election of the cluster');
  // The cluster kept every write.
  const l = await h.leader();
  t.is((await l.store.linearizableSnapshot()).servers.length, 5);
});

/**
 * Says `hello` on a Raft listener (the weldr-raft/2 handshake, no cluster token: the
 * harness runs without one) and collects what comes back until the connection closes.
 */
function rawPeer(port: number, hello: Record<string, unknown>): Promise<unknown[]> {
  return new Promise((resolve) => {
    const got: unknown[] = [];
    const decoder = new FrameDecoder();
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) {
        const challenge = (f as { challenge?: unknown }).challenge;
        if (typeof challenge === 'string') s.write(encodeFrame({ hello: challenge, nonce: randomBytes(32).toString('base64'), proof: '', ...hello }));
        else got.push(f);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    setTimeout(() => s.destroy(), 1500).unref();
  });
}

test('a hello cannot redirect the admin relay, and one from an id outside the configuration is refused with a reason', async (t) => {
  const h = await Harness.seeds(t, ['n1', 'n2', 'n3']);
  const leader = await h.leader();
  const leaderId = leader.info().nodeId;
  await until('complete records', () => h.running().every((c) => c.info().members.every((m) => m.adminAddress !== undefined)));
  const follower = h.running().find((c) => c !== leader)!;
  const followerId = follower.info().nodeId;
  const before = follower.leaderAdminUrl();
  const incarnation = (await leader.listMembers()).members.find((m) => m.id === leaderId)!.incarnation;
  // Claims to be the leader (with the right incarnation, which is no secret) and names another admin URL, as hellos once did.
  const welcomed = await rawPeer(h.members.get(followerId)!.raftPort, { from: leaderId, to: followerId, incarnation, info: { admin: 'http://127.0.0.1:1' } });
  t.like(welcomed[0], { welcome: 'weldr-raft/2' }, 'admitted: it claims a member with its incarnation');
  t.deepEqual(follower.leaderAdminUrl(), before, 'the relay still goes to the address in the leader\'s record');
  const refused = await rawPeer(h.members.get(followerId)!.raftPort, { from: 'n9', to: followerId, incarnation: 'x' });
  t.like(refused[0], { refused: 'not-member', message: 'n9 is not a member of this cluster (removed, or not added yet): start a new node with an empty data directory and --join <admin URL of a member>, not with --peers' });
});
