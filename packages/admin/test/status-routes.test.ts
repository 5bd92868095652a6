// The status page's files and the node-local views it reads (/stats/history, /events,
// /node). The page itself is tested in a browser: test/status-page.test.ts.
import test from 'ava';
import { NodeEvents, StatsHistory } from '../src/index.js';
import { fakeClusterInfo, fakeStats, startAdmin } from './harness.js';

test('the page is served at / and /ui/ with its assets, a strict CSP and revalidation by ETag', async (t) => {
  const h = await startAdmin(t);
  const root = await h.call('GET', '/');
  t.is(root.status, 200);
  t.is(root.headers['content-type'], 'text/html; charset=utf-8');
  t.regex(root.text, /<script type="module" src="\/ui\/status.js">/);
  t.regex(String(root.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  t.is(root.headers['x-frame-options'], 'DENY');
  t.is((await h.call('GET', '/ui/')).text, root.text);
  t.is((await h.call('GET', '/ui')).text, root.text);
  const js = await h.call('GET', '/ui/status.js');
  t.is(js.headers['content-type'], 'text/javascript; charset=utf-8');
  t.regex(js.text, /\/cluster/);
  t.is((await h.call('GET', '/ui/status.css')).headers['content-type'], 'text/css; charset=utf-8');
  const again = await h.call('GET', '/ui/status.js', { headers: { 'if-none-match': String(js.headers.etag) } });
  t.is(again.status, 304);
  t.is(again.text, '');
});

test('with reads closed by the token, the page still loads without one and the data does not', async (t) => {
  const h = await startAdmin(t, { auth: { token: 'sekret', reads: true, openPaths: ['/health'] } });
  for (const path of ['/', '/ui/', '/ui/status.js', '/ui/status.css']) t.is((await h.call('GET', path)).status, 200, path);
  for (const path of ['/cluster', '/stats/history', '/events', '/node']) {
    t.is((await h.call('GET', path)).status, 401, path);
    t.is((await h.call('GET', path, { headers: { authorization: 'Bearer sekret' } })).status, 200, path);
  }
});

test('GET /stats/history: cumulative samples, oldest first, bounded', async (t) => {
  let now = 1_000;
  const stats = fakeStats();
  const history = new StatsHistory(() => stats, { intervalMs: 5_000, keep: 3, now: () => now });
  for (let i = 0; i < 4; i++) {
    await history.sample();
    now += 5_000;
  }
  const h = await startAdmin(t, { history });
  const r = await h.call('GET', '/stats/history');
  t.deepEqual(r.json, {
    intervalMs: 5_000,
    samples: [6_000, 11_000, 16_000].map((at) => ({ at, client: { success: 10, failed: 2 }, server: { success: 9, failed: 3 }, active: 0 })),
  });
  t.throws(() => new StatsHistory(() => stats, { keep: 1 }), { instanceOf: TypeError });
});

test('StatsHistory from totals: the requests in flight to origins come from originActive', async (t) => {
  const history = new StatsHistory(() => ({ client: { success: 5, failed: 1 }, server: { success: 4, failed: 2 }, failOpen: false, originActive: 7 }), { now: () => 42 });
  await history.sample();
  t.deepEqual(history.view().samples, [{ at: 42, client: { success: 5, failed: 1 }, server: { success: 4, failed: 2 }, active: 7 }]);
});

test('GET /events?since: only what is new, bounded; a bad since is 400', async (t) => {
  const events = new NodeEvents(2, () => 42);
  events.add('role', 'follower, leader n1 (term 2)', { role: 'follower', leader: 'n1', term: 2 });
  events.add('role', 'candidate (term 3)');
  events.add('role', 'leader (term 3)');
  const h = await startAdmin(t, { events });
  const all = await h.call('GET', '/events');
  t.deepEqual(all.json, {
    events: [
      { seq: 2, at: 42, kind: 'role', message: 'candidate (term 3)' },
      { seq: 3, at: 42, kind: 'role', message: 'leader (term 3)' },
    ],
    next: 3,
  });
  t.deepEqual((await h.call('GET', '/events?since=3')).json, { events: [], next: 3 });
  for (const bad of ['-1', 'x', '1.5', '99999999999999999999']) {
    const r = await h.call('GET', `/events?since=${bad}`);
    t.is(r.status, 400, bad);
    t.like(r.json, { error: { code: 'INVALID_QUERY', field: 'since' } });
  }
});

test('GET /node: what the node gives, or at least its id', async (t) => {
  const bare = await startAdmin(t);
  t.deepEqual((await bare.call('GET', '/node')).json, { id: 'n1' });
  const view = { id: 'n1', version: '1.2.3', pid: 7, startedAt: 5, listeners: { admin: '127.0.0.1:8687' }, settings: { adminToken: '[redacted]', raftHeartbeat: 50 } };
  const h = await startAdmin(t, { node: () => view });
  t.deepEqual((await h.call('GET', '/node')).json, view);
});

test('GET /audit: the applied admin changes with who, when and from where, paged by index; bad paging is 400', async (t) => {
  const h = await startAdmin(t);
  for (let port = 1; port <= 3; port++) {
    const r = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port }, headers: { 'idempotency-key': `add-${port}` } });
    t.is(r.status, 201, r.text);
  }
  // Refused: changes nothing, so not audited.
  t.is((await h.call('DELETE', '/servers/10.0.0.9/80')).status, 404);
  // Relay headers a client made up (no verifier here, as on a node without a cluster
  // secret): not trusted — recorded as arrived at n1 from the socket's address.
  const relayed = await h.call('PATCH', '/settings', { body: { balancer: 'least-connections' }, headers: { 'x-weldr-forwarded-by': 'n2', 'x-weldr-client-address': '192.0.2.7' } });
  t.is(relayed.status, 200, relayed.text);
  const all = await h.call('GET', '/audit');
  t.is(all.status, 200);
  const body = all.json as { index: number; retention: number; oldest: number; next: number; entries: { index: number; at: number; nodeId: string; client?: string; idempotencyKey: string; command: { type: string }; result: string }[] };
  // The refused DELETE took index 4 in the log, and left no entry.
  t.is(all.headers['x-weldr-index'], '5');
  t.like(body, { index: 5, retention: 1000, oldest: 1, next: 5 });
  t.deepEqual(
    body.entries.map((e) => [e.index, e.nodeId, e.command.type, e.result]),
    [
      [1, 'n1', 'AddServer', 'created'],
      [2, 'n1', 'AddServer', 'created'],
      [3, 'n1', 'AddServer', 'created'],
      [5, 'n1', 'UpdateSettings', 'settings'],
    ],
  );
  t.is(body.entries[0]?.idempotencyKey, 'add-1');
  t.regex(body.entries[0]?.client ?? '', /127\.0\.0\.1/);
  t.regex(body.entries[3]?.client ?? '', /127\.0\.0\.1/);
  t.true(body.entries.every((e) => Math.abs(e.at - Date.now()) < 600_000), 'dated by the proposer\'s clock');
  const page = await h.call('GET', '/audit?since=1&limit=2&stale=true');
  t.deepEqual((page.json as typeof body).entries.map((e) => e.index), [2, 3]);
  t.is((page.json as typeof body).next, 3);
  const none = await h.call('GET', '/audit?since=5');
  t.like(none.json, { entries: [], next: 5 });
  for (const bad of ['since=-1', 'since=x', 'limit=0', 'limit=501', 'limit=2.5', 'stale=maybe']) {
    const r = await h.call('GET', `/audit?${bad}`);
    t.is(r.status, 400, bad);
    t.is((r.json as { error: { code: string } }).error.code, 'INVALID_QUERY', bad);
  }
});

test('a write names the node it arrived at from deps.nodeId, without building the cluster status (cluster.info) per write', async (t) => {
  let infoCalls = 0;
  const h = await startAdmin(t, {
    nodeId: 'n7',
    cluster: {
      info: () => {
        infoCalls++;
        return fakeClusterInfo();
      },
      isActive: () => true,
    },
  });
  for (let port = 1; port <= 3; port++) t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.2', port } })).status, 201);
  t.is(infoCalls, 0);
  const audit = (await h.call('GET', '/audit?stale=true')).json as { entries: { nodeId: string }[] };
  t.deepEqual(audit.entries.map((e) => e.nodeId), ['n7', 'n7', 'n7']);
});

test('audit origin: a relayed write is attributed to the follower only when the node verified the relay (deps.relayOrigin)', async (t) => {
  const h = await startAdmin(t, {
    relayOrigin: (req) => (req.headers['x-weldr-relay-proof'] === 'good' && req.method === 'POST' ? { nodeId: 'n2', client: '192.0.2.7' } : undefined),
  });
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 1 }, headers: { 'x-weldr-relay-proof': 'good' } })).status, 201);
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 2 }, headers: { 'x-weldr-relay-proof': 'forged' } })).status, 201);
  const entries = ((await h.call('GET', '/audit')).json as { entries: { nodeId: string; client?: string }[] }).entries;
  t.like(entries[0], { nodeId: 'n2', client: '192.0.2.7' });
  t.is(entries[1]?.nodeId, 'n1');
  t.regex(entries[1]?.client ?? '', /127\.0\.0\.1/);
});
