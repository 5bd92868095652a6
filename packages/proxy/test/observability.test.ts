// The access log, per-origin figures, and the figures of several processes summed
// (what a node with workers reports): issue 13 item 1, issue 14 items 4 and 5.
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { MetricsRegistry, mergeCounters, sumTotals, zeroCounters, type AccessLogSink, type DataPlaneCounters, type Proxy } from '../src/index.js';
import { AccessLog } from '../src/access-log.js';
import { record, setup, snapshot, startOrigin, startProxy, type Origin } from './helpers.js';
import type { ServerRecord } from '@weldr/store';

function memorySink(): AccessLogSink & { lines: Record<string, unknown>[]; writes: number } {
  const sink = {
    lines: [] as Record<string, unknown>[],
    writes: 0,
    write(chunk: string): boolean {
      sink.writes++;
      for (const l of chunk.split('\n')) if (l !== '') sink.lines.push(JSON.parse(l) as Record<string, unknown>);
      return true;
    },
  };
  return sink;
}

test('access log: one JSON line per request with the documented fields, written in batches', async (t) => {
  const sink = memorySink();
  const { origin, p } = await setup(t, undefined, { accessLog: sink, nodeId: 'n7' });
  const gets = await Promise.all([1, 2, 3].map(() => request(`http://127.0.0.1:${p.port}/x?q="a"`)));
  for (const r of gets) await r.body.text();
  const trace = await request(`http://127.0.0.1:${p.port}/`, { method: 'TRACE' as 'GET' });
  await trace.body.text();
  await new Promise((r) => setImmediate(r));
  t.is(sink.lines.length, 4);
  const ok = sink.lines[0]!;
  t.like(ok, { event: 'access', node: 'n7', client: '127.0.0.1', method: 'GET', target: '/x?q=%22a%22', status: 200, origin: `127.0.0.1:${origin.port}`, retries: 0 });
  t.is(ok.bytes, Buffer.byteLength('origin:GET /x?q=%22a%22'));
  t.is(typeof ok.ms, 'number');
  t.regex(String(ok.id), /^[0-9a-f]{8}-[0-9a-z]+$/);
  t.is(new Set(sink.lines.map((l) => l.id)).size, 4, 'request ids are unique');
  t.like(sink.lines[3], { method: 'TRACE', status: 405, origin: null });
});

test('access log: lines of one event-loop turn reach the destination in one write', async (t) => {
  const sink = memorySink();
  const log = new AccessLog(sink, 'n1', 'abcd0123', { accessLogDropped: 0 });
  const targets = ['/', '/a"b\\c', '/\u00e9\u0001'];
  for (const target of targets) log.record('GET', target, 200, 1, 0.5, null, 0, '127.0.0.1');
  t.is(sink.writes, 0, 'nothing written from the request path');
  await new Promise((r) => setImmediate(r));
  t.is(sink.writes, 1);
  t.is(sink.lines.length, 3);
  t.deepEqual(sink.lines.map((l) => l.target), targets, 'targets that need escaping stay valid JSON');
  t.deepEqual(
    sink.lines.map((l) => l.id),
    ['abcd0123-1', 'abcd0123-2', 'abcd0123-3'],
  );
});

test('access log: a destination that is behind drops whole batches and counts the lines', (t) => {
  const counters = { accessLogDropped: 0 };
  const log = new AccessLog({ write: () => false }, 'n1', 'abcd0123', counters);
  log.record('GET', '/', 200, 1, 0.5, null, 0, '127.0.0.1');
  log.record('GET', '/', 200, 1, 0.5, null, 0, '127.0.0.1');
  log.flush();
  t.is(counters.accessLogDropped, 2);
});

/**
 * A proxy reporting into `registry`, routing to one live origin (404 for /missing, 200
 * otherwise) and then to `others`, after four requests (one 404) have gone through it.
 */
async function proxyWithTraffic(t: ExecutionContext, registry: Registry, others: ServerRecord[]): Promise<{ a: Origin; proxy: Proxy }> {
  const a = await startOrigin((req, res) => {
    res.statusCode = req.url === '/missing' ? 404 : 200;
    res.end('x');
  });
  const { proxy, port } = await startProxy(snapshot([record(a.port), ...others]), { metrics: registry, maxRetries: 1 });
  t.teardown(async () => {
    await proxy.close({ deadlineMs: 100 });
    await a.close();
  });
  for (const path of ['/', '/missing', '/', '/']) {
    const r = await request(`http://127.0.0.1:${port}${path}`);
    await r.body.text();
  }
  return { a, proxy };
}

test('per-origin figures: responses by class, failures by reason, in flight, latency; removed origins drop out of /metrics', async (t) => {
  const registry = new Registry();
  const { a, proxy } = await proxyWithTraffic(t, registry, [record(1)]);
  const text = await registry.metrics();
  const id = `127.0.0.1:${a.port}`;
  t.regex(text, new RegExp(`weldr_proxy_origin_requests_total\\{server="${id}",code_class="2xx"\\} 3`));
  t.regex(text, new RegExp(`weldr_proxy_origin_requests_total\\{server="${id}",code_class="4xx"\\} 1`));
  t.regex(text, new RegExp(`weldr_proxy_origin_request_duration_seconds_count\\{server="${id}"\\} 4`));
  t.regex(text, new RegExp(`weldr_proxy_origin_active_requests\\{server="${id}"\\} 0`));
  // Port 1 refuses: round-robin sent some attempts there, retried on the live origin.
  t.regex(text, /weldr_proxy_origin_attempt_failures_total\{server="127\.0\.0\.1:1",reason="refused"\} [1-9]/);
  proxy.update(snapshot([record(a.port)]));
  const after = await registry.metrics();
  t.notRegex(after, /server="127\.0\.0\.1:1"/, 'a removed origin has no series left');
  t.regex(after, new RegExp(`server="${id}"`));
});

test('MetricsRegistry: the per-origin families it writes itself read exactly as prom-client formats them, whole or in pieces', async (t) => {
  const registry = new MetricsRegistry();
  registry.setDefaultLabels({ nodeId: 'n1' });
  // More origins than one slice (250), so the pieces split families; the others refuse.
  const idle = Array.from({ length: 600 }, (_, i) => record(20_000 + i, {}, '127.0.0.2'));
  const { a } = await proxyWithTraffic(t, registry, [record(1), ...idle]);
  // The reference: the same metric objects in a plain prom-client registry (its formatter, fed by get()).
  const plain = new Registry();
  plain.setDefaultLabels({ nodeId: 'n1' });
  for (const m of registry.getMetricsAsArray()) plain.registerMetric(m as never);
  const reference = await plain.metrics();
  const whole = await registry.metrics();
  let pieces = 0;
  let joined = '';
  for await (const chunk of await registry.textChunks()) {
    pieces++;
    joined += chunk;
  }
  t.is(whole, reference);
  t.is(joined, reference);
  t.true(pieces > registry.getMetricsAsArray().length + 10, `the per-origin families came in slices (${pieces} pieces)`);
  const id = `127.0.0.1:${a.port}`;
  t.regex(whole, new RegExp(`weldr_proxy_origin_requests_total\\{server="${id}",code_class="2xx",nodeId="n1"\\} [1-9]`));
  t.regex(whole, new RegExp(`weldr_proxy_origin_request_duration_seconds_bucket\\{server="${id}",le="\\+Inf",nodeId="n1"\\} [1-9]`));
  t.regex(whole, /weldr_proxy_origin_health\{server="127\.0\.0\.2:20599",state="unknown",nodeId="n1"\} 1/);
});

test('figures of several processes are summed: counters, histograms, per origin; ejection and fail-open from any', async (t) => {
  const { p } = await setup(t);
  const one = p.proxy.counters();
  const r = await request(`http://127.0.0.1:${p.port}/`);
  await r.body.text();
  const two = p.proxy.counters();
  const sum: DataPlaneCounters = mergeCounters([one, two, { ...two, origins: two.origins.map((o) => ({ ...o, ejectedUntil: Date.now() + 60_000 })), failOpen: true }]);
  t.is(sum.counters.clientSuccess, 2);
  t.is(sum.counters.duration.count, 2);
  t.is(sum.origins.length, 1);
  t.is(sum.origins[0]!.success, 2);
  t.is(sum.origins[0]!.byClass[2], 2);
  t.is(sum.origins[0]!.duration.count, 2);
  t.true(sum.failOpen);
  const stats = p.proxy.statsFrom(sum);
  t.is(stats.client.success, 2);
  t.true(stats.servers[0]!.ejected, 'ejected in one worker: shown as ejected');
  t.is(stats.servers[0]!.success, 2);
});

test('a report without idle origins (a worker\'s) lists only origins with figures; summed with one that lists every origin, nothing is lost', async (t) => {
  const a = await startOrigin((_req, res) => res.end('x'));
  const idle = await startOrigin((_req, res) => res.end('x'));
  const { proxy, port } = await startProxy(snapshot([record(a.port), record(idle.port, { draining: true })]));
  t.teardown(async () => {
    await proxy.close({ deadlineMs: 100 });
    await a.close();
    await idle.close();
  });
  t.deepEqual(proxy.counters({ omitIdle: true }).origins, [], 'nothing served yet: no origin has a figure');
  for (let i = 0; i < 3; i++) {
    const r = await request(`http://127.0.0.1:${port}/`);
    await r.body.text();
  }
  const worker = proxy.counters({ omitIdle: true });
  t.deepEqual(worker.origins.map((o) => o.id), [`127.0.0.1:${a.port}`], 'the draining origin got nothing and is left out');
  t.is(worker.origins[0]!.success, 3);
  const full = proxy.counters();
  t.is(full.origins.length, 2);
  const sum = mergeCounters([full, worker]);
  t.deepEqual(sum.origins.map((o) => [o.id, o.success]).sort(), [[`127.0.0.1:${a.port}`, 6], [`127.0.0.1:${idle.port}`, 0]].sort());
});

test('sumTotals: client and server pairs and in-flight requests summed over the processes, failOpen from any, origins not matched up', (t) => {
  const part = (success: number, active: number, failOpen: boolean): DataPlaneCounters => ({
    counters: { ...zeroCounters(), clientSuccess: success, clientFailed: 1, serverSuccess: success - 1, serverFailed: 2 },
    origins: [
      { id: 'a', success, failed: 0, active, byClass: [0, 0, success, 0, 0, 0], failures: { refused: 0, reset: 0, timeout: 0, bad_response: 0 }, duration: { buckets: new Array<number>(16).fill(0), sum: 0, count: 0 }, ejectedUntil: 0, connected: 0, queued: 0 },
    ],
    failOpen,
  });
  const parts = [part(10, 1, false), part(5, 2, true)];
  t.deepEqual(sumTotals(parts), { client: { success: 15, failed: 2 }, server: { success: 13, failed: 4 }, failOpen: true, originActive: 3 });
  const merged = mergeCounters(parts);
  t.is(merged.counters.clientSuccess, 15, 'the same sums as mergeCounters');
  t.is(sumTotals([]).originActive, 0);
});
