// Concurrent admin writes against a real node behave linearizably: the answers, the
// X-Weldr-Index order and the final pool agree with one sequential order of the
// acknowledged writes that respects real time.
import test from 'ava';
import { request } from 'undici';
import { adminCall } from './helpers/admin.js';
import { startNode, type WeldrNode } from './helpers/node.js';

interface Answer {
  readonly kind: 'add' | 'remove';
  readonly port: number;
  readonly status: number;
  readonly index: number;
  readonly started: number;
  readonly ended: number;
}

const IP = '127.0.9.1';

async function write(node: WeldrNode, kind: 'add' | 'remove', port: number, key?: string): Promise<Answer> {
  const started = performance.now();
  const headers: Record<string, string> = key === undefined ? {} : { 'idempotency-key': key };
  const res =
    kind === 'add'
      ? await request(`${node.adminUrl}/servers`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ ip: IP, port }) })
      : await request(`${node.adminUrl}/servers/${IP}/${port}`, { method: 'DELETE', headers });
  await res.body.text();
  return { kind, port, status: res.statusCode, index: Number(res.headers['x-weldr-index']), started, ended: performance.now() };
}

test('200 concurrent adds and removes of 7 servers: one real-time order explains every answer and the final pool', async (t) => {
  // 200 connections at once from one client: above the default per-source admin limit (64).
  const node = await startNode(t, { store: 'level', args: ['--admin-max-connections-per-source', '256'] });
  // A fixed interleaving (no randomness): ports cycle 1..7, add and remove alternate in runs.
  const ops = Array.from({ length: 200 }, (_, i) => ({ kind: (Math.floor(i / 3) % 2 === 0 ? 'add' : 'remove') as 'add' | 'remove', port: 1 + (i % 7) }));
  const answers = await Promise.all(ops.map((op) => write(node, op.kind, op.port)));

  const ordered = [...answers].sort((a, b) => a.index - b.index);
  t.is(new Set(ordered.map((a) => a.index)).size, answers.length, 'every write has its own index');
  const present = new Set<number>();
  for (const a of ordered) {
    const expected = a.kind === 'add' ? (present.has(a.port) ? 200 : 201) : present.has(a.port) ? 204 : 404;
    t.is(a.status, expected, `${a.kind} ${a.port} at index ${a.index}`);
    if (a.kind === 'add') present.add(a.port);
    else present.delete(a.port);
  }
  const outOfOrder = answers.flatMap((a) => answers.filter((b) => a.ended < b.started && a.index >= b.index).map((b) => [a, b]));
  t.deepEqual(outOfOrder, [], 'a write acknowledged before another started comes first');
  const final = await adminCall<{ port: number }[]>(node, 'GET', '/servers');
  t.deepEqual(final.body.map((s) => s.port).sort(), [...present].sort());
  t.is(Number(final.headers['x-weldr-index']), ordered[ordered.length - 1]?.index);
});

test('one Idempotency-Key sent 30 times at once: one write, every answer the same; with 30 different bodies: one wins, the rest 409', async (t) => {
  const node = await startNode(t, { store: 'level' });
  const same = await Promise.all(Array.from({ length: 30 }, () => write(node, 'add', 1, 'concurrent-same')));
  t.deepEqual(new Set(same.map((a) => `${a.status}@${a.index}`)), new Set(['201@1']));
  const different = await Promise.all(Array.from({ length: 30 }, (_, i) => write(node, 'add', 100 + i, 'concurrent-different')));
  t.is(different.filter((a) => a.status === 201).length, 1);
  t.is(different.filter((a) => a.status === 409).length, 29);
  const pool = await adminCall<{ port: number }[]>(node, 'GET', '/servers');
  t.is(pool.body.filter((s) => s.port >= 100).length, 1);
});
