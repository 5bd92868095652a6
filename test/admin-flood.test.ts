// A flood of admin writes cannot depose the leader or move the active role. 2,400
// connections opened at once from 6 loopback addresses, each sending one POST /servers
// with a new server, at the leader of a 3-member cluster (--workers 0, the default admin
// limits): before --admin-max-writes, hundreds of writes went into one Raft batch, their
// answers came in one long burst, the leader's event loop stalled past the lease and the
// election timeout, and leadership moved (NOT_LEADER answers). Now: the same leader and
// term throughout, no member changes its Raft role or becomes active, the leader's lease
// holds (a bounded number of lapses is tolerated on a loaded machine), every answer is
// a success or a refusal with Retry-After, and every acknowledged write is on every member.
// No timing threshold: the assertions are about roles, terms and the pool.
import net from 'node:net';
import test from 'ava';
import { Agent, request } from 'undici';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { eventually } from './helpers/wait.js';

const TOKEN = 'admin-flood-e2e-cluster-token-0123456789';
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const CONNECTIONS = 2_400;

interface Answer {
  readonly seq: number;
  readonly status: number | null;
  readonly code: string | null;
  readonly retryAfter: boolean;
  readonly error: string | null;
}

/** One connection: a POST /servers for 127.77.x.y:port (loopback: nothing is ever sent there, health checks are off), the answer's status line and error code. */
function oneWrite(port: number, seq: number): Promise<Answer> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ ip: `127.77.${seq >> 8}.${seq & 255}`, port: 2000 + seq, healthCheck: { enabled: false } });
    const s = net.connect({ host: '127.0.0.1', port, localAddress: SOURCES[seq % SOURCES.length]! });
    let data = '';
    let done = false;
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1];
      resolve({
        seq,
        status: status === undefined ? null : Number(status),
        code: /"code":"([A-Z_]+)"/.exec(data)?.[1] ?? null,
        retryAfter: /\r\nretry-after: \d+\r\n/i.test(data),
        error: status === undefined ? error : null,
      });
    };
    const timer = setTimeout(() => finish('no answer within 60 s'), 60_000);
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`POST /servers HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`));
    s.on('data', (chunk: string) => {
      if (data.length < 16_384) data += chunk;
    });
    s.on('end', () => finish('closed'));
    s.on('close', () => finish('closed'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
  });
}

test('2,400 admin connections at once, each a new server, at the leader: no leader change, no role change, every answer a success or a refusal with Retry-After, no acknowledged write lost', async (t) => {
  const c = await TestCluster.create(t, { args: () => ['--workers', '0'], env: () => ({ WELDR_CLUSTER_TOKEN: TOKEN, WELDR_LOG_LEVEL: 'info' }) });
  const leader = await c.leader();
  await eventually('the leader is active', async () => ((await c.call(leader, 'GET', '/ready')).status === 200 ? true : undefined), 15_000, 50);
  const term = (await c.call(leader, 'GET', '/cluster')).json as { term: number };

  // The observer: every member's /cluster and /ready on connections opened before the
  // flood (from 127.0.0.1, kept alive), so the connection limits do not refuse it.
  const agent = new Agent({ connections: 2, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
  t.teardown(() => agent.close());
  const get = async (m: Member, path: string): Promise<{ status: number; json: unknown }> => {
    const r = await request(`${c.adminUrl(m)}${path}`, { dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const text = await r.body.text();
    return { status: r.statusCode, json: r.statusCode === 200 ? JSON.parse(text) : text };
  };
  for (const m of c.members) await Promise.all([get(m, '/ready'), get(m, '/cluster?stale=true')]);
  const marks = new Map(c.members.map((m) => [m.id, m.proc!.lines.length]));
  const seen: string[] = [];
  let leaderLapses = 0;
  let observing = true;
  const observer = (async () => {
    for (let i = 0; observing && i < 10_000; i++) {
      await Promise.all(c.members.map(async (m) => {
        const [ready, cluster] = await Promise.all([get(m, '/ready'), get(m, '/cluster?stale=true')]);
        if (ready.status === 200 && m !== leader) seen.push(`${m.id} answered /ready 200`);
        if (m === leader && String(ready.json).includes('NOT_ACTIVE')) leaderLapses++;
        if (cluster.status !== 200) return; // refused by a connection limit: no news
        const info = cluster.json as { leaderId: string | null; term: number };
        if (info.term !== term.term) seen.push(`${m.id} is in term ${info.term}`);
        if (info.leaderId !== null && info.leaderId !== leader.id) seen.push(`${m.id} names ${info.leaderId} leader`);
      }));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: CONNECTIONS }, (_, seq) => oneWrite(leader.adminPort, seq)));
  const floodMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 1_000));
  observing = false;
  await observer;

  const byStatus = new Map<string, number>();
  for (const a of answers) {
    const key = a.status === null ? `no answer (${a.error})` : `${a.status}${a.code === null ? '' : ` ${a.code}`}`;
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
  }
  t.log(`${CONNECTIONS} connections in ${floodMs} ms: ${[...byStatus].map(([k, n]) => `${k}: ${n}`).join(', ')}`);

  // Nothing moved: the same leader and term seen from every member, no other member
  // active, no Raft role change anywhere.
  t.deepEqual([...new Set(seen)], [], 'the leader, its term and the active node stay put');
  const lines = c.members.flatMap((m) => m.proc!.lines.slice(marks.get(m.id)).map((l) => ({ m, l })));
  const moved = lines.filter(({ m, l }) => l.event === 'raft_role' || (l.event === 'role_changed' && m !== leader)).map(({ m, l }) => `${m.id}: ${String(l.event)} ${String(l.msg)}`);
  t.deepEqual(moved, [], 'no member changed its Raft role, and no other member became active');
  // The leader's own lease: on this machine it did not lapse in 16 runs of the bench;
  // a machine loaded by other tests may delay an acknowledgement past it once or twice
  // (each lapse is a role_changed to passive and back). A generous bound: the flood
  // without the write bound lapsed it for 0.3–1 s and moved the leadership every time.
  const lapses = lines.filter(({ m, l }) => m === leader && l.event === 'role_changed' && l.role === 'passive').length;
  t.log(`the leader's lease lapsed ${lapses} times; ${leaderLapses} polls of its /ready said NOT_ACTIVE`);
  t.true(lapses <= 2, `the leader's lease lapsed ${lapses} times`);
  t.true(leaderLapses <= 10, `${leaderLapses} polls of the leader's /ready said NOT_ACTIVE`);
  t.is((await get(leader, '/ready')).status, 200);

  // Every answer: a success, or a refusal that says when to come back.
  const refusal = (a: Answer): boolean => (a.status === 429 && a.code === 'TOO_MANY_WRITES') || (a.status === 503 && a.code === 'TOO_MANY_CONNECTIONS');
  const odd = answers.filter((a) => a.status !== 201 && !(refusal(a) && a.retryAfter));
  t.deepEqual(odd.slice(0, 5), [], `${odd.length} answers neither 201 nor a refusal with Retry-After`);
  const acknowledged = answers.filter((a) => a.status === 201);
  t.true(acknowledged.length > 0, 'some writes went through');

  // No acknowledged write lost: each is on every member.
  const want = acknowledged.map((a) => `127.77.${a.seq >> 8}.${a.seq & 255}:${2000 + a.seq}`);
  for (const m of c.members) {
    const missing = await eventually(`${m.id} holds every acknowledged write`, async () => {
      const has = new Set(await c.servers(m));
      const gone = want.filter((s) => !has.has(s));
      return gone.length === 0 ? gone : undefined;
    }, 30_000, 200).catch(async () => {
      const has = new Set(await c.servers(m));
      return want.filter((s) => !has.has(s));
    });
    t.deepEqual(missing, [], `${m.id}: acknowledged writes missing`);
  }
});
