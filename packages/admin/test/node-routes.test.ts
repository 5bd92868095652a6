import test from 'ava';
import { Counter, Gauge, Registry } from 'prom-client';
import { DEFAULT_SETTINGS } from '@weldr/store';
import { startAdmin } from './harness.js';

test('GET /health is 200 {"status":"ok"} whatever the role', async (t) => {
  const h = await startAdmin(t);
  h.cluster.active = false;
  const r = await h.call('GET', '/health');
  t.is(r.status, 200);
  t.deepEqual(r.json, { status: 'ok' });
  t.is(r.headers['content-type'], 'application/json; charset=utf-8');
  const head = await h.call('HEAD', '/health');
  t.is(head.status, 200);
  t.is(head.text, '');
});

test('GET /ready follows cluster.isActive()', async (t) => {
  const h = await startAdmin(t);
  const active = await h.call('GET', '/ready');
  t.is(active.status, 200);
  t.deepEqual(active.json, { status: 'ready', term: 1 }, 'the term of the active period');
  h.cluster.active = false;
  const passive = await h.call('GET', '/ready');
  t.is(passive.status, 503);
  t.like(passive.json, { error: { code: 'NOT_ACTIVE' } });
  t.is((await h.call('HEAD', '/ready')).status, 503);
});

test('GET /ready names the term from cluster.term() when there is one, without building the cluster status (samplers ask every few ms)', async (t) => {
  let infoCalls = 0;
  const h = await startAdmin(t, {
    cluster: {
      info: () => {
        infoCalls++;
        return { nodeId: 'n1', role: 'active', leaderId: 'n1', term: 3, commitIndex: 0, appliedIndex: 0, members: [] };
      },
      isActive: () => true,
      term: () => 7,
    },
  });
  const r = await h.call('GET', '/ready');
  t.is(r.status, 200);
  t.deepEqual(r.json, { status: 'ready', term: 7 });
  t.is(infoCalls, 0);
});

test('GET /stats has the seed shape plus failOpen', async (t) => {
  const h = await startAdmin(t);
  const r = await h.call('GET', '/stats');
  t.is(r.status, 200);
  t.deepEqual(r.json, { client: { success: 10, failed: 2 }, server: { success: 9, failed: 3 }, failOpen: false });
});

test('GET /stats takes the totals alone when the node gives them (no per-server list built); /stats/detail still the full stats', async (t) => {
  let statsCalls = 0;
  const totals = { client: { success: 40, failed: 1 }, server: { success: 39, failed: 2 }, failOpen: true, originActive: 3 };
  const h = await startAdmin(t, {
    stats: {
      stats: () => {
        statsCalls++;
        return { client: { success: 0, failed: 0 }, server: { success: 0, failed: 0 }, failOpen: false, servers: [] };
      },
      totals: () => Promise.resolve(totals),
    },
  });
  const r = await h.call('GET', '/stats');
  t.deepEqual(r.json, { client: { success: 40, failed: 1 }, server: { success: 39, failed: 2 }, failOpen: true });
  t.is(statsCalls, 0);
  t.deepEqual((await h.call('GET', '/stats/detail')).json, []);
  t.is(statsCalls, 1);
});

test('GET /stats/detail of a large pool: the same JSON and content type, written in slices', async (t) => {
  const servers = Array.from({ length: 1_234 }, (_, i) => ({
    id: `127.0.4.1:${1000 + i}`,
    ip: '127.0.4.1',
    port: 1000 + i,
    weight: 1 + (i % 3),
    success: i,
    failed: i % 7,
    health: i % 2 === 0 ? ('healthy' as const) : ('unknown' as const),
    ejected: false,
    draining: i % 5 === 0,
    active: i % 4,
    ...(i % 3 === 0 ? { lastCheck: { at: 1_700_000_000_000 + i, ok: true, status: 200 }, recentChecks: [true, false, true] } : {}),
  }));
  const h = await startAdmin(t, { stats: { stats: () => ({ client: { success: 0, failed: 0 }, server: { success: 0, failed: 0 }, failOpen: false, servers }) } });
  const big = await h.call('GET', '/stats/detail');
  t.is(big.status, 200);
  t.is(big.headers['content-type'], 'application/json; charset=utf-8');
  t.deepEqual(big.json, servers);
  t.is(big.headers['transfer-encoding'], 'chunked', 'streamed, not built as one string');
  // The small pool's answer (one piece) has the same type.
  const small = await startAdmin(t);
  t.is((await small.call('GET', '/stats/detail')).headers['content-type'], 'application/json; charset=utf-8');
});

test('GET /stats/detail is an array of per-server stats with the documented fields only', async (t) => {
  const h = await startAdmin(t);
  t.deepEqual((await h.call('GET', '/stats/detail')).json, []);
  const healthy = { id: '10.0.0.1:80', ip: '10.0.0.1', port: 80, weight: 2, success: 5, failed: 1, health: 'healthy', ejected: false, draining: false, active: 3, lastCheck: { at: 1_700_000_000_000, ok: true, status: 200 } } as const;
  const ejected = { id: '[::1]:81', ip: '::1', port: 81, weight: 1, success: 0, failed: 7, health: 'unhealthy', ejected: true, ejectedUntil: 1_700_000_030_000, draining: true, active: 0, lastCheck: { at: 1, ok: false, error: 'ECONNREFUSED' } } as const;
  h.stats.servers = [{ ...healthy, internalPoolRef: 'leak me' } as typeof healthy, ejected];
  const r = await h.call('GET', '/stats/detail');
  t.is(r.status, 200);
  t.deepEqual(r.json, [healthy, ejected]);
});

test('GET /settings and PATCH /settings (merge, index header)', async (t) => {
  const h = await startAdmin(t);
  const before = await h.call('GET', '/settings');
  t.deepEqual(before.json, DEFAULT_SETTINGS);
  t.is(before.headers['x-weldr-index'], '0');
  const patched = await h.call('PATCH', '/settings', { body: { balancer: 'least-connections', healthCheck: { path: '/healthz', intervalMs: 5000 }, passiveHealth: { enabled: false } } });
  t.is(patched.status, 200);
  t.is(patched.headers['x-weldr-index'], '1');
  t.deepEqual(patched.json, {
    balancer: 'least-connections',
    healthCheck: { ...DEFAULT_SETTINGS.healthCheck, path: '/healthz', intervalMs: 5000 },
    passiveHealth: { ...DEFAULT_SETTINGS.passiveHealth, enabled: false },
  });
  t.deepEqual((await h.call('GET', '/settings')).json, patched.json);
});

test('GET /cluster returns cluster.info() with the applied index header', async (t) => {
  const h = await startAdmin(t);
  h.cluster.info = { ...h.cluster.info, appliedIndex: 17, commitIndex: 18, term: 3 };
  const r = await h.call('GET', '/cluster');
  t.is(r.status, 200);
  t.is(r.headers['x-weldr-index'], '17');
  t.deepEqual(r.json, h.cluster.info);
});

test('GET /metrics serves the registry as Prometheus text, with admin request counters', async (t) => {
  const h = await startAdmin(t);
  new Counter({ name: 'weldr_proxy_requests_total', help: 'from the proxy', registers: [h.metrics] }).inc(3);
  await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
  await h.call('GET', '/servers/10.0.0.1/80');
  await h.call('GET', '/no/such/path');
  const r = await h.call('GET', '/metrics');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  t.regex(r.text, /weldr_proxy_requests_total 3/);
  t.regex(r.text, /weldr_admin_requests_total\{method="POST",route="\/servers",status="201"\} 1/);
  // Routes are labelled by pattern and unmatched paths collapse to one series.
  t.regex(r.text, /weldr_admin_requests_total\{method="GET",route="\/servers\/:ip\/:port",status="200"\} 1/);
  t.regex(r.text, /weldr_admin_requests_total\{method="GET",route="unmatched",status="404"\} 1/);
  t.regex(r.text, /weldr_admin_request_duration_seconds_bucket/);
});

test('two apps can share one registry', async (t) => {
  const first = await startAdmin(t);
  const second = await startAdmin(t, { metrics: first.metrics });
  await second.call('GET', '/health');
  t.regex((await first.call('GET', '/metrics')).text, /route="\/health"/);
});

test('GET /metrics: every sample line is valid exposition format, NaN spelled "NaN"', async (t) => {
  const h = await startAdmin(t);
  new Gauge({ name: 'weldr_test_not_sampled_yet', help: 'a gauge whose value is NaN', registers: [h.metrics] }).set(Number.NaN);
  const r = await h.call('GET', '/metrics');
  t.regex(r.text, /^weldr_test_not_sampled_yet NaN$/m);
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|[+-]Inf|-?[0-9.]+(e[+-]?[0-9]+)?)$/;
  for (const line of r.text.split('\n')) {
    if (line === '' || line.startsWith('# ')) continue;
    t.regex(line, sample);
  }
});

/** A registry that gives its text in pieces, as @weldr/proxy's MetricsRegistry does. */
function chunkedRegistry(chunks: () => Promise<AsyncIterable<string>>): Registry {
  return Object.assign(new Registry(), { textChunks: chunks });
}

test('GET /metrics from a registry that gives its text in pieces: streamed whole, NaN spelled "NaN" in every piece', async (t) => {
  const pieces = ['# HELP a x\n# TYPE a gauge\na 1', '\na 2', '\n\n# HELP b y\n# TYPE b gauge\nb Nan', '\n'];
  const h = await startAdmin(t, {
    metrics: chunkedRegistry(async () =>
      (async function* () {
        for (const p of pieces) {
          await new Promise((resolve) => setImmediate(resolve));
          yield p;
        }
      })(),
    ),
  });
  const r = await h.call('GET', '/metrics');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  t.is(r.text, pieces.join('').replace(/ Nan$/m, ' NaN'));
});

test('GET /metrics: a registry whose figures cannot be collected answers 500 before sending anything', async (t) => {
  const h = await startAdmin(t, { metrics: chunkedRegistry(() => Promise.reject(new Error('worker figures timed out'))) });
  const r = await h.call('GET', '/metrics');
  t.is(r.status, 500);
});
