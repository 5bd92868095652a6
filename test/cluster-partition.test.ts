// Network partitions between real `weldr` processes: every Raft connection goes through
// a TCP relay this test controls (node i reaches node j at relay i→j), so a node can be
// cut off from the others, symmetrically, and healed — on loopback, no privileges.
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { makeTempDir } from './helpers/node.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './helpers/process.js';
import { eventually, sleep } from './helpers/wait.js';
import { reservedPort } from './helpers/ports.js';
import { isReady, watchForTwoActive } from './helpers/active-watch.js';
import { Relay } from './helpers/relay.js';
import { startWorkload } from './helpers/nemesis-workload.js';


interface Member {
  readonly id: string;
  readonly raftPort: number;
  readonly adminPort: number;
  proc: RunningProcess | null;
}

function ready(m: Member): Promise<boolean> {
  return isReady(`http://127.0.0.1:${m.adminPort}`, 500);
}

async function post(m: Member, body: unknown, key: string): Promise<number> {
  const r = await request(`http://127.0.0.1:${m.adminPort}/servers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(body),
    headersTimeout: 15_000,
  });
  await r.body.dump();
  return r.statusCode;
}

async function ports(m: Member): Promise<number[]> {
  const r = await request(`http://127.0.0.1:${m.adminPort}/servers`);
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET /servers on ${m.id}: ${r.statusCode} ${text}`);
  return (JSON.parse(text) as { port: number }[]).map((s) => s.port).sort((a, b) => a - b);
}

interface RelayedCluster {
  readonly members: Member[];
  readonly relays: Map<string, Relay>;
  start(m: Member): Promise<void>;
  isolate(id: string, cut: boolean): void;
}

/**
 * Three nodes whose Raft traffic all goes through relays: relays.get('n2') is where
 * every member reaches n2 (n2 advertises it with --raft-advertise, so its member
 * record holds it), and the relay tells the callers apart by their hello.
 */
async function relayedCluster(t: Teardown): Promise<RelayedCluster> {
  const dir = makeTempDir(t, 'weldr-partition-');
  const members: Member[] = [];
  for (const id of ['n1', 'n2', 'n3']) members.push({ id, raftPort: await reservedPort(), adminPort: await reservedPort(), proc: null });
  const relays = new Map<string, Relay>();
  for (const m of members) relays.set(m.id, await Relay.start(t, m.id, m.raftPort));
  const peers = members.map((p) => `${p.id}=127.0.0.1:${relays.get(p.id)!.port}`).join(',');
  const start = async (m: Member): Promise<void> => {
    m.proc = spawnWeldr(t, `weldr ${m.id}`, [
      'start', '--id', m.id, '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${m.adminPort}`,
      '--raft', `127.0.0.1:${m.raftPort}`, '--raft-advertise', `127.0.0.1:${relays.get(m.id)!.port}`, '--peers', peers, '--data', join(dir, m.id),
    ], { WELDR_CONFIG: undefined, WELDR_CLUSTER_TOKEN: 'e2e-cluster-secret-0123456789' });
    await m.proc.waitForLine('started', (l) => l.event === 'started');
  };
  await Promise.all(members.map(start));
  const isolate = (id: string, cut: boolean): void => {
    for (const other of members) {
      if (other.id === id) continue;
      relays.get(id)!.setCut(other.id, cut);
      relays.get(other.id)!.setCut(id, cut);
    }
  };
  return { members, relays, start, isolate };
}

test.serial('an active node cut off from the others loses its role before another gains it; the majority goes on; healing converges', async (t) => {
  const { members, isolate } = await relayedCluster(t);

  // Asked all at once: one after another, a role that moves between two questions would look like two active nodes.
  const activeNow = async (): Promise<string[]> => {
    const answers = await Promise.all(members.map((m) => ready(m)));
    return members.filter((_, i) => answers[i]).map((m) => m.id);
  };
  const oneActive = (except?: string): Promise<Member> =>
    eventually('one active node', async () => {
      const a = await activeNow();
      return a.length === 1 && a[0] !== except ? members.find((m) => m.id === a[0]) : undefined;
    }, 15_000, 20);

  const first = await oneActive();
  t.is(await post(first, { ip: '127.10.0.1', port: 1 }, 'k1'), 201);

  // Watch /ready on all nodes for the whole drill.
  const watch = watchForTwoActive(activeNow);

  const cutAt = Date.now();
  isolate(first.id, true);
  const second = await oneActive(first.id);
  t.log(`new active node ${Date.now() - cutAt} ms after the partition`);
  t.false(await ready(first), 'the isolated old leader no longer reports ready');
  t.is(await post(second, { ip: '127.10.0.1', port: 2 }, 'k2'), 201, 'the majority takes writes');
  // The minority cannot acknowledge a write.
  const minority = await post(first, { ip: '127.10.0.1', port: 3 }, 'k3');
  t.true(minority === 503 || minority === 504, `a write to the isolated node is not acknowledged (got ${minority})`);

  isolate(first.id, false);
  await eventually('the isolated node converges', async () => {
    const [a, b] = [await ports(first).catch(() => []), await ports(second)];
    return a.join() === b.join() && b.includes(2) ? true : undefined;
  }, 15_000);
  const final = await ports(second);
  t.true(final.includes(1) && final.includes(2), `acknowledged writes kept: ${final}`);
  t.deepEqual(await watch.stop(), [], 'two nodes answered /ready 200 in the same sampling round');
  t.is((await activeNow()).length, 1);
});

test.serial('nemesis: seeded pauses, kills and partitions under concurrent writes and linearizable reads: no acknowledged write lost, no stale read, never two active', async (t) => {
  const c = await relayedCluster(t);
  // Seeded (LCG): the same schedule on every run.
  let seed = 20261125;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor((seed / 2147483648) * n);
  };
  const alive = (): Member[] => c.members.filter((m) => m.proc !== null && m.proc.running);
  const load = startWorkload({ members: c.members, adminUrl: (m) => `http://127.0.0.1:${m.adminPort}`, keyPrefix: 'n-' });
  const watch = watchForTwoActive(async () => {
    const a: string[] = [];
    for (const m of alive()) if (await ready(m)) a.push(m.id);
    return a;
  });

  const actions: string[] = [];
  for (let round = 0; round < 8; round++) {
    await sleep(700);
    const victim = c.members[rnd(3)]!;
    const kind = rnd(3);
    if (kind === 0 && victim.proc?.running) {
      actions.push(`pause ${victim.id}`);
      victim.proc.signal('SIGSTOP');
      await sleep(800);
      victim.proc.signal('SIGCONT');
    } else if (kind === 1 && victim.proc?.running) {
      actions.push(`kill ${victim.id}`);
      victim.proc.signal('SIGKILL');
      await victim.proc.exited;
      await c.start(victim);
    } else {
      actions.push(`partition ${victim.id}`);
      c.isolate(victim.id, true);
      await sleep(1000);
      c.isolate(victim.id, false);
    }
  }
  await sleep(1500);
  await load.stop();
  t.log(`nemesis: ${actions.join(', ')}; ${load.acked.size} writes acknowledged`);

  // After healing: every node converges on a pool that holds every acknowledged write.
  for (const m of c.members) {
    const final = await eventually(`${m.id} converges`, () => load.holdsEveryWrite(m), 20_000);
    for (const p of final) t.true(p < load.nextPort(), `${m.id} holds only written ports`);
  }
  t.true(load.acked.size >= 20, `${load.acked.size} writes acknowledged`);
  t.deepEqual(load.staleReads, [], 'a linearizable read missed a write acknowledged before it started');
  t.deepEqual(await watch.stop(), [], 'two nodes answered /ready 200 in the same sampling round');
});
