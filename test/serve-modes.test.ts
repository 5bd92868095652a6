// Serving modes and the loss of quorum, end to end (docs/operations.md#serving-modes):
//
// - --serve all: every member whose pool a leader confirmed serves and is ready
//   (GET /serving 200) while /ready stays 200 on the active node only; a member cut off
//   from the leader keeps serving its last pool for --serve-stale-limit, reporting how
//   stale it may be, then stops (or, with --quorum-loss keep-serving, goes on);
// - --serve active-passive with 2 of 3 members killed: by default nothing serves
//   (/ready and /serving 503 on the survivor); with --quorum-loss keep-serving the
//   survivor that was active keeps serving its last pool and says since when.
// Every proxy answers what reaches it, whatever the mode (documented): checked too.
import avaTest, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { startCluster, type ClusterMember } from './helpers/cluster.js';
import { startOrigin } from './helpers/origins.js';
import { limitedTest } from './helpers/limit.js';
import { eventually } from './helpers/wait.js';

// Each test runs a three-node cluster: at most two at once.
const test = limitedTest(avaTest, 2);

interface Serving {
  mode: string;
  serving: boolean;
  active: boolean;
  reason: string;
  stalenessMs: number | null;
  staleLimitMs?: number;
  quorumLoss: string;
}

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const r = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
  const text = await r.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text
  }
  return { status: r.statusCode, body };
}

const serving = async (m: ClusterMember): Promise<{ status: number; body: Serving }> => (await get(`${m.adminUrl}/serving`)) as { status: number; body: Serving };
const ready = async (m: ClusterMember): Promise<number> => (await get(`${m.adminUrl}/ready`)).status;

async function post(m: ClusterMember, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const r = await request(`${m.adminUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `k-${Math.random()}` }, body: JSON.stringify(body), headersTimeout: 15_000 });
  const text = await r.body.text();
  return { status: r.statusCode, body: text === '' ? undefined : JSON.parse(text) };
}

/** A write through any member that answers, retried through an election. */
async function write(members: readonly ClusterMember[], body: unknown): Promise<void> {
  await eventually('a write to be acknowledged', async () => {
    for (const m of members) {
      try {
        const r = await post(m, '/servers', body);
        if (r.status === 200 || r.status === 201) return true;
      } catch {
        // that member is down: the next one
      }
    }
    return undefined;
  }, 30_000, 100);
}

async function activeMember(members: readonly ClusterMember[]): Promise<ClusterMember> {
  return eventually('one active member', async () => {
    const states = await Promise.all(members.map((m) => ready(m).catch(() => 0)));
    return states.filter((s) => s === 200).length === 1 ? members[states.indexOf(200)] : undefined;
  }, 30_000, 20);
}

async function withOrigin(t: ExecutionContext, members: readonly ClusterMember[]): Promise<number> {
  const origin = await startOrigin(t, 'origin-a');
  await write(members, { ip: '127.0.0.1', port: origin.port });
  return origin.port;
}

async function proxied(m: ClusterMember): Promise<number> {
  const r = await request(`${m.proxyUrl}/`, { headersTimeout: 5000, bodyTimeout: 5000 });
  await r.body.dump();
  return r.statusCode;
}

test('--serve all: every member with a confirmed pool serves and is ready; /ready stays with the active member', async (t) => {
  const members = await startCluster(t, { env: { WELDR_SERVE: 'all' } });
  await withOrigin(t, members);
  // Sampled together: on a loaded machine a lease can lapse for a moment between two
  // heartbeats (no member active, each still serving), so wait for a sample with one.
  const views = await eventually('every member serving, one of them active', async () => {
    const all = await Promise.all(members.map(serving));
    return all.every((s) => s.status === 200) && all.filter((v) => v.body.active).length === 1 ? all : undefined;
  }, 30_000, 50);
  for (const v of views) {
    t.like(v.body, { mode: 'all', serving: true, quorumLoss: 'stop', staleLimitMs: 5000 });
    t.true(typeof v.body.stalenessMs === 'number' && v.body.stalenessMs >= 0);
  }
  t.is(views.filter((v) => v.body.active).length, 1, 'one member holds the active role');
  const active = await activeMember(members);
  for (const m of members) t.is(await ready(m), m === active ? 200 : 503, `/ready on ${m.id}`);
  for (const m of members) t.is(await eventually(`${m.id} to route`, async () => ((await proxied(m)) === 200 ? 200 : undefined)), 200);
  const metrics = String((await get(`${members[0]!.adminUrl}/metrics`)).body);
  t.regex(metrics, /^weldr_serving\{nodeId="n1"\} 1$/m);
  t.regex(metrics, /^weldr_pool_staleness_seconds\{nodeId="n1"\} [0-9.]+$/m);
  t.like(((await get(`${members[0]!.adminUrl}/cluster`)).body as { serving: Serving }).serving, { mode: 'all', serving: true });
});

test('--serve all: a member cut off from the leader serves its last pool for --serve-stale-limit, saying how stale, then stops; healed, it serves again', async (t) => {
  const members = await startCluster(t, { env: { WELDR_SERVE: 'all', WELDR_SERVE_STALE_LIMIT: '2s', WELDR_FAULT_INJECTION: 'on' } });
  await withOrigin(t, members);
  const active = await activeMember(members);
  const cut = members.find((m) => m !== active)!;
  await eventually(`${cut.id} serving`, async () => ((await serving(cut)).status === 200 ? true : undefined), 30_000, 50);
  t.is((await post(cut, '/faults/isolate', { durationMs: 20_000 })).status, 200);

  // A write the cut-off member cannot see: its pool is the last one it had.
  const others = members.filter((m) => m !== cut);
  await write(others, { ip: '127.0.0.1', port: 9 });
  const stalePool = (await get(`${cut.adminUrl}/servers?stale=true`)).body as { port: number }[];
  t.false(stalePool.some((s) => s.port === 9), 'the cut-off member does not have the new server');

  // Still serving, with the staleness growing…
  const stillServing = await serving(cut);
  if (stillServing.status === 200) t.true(stillServing.body.stalenessMs! >= 0);
  // …until the stale limit: then 503, with the reason and how stale.
  const stopped = await eventually('the cut-off member to stop serving', async () => {
    const s = await serving(cut);
    return s.status === 503 ? s.body : undefined;
  }, 30_000, 50);
  t.like(stopped, { serving: false, active: false, mode: 'all' });
  t.true(stopped.stalenessMs! > 2000, `staleness ${stopped.stalenessMs} ms is past the 2 s limit`);
  t.regex(stopped.reason, /stale limit/);
  t.is(await proxied(cut), 200, 'its proxy still answers what reaches it (documented)');
  for (const m of others) t.is((await serving(m)).status, 200, `${m.id}, with the quorum, serves`);

  t.is((await post(cut, '/faults/heal', {})).status, 200);
  const back = await eventually('the healed member to serve again', async () => {
    const s = await serving(cut);
    return s.status === 200 ? s.body : undefined;
  }, 30_000, 50);
  t.true(back.stalenessMs! < 2000);
  const caughtUp = await eventually('the healed member to have the new server', async () => {
    const pool = (await get(`${cut.adminUrl}/servers?stale=true`)).body as { port: number }[];
    return pool.some((s) => s.port === 9) ? true : undefined;
  });
  t.true(caughtUp);
});

test('--serve all --quorum-loss keep-serving: a member cut off keeps serving its last pool past the limit and reports how stale', async (t) => {
  const members = await startCluster(t, { env: { WELDR_SERVE: 'all', WELDR_SERVE_STALE_LIMIT: '1s', WELDR_QUORUM_LOSS: 'keep-serving', WELDR_FAULT_INJECTION: 'on' } });
  await withOrigin(t, members);
  const active = await activeMember(members);
  const cut = members.find((m) => m !== active)!;
  await eventually(`${cut.id} serving`, async () => ((await serving(cut)).status === 200 ? true : undefined), 30_000, 50);
  t.is((await post(cut, '/faults/isolate', { durationMs: 20_000 })).status, 200);
  const stale = await eventually('a staleness past the limit', async () => {
    const s = await serving(cut);
    t.is(s.status, 200, JSON.stringify(s.body));
    return s.body.stalenessMs! > 2500 ? s.body : undefined;
  }, 30_000, 100);
  t.like(stale, { serving: true, active: false, quorumLoss: 'keep-serving' });
  t.regex(stale.reason, /keep-serving/);
  await post(cut, '/faults/heal', {});
});

async function killTwoPassive(t: ExecutionContext, members: readonly ClusterMember[]): Promise<ClusterMember> {
  await withOrigin(t, members);
  const active = await activeMember(members);
  await eventually(`${active.id} routing`, async () => ((await proxied(active)) === 200 ? true : undefined));
  for (const m of members) if (m !== active) await m.proc.stop('SIGKILL');
  return active;
}

test('active-passive (default) with 2 of 3 members killed: the survivor stops being active and stops serving; its proxy still answers', async (t) => {
  const members = await startCluster(t);
  const survivor = await killTwoPassive(t, members);
  const s = await eventually('the survivor to lose the active role', async () => {
    const v = await serving(survivor);
    return v.status === 503 ? v.body : undefined;
  }, 30_000, 20);
  t.like(s, { mode: 'active-passive', serving: false, active: false, quorumLoss: 'stop' });
  t.is(await ready(survivor), 503);
  t.like(((await get(`${survivor.adminUrl}/cluster`)).body as { role: string }), { role: 'passive' });
  // No write can be acknowledged without a quorum.
  const w = await post(survivor, '/servers', { ip: '127.0.0.1', port: 10 }).catch(() => ({ status: 0 }));
  t.true(w.status === 503 || w.status === 504, `write without quorum: ${w.status}`);
  t.is(await proxied(survivor), 200, 'the proxy answers what reaches it with its last pool (documented)');
});

test('active-passive --quorum-loss keep-serving with 2 of 3 members killed: the last active member keeps serving its last pool, not the active role', async (t) => {
  const members = await startCluster(t, { env: { WELDR_QUORUM_LOSS: 'keep-serving' } });
  const survivor = await killTwoPassive(t, members);
  t.is(await eventually('the survivor to lose the active role', async () => ((await ready(survivor)) === 503 ? 503 : undefined), 30_000, 20), 503);
  const s = await eventually('a staleness of a second or more', async () => {
    const v = await serving(survivor);
    t.is(v.status, 200, JSON.stringify(v.body));
    return v.body.stalenessMs! >= 1000 ? v.body : undefined;
  }, 30_000, 50);
  t.like(s, { mode: 'active-passive', serving: true, active: false, quorumLoss: 'keep-serving' });
  t.regex(s.reason, /keep-serving/);
  t.is(await proxied(survivor), 200);
});
