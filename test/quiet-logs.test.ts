// Issue 14's acceptance for logs: a cluster under normal operation — readiness and
// liveness probes on every node, writes through followers, a planned leadership
// transfer — logs no line at warn or above for 30 s. Expected answers (a passive node's
// /ready 503, NOT_LEADER while the leadership moves) are not problems.
//
// The same cluster also checks that what /cluster and /metrics show in cluster mode is
// documented: every member field in docs/openapi.yaml, every metric in operations.md.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse } from '@readme/openapi-parser';
import { request } from 'undici';
import { startCluster, type ClusterMember } from './helpers/cluster.js';
import { undocumented } from './helpers/metrics.js';
import { startOrigin } from './helpers/origins.js';
import { REPO_ROOT } from './helpers/repo-root.js';
import { eventually, scaled, sleep } from './helpers/wait.js';

const QUIET_MS = 30_000;

async function get(m: ClusterMember, path: string): Promise<{ status: number; body: unknown; text: string }> {
  const res = await request(`${m.adminUrl}${path}`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // metrics: text
  }
  return { status: res.statusCode, body, text };
}

async function send(m: ClusterMember, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<number> {
  const res = await request(`${m.adminUrl}${path}`, {
    method,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  await res.body.dump();
  return res.statusCode;
}

const leaderOf = async (members: readonly ClusterMember[]): Promise<string | undefined> => {
  const views = await Promise.all(members.map((m) => get(m, '/cluster').then((r) => r.body as { leaderId: string | null; role: string; nodeId: string })));
  const active = views.filter((v) => v.role === 'active');
  return active.length === 1 ? active[0]!.nodeId : undefined;
};

test('a cluster under normal operation logs nothing at warn or above for 30 s', async (t) => {
  t.timeout(scaled(QUIET_MS) + scaled(90_000));
  const members = await startCluster(t);
  const origin = await startOrigin(t, 'o1');
  const leaderId = await eventually('one active node', () => leaderOf(members), 20_000);
  const followers = members.filter((m) => m.id !== leaderId);
  await eventually('an origin added through a follower', async () => ((await send(followers[0]!, 'POST', '/servers', { ip: '127.0.0.1', port: origin.port })) === 201 ? true : undefined));
  // From here on, nothing at warn or above: count where each node's log stands now.
  const marks = members.map((m) => m.proc.lines.length);

  const stop = Date.now() + QUIET_MS;
  const errors: string[] = [];
  const loops: Promise<void>[] = [];
  // Probes, as a load balancer and Kubernetes send them: every node, every 250 ms.
  for (const m of members) {
    loops.push(
      (async () => {
        while (Date.now() < stop) {
          const [ready, health] = await Promise.all([get(m, '/ready'), get(m, '/health')]);
          if (![200, 503].includes(ready.status) || health.status !== 200) errors.push(`${m.id}: /ready ${ready.status}, /health ${health.status}`);
          await sleep(250);
        }
      })(),
    );
  }
  // Writes through every follower (relayed to the leader), with idempotent retries on 503
  // as a client does while the leadership moves.
  let writes = 0;
  for (const [i, m] of members.entries()) {
    loops.push(
      (async () => {
        let n = 0;
        while (Date.now() < stop) {
          const port = 20_000 + i * 1000 + (n++ % 500);
          for (const [method, path, body] of [
            // Nothing listens there: with checks off, no origin goes down (a real outage is a warning).
            ['POST', '/servers', { ip: '127.0.0.2', port, healthCheck: { enabled: false } }],
            ['DELETE', `/servers/127.0.0.2/${port}`, undefined],
          ] as const) {
            let status = 0;
            for (let attempt = 0; attempt < 20 && Date.now() < stop + 10_000; attempt++) {
              status = await send(m, method, path, body);
              if (status !== 503) break;
              await sleep(100);
            }
            if (status >= 300 && !(method === 'DELETE' && status === 404)) errors.push(`${m.id}: ${method} ${path} → ${status}`);
            else writes++;
          }
          await sleep(200);
        }
      })(),
    );
  }
  // A planned transfer in the middle, and one back.
  loops.push(
    (async () => {
      await sleep(QUIET_MS / 3);
      const from = await leaderOf(members);
      const via = members.find((m) => m.id !== from)!;
      const status = await send(via, 'POST', '/cluster/transfer-leadership');
      if (status !== 200) errors.push(`transfer via ${via.id} → ${status}`);
      await sleep(QUIET_MS / 3);
      const status2 = await send(members.find((m) => m.id === from)!, 'POST', '/cluster/transfer-leadership', { to: from });
      if (status2 !== 200) errors.push(`transfer back to ${from} → ${status2}`);
    })(),
  );
  await Promise.all(loops);

  t.deepEqual(errors, []);
  t.true(writes > 20, `${writes} writes went through`);
  const loud = members.flatMap((m, i) => m.proc.lines.slice(marks[i]).filter((l) => typeof l.level === 'number' && l.level >= 40).map((l) => `${m.id}: ${JSON.stringify(l)}`));
  t.deepEqual(loud, [], 'no line at warn (40) or above');
  // Followers answered /ready 503 hundreds of times: at debug at most, so nothing at info either.
  const readyLines = members.flatMap((m, i) => m.proc.lines.slice(marks[i]).filter((l) => l.code === 'NOT_ACTIVE'));
  t.deepEqual(readyLines, []);
  // The leader's view of the others after all that: heard from, in step.
  const finalLeader = members.find((m) => m.id === leaderId)!;
  await eventually('every member current on the leader', async () => {
    const info = (await get(finalLeader, '/cluster')).body as { members: { id: string; raftRole?: string; reachable?: boolean; condition?: string }[] };
    return info.members.every((m) => m.reachable === true && (m.id === leaderId || (m.raftRole === 'follower' && m.condition === 'current'))) ? true : undefined;
  });
});

test('in cluster mode, /cluster carries only documented fields and /metrics only documented metrics', async (t) => {
  const members = await startCluster(t);
  const leaderId = await eventually('one active node', () => leaderOf(members), 20_000);
  const doc = (await parse(fileURLToPath(new URL('docs/openapi.yaml', `file://${REPO_ROOT}/`)))) as unknown as {
    components: { schemas: { ClusterInfo: { properties: Record<string, { items?: { properties: Record<string, unknown> } }> } } };
  };
  const info = doc.components.schemas.ClusterInfo;
  const memberFields = Object.keys(info.properties['members']?.items?.properties ?? {});
  for (const m of members) {
    // The leader, after it has judged its members, shows the most fields.
    const view = await eventually(`${m.id}'s /cluster`, async () => {
      const body = (await get(m, '/cluster')).body as Record<string, unknown> & { members: Record<string, unknown>[] };
      return m.id !== leaderId || body.members.some((x) => 'condition' in x) ? body : undefined;
    });
    for (const key of Object.keys(view)) t.true(key in info.properties, `${m.id}: /cluster field ${key} is documented`);
    for (const member of view.members) for (const key of Object.keys(member)) t.true(memberFields.includes(key), `${m.id}: member field ${key} is documented`);
    t.deepEqual(undocumented((await get(m, '/metrics')).text), [], `${m.id}: every metric is in docs/operations.md`);
  }
});
