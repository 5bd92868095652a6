// Planned leadership transfers under write load (issue 11, deliverable 3): writes that
// arrive while the leadership moves — at the old leader, at the new one, at the third
// member — are held and completed by the next leader instead of failing with 503, and
// proxied requests through the old active node keep being served. Real processes;
// the count of failed writes is the assertion, not how long anything took. Every
// address involved is on loopback.
import test from 'ava';
import { request } from 'undici';
import { startOrigin } from './helpers/origins.js';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { readyTerm, watchReadyPerNode } from './helpers/active-watch.js';
import { eventually, sleep } from './helpers/wait.js';

const TRANSFERS = 10;

test('writes and proxied requests during leadership transfers: none fails, every acknowledged write is applied, never two active nodes', async (t) => {
  const origin = await startOrigin(t, 'o1');
  const c = await TestCluster.create(t, {
    // A longer election timeout than the default: only the planned transfers move the
    // leadership, even on a loaded machine (a transfer does not wait for it).
    args: () => ['--raft-election-timeout', '1s', '--log-level', 'info'],
    env: () => ({ WELDR_CLUSTER_TOKEN: 'e2e-transfer-writes-0123456789' }),
  });
  let leader = await c.leader();
  const added = await c.call(leader, 'POST', '/servers', { ip: '127.0.0.1', port: origin.port }, { 'idempotency-key': 'origin' });
  t.is(added.status, 201, JSON.stringify(added.json));
  await eventually('the origin on every member', async () => {
    for (const m of c.members) if (!(await c.servers(m)).includes(`127.0.0.1:${origin.port}`)) return undefined;
    return true;
  });

  // Every member's /ready sampled on its own every 5 ms: two 200 answers whose
  // request-to-answer intervals intersect would be two active nodes at once. (Asking the
  // members one after another could see the old leader's 200 and then, a transfer later,
  // the new one's, and call that an overlap.)
  const watch = watchReadyPerNode(c.members.map((m) => ({ id: m.id, ready: () => readyTerm(c.adminUrl(m), 300) })), 5);

  // 4 writers, each on one member (so the old leader, the new one and the third all take
  // writes): each write changes the origin's weight, under an Idempotency-Key of its own.
  // (Writes that add servers would put addresses in the pool that the proxied requests
  // below could be routed to.)
  let running = true;
  const acknowledged: { key: string; weight: number }[] = [];
  const failed: string[] = [];
  let seq = 0;
  const writer = async (k: number): Promise<void> => {
    const m = c.members[k % c.members.length]!;
    while (running) {
      const n = seq++;
      const key = `transfer-write-${n}`;
      const weight = 1 + (n % 100);
      try {
        const r = await c.call(m, 'PATCH', `/servers/127.0.0.1/${origin.port}`, { weight }, { 'idempotency-key': key });
        if (r.status === 200) acknowledged.push({ key, weight });
        else failed.push(`${m.id}: ${r.status} ${JSON.stringify(r.json)}`);
      } catch (err) {
        failed.push(`${m.id}: ${(err as Error).message}`);
      }
    }
  };
  const writers = [0, 1, 2, 3].map(writer);

  // Proxied GETs through whichever node was active before the latest transfer.
  let oldActive: Member = leader;
  const proxied = { ok: 0, failed: [] as string[] };
  const proxyLoop = (async () => {
    while (running) {
      const m = oldActive;
      try {
        const r = await request(`http://127.0.0.1:${m.proxyPort}/`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
        await r.body.dump();
        if (r.statusCode === 200) proxied.ok++;
        else proxied.failed.push(`${m.id}: ${r.statusCode}`);
      } catch (err) {
        proxied.failed.push(`${m.id}: ${(err as Error).message}`);
      }
      await sleep(5);
    }
  })();

  try {
    for (let i = 0; i < TRANSFERS; i++) {
      leader = await c.leader();
      oldActive = leader;
      const others = c.members.filter((m) => m !== leader);
      const to = others[i % others.length]!;
      const before = acknowledged.length;
      const r = await c.call(leader, 'POST', '/cluster/transfer-leadership', { to: to.id });
      t.is(r.status, 200, `transfer ${i + 1} to ${to.id}: ${JSON.stringify(r.json)}`);
      await c.leader(15_000, leader);
      // Writes go on through the transfer (not only before it).
      await eventually('writes acknowledged after the transfer', () => (acknowledged.length > before + 4 ? true : undefined));
    }
  } finally {
    running = false;
    await Promise.all(writers);
    await proxyLoop;
  }
  const { overlaps, samples, slow } = await watch.stop();
  t.log(`/ready samples: ${samples.length} (${slow} too slow to count)`);
  t.true(samples.length - slow > 0, 'some /ready answers were fast enough to count');

  t.deepEqual(failed, [], 'no write failed during the transfers');
  t.true(acknowledged.length > TRANSFERS * 4, `${acknowledged.length} writes acknowledged`);
  t.deepEqual(proxied.failed, [], 'no proxied request through the old active node failed');
  t.true(proxied.ok > 0);
  t.deepEqual(overlaps, [], 'never two nodes answering /ready 200 at once');
  // Every acknowledged write was applied under its key: sent again, it is replayed.
  for (const [i, w] of acknowledged.entries()) {
    const m = c.members[i % c.members.length]!;
    const r = await c.call(m, 'PATCH', `/servers/127.0.0.1/${origin.port}`, { weight: w.weight }, { 'idempotency-key': w.key });
    t.is(r.status, 200, `${w.key}: ${JSON.stringify(r.json)}`);
    t.is(r.headers['idempotent-replayed'], 'true', `${w.key} was applied before`);
  }
});
