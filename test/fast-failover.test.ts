// The fast failover path (issue 11 item 4, --raft-fast-failover): after kill -9 of the
// active node its followers see its connections close and its Raft port refuse
// connections, waive their promise to it and elect a new leader at once. It must fire
// on a dead process only: not for a paused one (SIGSTOP), not for a partition (the
// isolation fault; a relay that resets the connections but still accepts), not for a
// slow network. Every member's /ready is sampled every 5 ms throughout: never two 200
// answers at once. No timing assertions (the speed is measured by bench/cluster.js).
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { makeTempDir } from './helpers/node.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './helpers/process.js';
import { eventually, sleep } from './helpers/wait.js';
import { reservedPort } from './helpers/ports.js';
import { isReady, readyTerm, watchReadyPerNode, type ReadyWatch } from './helpers/active-watch.js';
import { Relay } from './helpers/relay.js';
import { startOrigin } from './helpers/origins.js';

interface Member {
  readonly id: string;
  readonly raftPort: number;
  readonly adminPort: number;
  readonly proxyPort: number;
  proc: RunningProcess | null;
}

interface Drill {
  readonly members: Member[];
  /** The relay in front of each member's Raft listener (relayed clusters only). */
  readonly relays: Map<string, Relay>;
}

const TOKEN = 'e2e-cluster-secret-0123456789';

/**
 * Three members with fault injection on. `relayed`: every member is reached through a
 * relay in front of its Raft listener (it advertises the relay's address).
 */
async function drill(t: Teardown, opts: { relayed?: boolean; args?: readonly string[] } = {}): Promise<Drill> {
  const dir = makeTempDir(t, 'weldr-fast-failover-');
  const members: Member[] = [];
  for (const id of ['n1', 'n2', 'n3']) members.push({ id, raftPort: await reservedPort(), adminPort: await reservedPort(), proxyPort: await reservedPort(), proc: null });
  const relays = new Map<string, Relay>();
  if (opts.relayed === true) for (const m of members) relays.set(m.id, await Relay.start(t, m.id, m.raftPort));
  const reach = (m: Member): number => relays.get(m.id)?.port ?? m.raftPort;
  const peers = members.map((m) => `${m.id}=127.0.0.1:${reach(m)}`).join(',');
  await Promise.all(
    members.map(async (m) => {
      m.proc = spawnWeldr(t, `weldr ${m.id}`, [
        'start', '--id', m.id, '--listen', `127.0.0.1:${m.proxyPort}`, '--admin', `127.0.0.1:${m.adminPort}`,
        '--raft', `127.0.0.1:${m.raftPort}`, ...(relays.has(m.id) ? ['--raft-advertise', `127.0.0.1:${reach(m)}`] : []),
        '--peers', peers, '--data', join(dir, m.id), '--fault-injection', 'on', ...(opts.args ?? []),
      ], { WELDR_CONFIG: undefined, WELDR_LOG_LEVEL: 'debug', WELDR_CLUSTER_TOKEN: TOKEN });
      await m.proc.waitForLine('started', (l) => l.event === 'started');
    }),
  );
  return { members, relays };
}

const adminUrl = (m: Member): string => `http://127.0.0.1:${m.adminPort}`;
const alive = (d: Drill): Member[] => d.members.filter((m) => m.proc !== null && m.proc.running);

async function activeNow(d: Drill): Promise<string[]> {
  const out: string[] = [];
  for (const m of alive(d)) if (await isReady(adminUrl(m), 300)) out.push(m.id);
  return out;
}

/** The one active member (other than `not`), once exactly one answers /ready 200. */
async function oneActive(d: Drill, not?: Member): Promise<Member> {
  const id = await eventually('one active node', async () => {
    const a = await activeNow(d);
    return a.length === 1 && a[0] !== not?.id ? a[0] : undefined;
  }, 20_000, 10);
  return d.members.find((m) => m.id === id)!;
}

/** /ready of every member, each every 5 ms, for the whole drill. */
function watchAll(d: Drill): ReadyWatch {
  return watchReadyPerNode(d.members.map((m) => ({ id: m.id, ready: () => (m.proc?.running === true ? readyTerm(adminUrl(m), 300) : Promise.resolve(false)) })), 5);
}

/** weldr_raft_fast_failovers_total of a running member. */
async function fastFailovers(m: Member): Promise<number> {
  const r = await request(`${adminUrl(m)}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  const line = /^weldr_raft_fast_failovers_total(?:\{[^}]*\})? (\d+)$/m.exec(text);
  if (line === null) throw new Error(`no weldr_raft_fast_failovers_total on ${m.id}`);
  return Number(line[1]);
}

/** The fast-path log lines of every member (killed ones included: their output is kept). */
function fastPathLines(d: Drill): { id: string; leader: unknown; term: unknown }[] {
  return d.members.flatMap((m) => (m.proc?.lines ?? []).filter((l) => l.event === 'raft_fast_failover').map((l) => ({ id: m.id, leader: l.leader, term: l.term })));
}

async function post(m: Member, port: number, ip: string): Promise<number> {
  const r = await request(`${adminUrl(m)}/servers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `ff-${ip}-${port}` },
    body: JSON.stringify({ ip, port }),
    headersTimeout: 15_000,
  });
  await r.body.dump();
  return r.statusCode;
}

/** A write through `m` succeeds (retried while an election runs). */
async function write(m: Member, port: number, ip = '127.10.0.1'): Promise<void> {
  await eventually(`write ${port} through ${m.id}`, async () => ([200, 201].includes(await post(m, port, ip)) ? true : undefined), 20_000, 50);
}

async function noFastPath(t: import('ava').ExecutionContext, d: Drill): Promise<void> {
  for (const m of alive(d)) t.is(await fastFailovers(m), 0, `${m.id} took no fast failover`);
  t.deepEqual(fastPathLines(d), [], 'no member logged raft_fast_failover');
}

test.serial('kill -9 of the active node: the survivors see it gone, the fast path fires, a new active node serves; never two', async (t) => {
  const d = await drill(t);
  const origin = await startOrigin(t, 'o1');
  const first = await oneActive(d);
  await write(first, origin.port, '127.0.0.1');
  await noFastPath(t, d);
  const watch = watchAll(d);
  const killedAt = Date.now();
  first.proc!.signal('SIGKILL');
  await first.proc!.exited;
  const second = await oneActive(d, first);
  t.log(`active again ${Date.now() - killedAt} ms after the kill`);
  await write(second, 2);
  const { overlaps } = await watch.stop();
  t.deepEqual(overlaps, [], 'two members answered /ready 200 at once');
  if (process.env.FF_DEBUG === '1') {
    for (const m of d.members) for (const l of m.proc!.lines) if (typeof l.event === "string" && /raft|active|serving/.test(l.event) && Date.parse(String(l.time)) >= killedAt - 50) t.log(m.id, Date.parse(String(l.time)) - killedAt, l.event, l.msg);
  }
  const lines = fastPathLines(d);
  t.true(lines.length >= 1, 'a survivor logged raft_fast_failover');
  for (const l of lines) t.is(l.leader, first.id, 'about the killed leader');
  const counted = (await Promise.all(alive(d).map(fastFailovers))).reduce((a, b) => a + b, 0);
  t.is(counted, lines.length, 'one count per log line');
  // The new active node's proxy serves the pool.
  const r = await request(`http://127.0.0.1:${second.proxyPort}/`);
  t.is(r.statusCode, 200);
  t.regex(await r.body.text(), /o1/);
});

test.serial('--raft-fast-failover off: kill -9 of the active node fails over by the election timeout alone', async (t) => {
  const d = await drill(t, { args: ['--raft-fast-failover', 'off'] });
  const first = await oneActive(d);
  const watch = watchAll(d);
  first.proc!.signal('SIGKILL');
  await first.proc!.exited;
  const second = await oneActive(d, first);
  await write(second, 1);
  t.deepEqual((await watch.stop()).overlaps, []);
  await noFastPath(t, d);
});

test.serial('SIGSTOP of the active node, then SIGCONT: no fast failover (its sockets stay open and its port accepts), never two active', async (t) => {
  const d = await drill(t);
  const first = await oneActive(d);
  await write(first, 1);
  const watch = watchAll(d);
  first.proc!.signal('SIGSTOP');
  t.teardown(() => first.proc!.signal('SIGCONT'));
  const second = await oneActive(d, first);
  await write(second, 2);
  first.proc!.signal('SIGCONT');
  await eventually('the resumed node follows', async () => ((await activeNow(d)).join() === second.id ? true : undefined), 20_000, 50);
  await sleep(500);
  t.deepEqual((await watch.stop()).overlaps, []);
  await noFastPath(t, d);
});

test.serial('the isolation fault on the active node (a partition that drops, connections up): no fast failover, never two active', async (t) => {
  const d = await drill(t);
  const first = await oneActive(d);
  await write(first, 1);
  const watch = watchAll(d);
  const r = await request(`${adminUrl(first)}/faults/isolate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ durationMs: 2500 }) });
  await r.body.dump();
  t.is(r.statusCode, 200);
  const second = await oneActive(d, first);
  await write(second, 2);
  await eventually('the isolation ends and the old leader follows', async () => {
    const f = await request(`${adminUrl(first)}/faults`);
    const body = (await f.body.json()) as { isolated: boolean };
    return body.isolated ? undefined : true;
  }, 20_000, 100);
  await sleep(500);
  t.deepEqual((await watch.stop()).overlaps, []);
  await noFastPath(t, d);
});

test.serial('a partition that resets the connections (relay cut) but still accepts: the survivors check, find the port accepting, and wait out the lease', async (t) => {
  const d = await drill(t, { relayed: true });
  const first = await oneActive(d);
  await write(first, 1);
  const watch = watchAll(d);
  const isolate = (cut: boolean): void => {
    for (const other of d.members) {
      if (other === first) continue;
      d.relays.get(first.id)!.setCut(other.id, cut);
      d.relays.get(other.id)!.setCut(first.id, cut);
    }
  };
  isolate(true);
  const second = await oneActive(d, first);
  await write(second, 2);
  isolate(false);
  await eventually('the old leader follows again', async () => ((await activeNow(d)).join() === second.id ? true : undefined), 20_000, 50);
  t.deepEqual((await watch.stop()).overlaps, []);
  await noFastPath(t, d);
  // The check ran: a follower saw its connection with the leader close and found no evidence.
  const checked = d.members.filter((m) => m !== first).some((m) => m.proc!.lines.some((l) => l.event === 'raft_leader_alive' && l.leader === first.id));
  t.true(checked, 'a survivor probed the leader and logged raft_leader_alive');
});

test.serial('a slow network (every frame to and from the active node delayed beyond the election timeout): no fast failover, never two active', async (t) => {
  const d = await drill(t, { relayed: true });
  const first = await oneActive(d);
  await write(first, 1);
  const watch = watchAll(d);
  const slow = (ms: number): void => {
    d.relays.get(first.id)!.setDelay('*', ms);
    for (const other of d.members) if (other !== first) d.relays.get(other.id)!.setDelay(first.id, ms);
  };
  slow(1200);
  const second = await oneActive(d, first);
  await write(second, 2);
  await sleep(1500);
  slow(0);
  await eventually('one active node after the heal', async () => ((await activeNow(d)).length === 1 ? true : undefined), 20_000, 50);
  await sleep(1500);
  t.deepEqual((await watch.stop()).overlaps, []);
  await noFastPath(t, d);
});
