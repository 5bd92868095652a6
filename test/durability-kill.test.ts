// Acknowledged pool writes survive a real SIGKILL of `weldr start --store level`, and a
// kill in the middle of a burst leaves a state that some prefix of the writes produced.
import test from 'ava';
import { adminCall } from './helpers/admin.js';
import { makeTempDir, startNode, type WeldrNode } from './helpers/node.js';

interface ServerView {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly draining: boolean;
}

async function killHard(node: WeldrNode): Promise<void> {
  node.proc.signal('SIGKILL');
  const exit = await node.proc.exited;
  if (exit.signal !== 'SIGKILL') throw new Error(`expected death by SIGKILL, got ${JSON.stringify(exit)}`);
}

const servers = async (node: WeldrNode): Promise<ServerView[]> => (await adminCall<ServerView[]>(node, 'GET', '/servers')).body;

test('every acknowledged write (add, update, remove, settings) is there after kill -9 and a restart', async (t) => {
  const dataDir = makeTempDir(t);
  const first = await startNode(t, { dataDir, store: 'level' });
  // 60 adds at once (on the helper's 32 connections), then updates and removes of some of them.
  const adds = await Promise.all(Array.from({ length: 60 }, (_, i) => adminCall(first, 'POST', '/servers', { ip: `127.0.7.${1 + (i % 3)}`, port: 1000 + i, weight: 1 + (i % 5) })));
  t.true(adds.every((r) => r.status === 201));
  const updates = await Promise.all(Array.from({ length: 10 }, (_, i) => adminCall(first, 'PATCH', `/servers/127.0.7.${1 + (i % 3)}/${1000 + i}`, { weight: 900 + i, draining: true })));
  t.true(updates.every((r) => r.status === 200));
  const removes = await Promise.all(Array.from({ length: 10 }, (_, i) => adminCall(first, 'DELETE', `/servers/127.0.7.${1 + ((50 + i) % 3)}/${1050 + i}`)));
  t.true(removes.every((r) => r.status === 204));
  t.is((await adminCall(first, 'PATCH', '/settings', { balancer: 'power-of-two' })).status, 200);
  const before = await servers(first);
  const index = (await adminCall(first, 'GET', '/servers')).headers['x-weldr-index'];
  t.is(before.length, 50);

  await killHard(first);
  const second = await startNode(t, { dataDir, store: 'level' });
  const after = await adminCall<ServerView[]>(second, 'GET', '/servers');
  t.deepEqual(after.body, before);
  t.is(after.headers['x-weldr-index'], index);
  t.is((await adminCall<{ balancer: string }>(second, 'GET', '/settings')).body.balancer, 'power-of-two');
});

test('kill -9 during a burst of writes: acknowledged writes kept, the rest a prefix of what was in flight', async (t) => {
  const dataDir = makeTempDir(t);
  const first = await startNode(t, { dataDir, store: 'level' });
  // Eight writers, each adding ports 1, 2, 3, … on its own address, one request at a time:
  // so a writer has at most one write in flight, and its ports on disk must be 1..k.
  const WRITERS = 8;
  const KILL_AFTER = 120;
  const acked = new Map<string, number>();
  let total = 0;
  let killed: Promise<void> | undefined;
  const writer = async (w: number): Promise<void> => {
    const ip = `127.0.8.${w + 1}`;
    for (let port = 1; ; port++) {
      let status: number;
      try {
        status = (await adminCall(first, 'POST', '/servers', { ip, port })).status;
      } catch {
        return; // the node died under this request: it was in flight, not acknowledged
      }
      if (status !== 201) throw new Error(`unexpected ${status}`);
      acked.set(ip, port);
      if (++total === KILL_AFTER) killed = killHard(first);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  await killed;

  const second = await startNode(t, { dataDir, store: 'level' });
  const byIp = new Map<string, number[]>();
  for (const s of await servers(second)) byIp.set(s.ip, [...(byIp.get(s.ip) ?? []), s.port]);
  for (const [ip, last] of acked) {
    const ports = (byIp.get(ip) ?? []).sort((a, b) => a - b);
    t.deepEqual(ports.slice(0, last), Array.from({ length: last }, (_, i) => i + 1), `${ip}: every acknowledged port is there`);
    t.true(ports.length <= last + 1, `${ip}: at most the one write in flight beyond the acknowledged ones`);
    t.deepEqual(ports, Array.from({ length: ports.length }, (_, i) => i + 1), `${ip}: no gaps`);
  }
  t.true(total >= KILL_AFTER);
});
