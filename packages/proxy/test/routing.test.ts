// Routing, errors by source, retries, health and draining, end to end on loopback.
import test from 'ava';
import { request } from 'undici';
import { Registry } from 'prom-client';
import { deadPort, record, snapshot, startOrigin, startProxy, until } from './helpers.js';

const get = async (port: number, path = '/', opts: Parameters<typeof request>[1] = {}) => {
  const res = await request(`http://127.0.0.1:${port}${path}`, opts);
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
};

test('no servers → 503 NO_ORIGIN', async (t) => {
  const p = await startProxy(snapshot([]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await get(p.port);
  t.is(r.status, 503);
  t.is(r.headers['x-weldr-error'], 'NO_ORIGIN');
  t.deepEqual(p.proxy.stats().client, { success: 0, failed: 1 });
});

test('refused origin → 502 ORIGIN_REFUSED; with another origin the request is retried there', async (t) => {
  const dead = await deadPort();
  const alone = await startProxy(snapshot([record(dead)]));
  t.teardown(() => alone.proxy.close({ deadlineMs: 100 }));
  const r = await get(alone.port);
  t.is(r.status, 502);
  t.is(r.headers['x-weldr-error'], 'ORIGIN_REFUSED');
  t.deepEqual(alone.proxy.stats().server, { success: 0, failed: 1 });

  const good = await startOrigin();
  const p = await startProxy(snapshot([record(dead), record(good.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await good.close();
  });
  for (let i = 0; i < 4; i++) t.is((await get(p.port)).status, 200);
  // A POST with a body is retried too when nothing reached the refused origin.
  const post = await get(p.port, '/p', { method: 'POST', body: 'payload' });
  t.is(post.status, 200);
  t.is(good.seen.at(-1)!.body, 'payload');
  const s = p.proxy.stats();
  t.is(s.client.success, 5);
  t.true(s.servers.find((x) => x.port === dead)!.failed >= 2);
});

test('origin that never answers → 504 ORIGIN_TIMEOUT (no retry of a response timeout)', async (t) => {
  const slow = await startOrigin(() => undefined);
  const other = await startOrigin();
  const p = await startProxy(snapshot([record(slow.port), record(other.port)]), { timeouts: { originResponseMs: 200 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await slow.close();
    await other.close();
  });
  const results = await Promise.all([get(p.port), get(p.port)]);
  const statuses = results.map((r) => r.status).sort();
  t.deepEqual(statuses, [200, 504]);
  t.is(results.find((r) => r.status === 504)!.headers['x-weldr-error'], 'ORIGIN_TIMEOUT');
  t.is(other.seen.length, 1);
});

test('origin reset before responding: idempotent GET retried elsewhere, POST with body → 502', async (t) => {
  const resetter = await startOrigin((req) => req.socket.destroy());
  const good = await startOrigin();
  const p = await startProxy(snapshot([record(resetter.port), record(good.port)], { balancer: 'round-robin' }));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await resetter.close();
    await good.close();
  });
  // Round-robin starts at the resetter.
  t.is((await get(p.port)).status, 200);
  t.is(resetter.seen.length, 1);
  // Next pick is `good`, then the resetter again for the POST.
  t.is((await get(p.port)).status, 200);
  const post = await get(p.port, '/p', { method: 'POST', body: 'x' });
  t.is(post.status, 502);
  t.is(post.headers['x-weldr-error'], 'ORIGIN_RESET');
});

test('a reset GET is retried on the same origin when it is the only one (stale keep-alive race)', async (t) => {
  let first = true;
  const origin = await startOrigin((req, res) => {
    if (first) {
      first = false;
      req.socket.destroy();
    } else res.end('second try');
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const r = await get(p.port);
  t.is(r.status, 200);
  t.is(r.body, 'second try');
  t.deepEqual(p.proxy.stats().server, { success: 1, failed: 1 });
});

test('round-robin spreads requests; update() adds a server immediately and removes one', async (t) => {
  const a = await startOrigin(undefined, 'a');
  const b = await startOrigin(undefined, 'b');
  const c = await startOrigin(undefined, 'c');
  const p = await startProxy(snapshot([record(a.port), record(b.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const names = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await get(p.port)).body.split(':')[0]!);
    return out.sort().join('');
  };
  t.is(await names(4), 'aabb');
  p.proxy.update(snapshot([record(a.port), record(b.port), record(c.port)]));
  t.is(await names(6), 'aabbcc');
  p.proxy.update(snapshot([record(c.port)]));
  t.is(await names(3), 'ccc');
  t.deepEqual(p.proxy.stats().servers.map((s) => s.port), [c.port]);
});

test('weighted round-robin honours weights end to end', async (t) => {
  const a = await startOrigin(undefined, 'a');
  const b = await startOrigin(undefined, 'b');
  const p = await startProxy(snapshot([record(a.port, { weight: 3 }), record(b.port)], { balancer: 'weighted-round-robin' }));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([a.close(), b.close()]);
  });
  for (let i = 0; i < 8; i++) await get(p.port);
  t.is(a.seen.length, 6);
  t.is(b.seen.length, 2);
});

test('removed server drains: its in-flight request completes, new requests go elsewhere', async (t) => {
  let release: (() => void) | null = null;
  const slow = await startOrigin((_req, res) => {
    release = () => res.end('slow-done');
  }, 'slow');
  const fast = await startOrigin(undefined, 'fast');
  const p = await startProxy(snapshot([record(slow.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([slow.close(), fast.close()]);
  });
  const inflight = get(p.port, '/long');
  await until(() => release !== null);
  t.is(p.proxy.stats().servers[0]!.active, 1);
  p.proxy.update(snapshot([record(fast.port)]));
  const next = await get(p.port, '/new');
  t.is(next.body, 'fast:GET /new');
  release!();
  const done = await inflight;
  t.is(done.status, 200);
  t.is(done.body, 'slow-done');
  t.is(slow.seen.length, 1);
});

test('a draining server gets no new requests but stays in stats', async (t) => {
  const a = await startOrigin(undefined, 'a');
  const b = await startOrigin(undefined, 'b');
  const p = await startProxy(snapshot([record(a.port, { draining: true }), record(b.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([a.close(), b.close()]);
  });
  for (let i = 0; i < 4; i++) await get(p.port);
  t.is(a.seen.length, 0);
  t.is(b.seen.length, 4);
  t.true(p.proxy.stats().servers[0]!.draining);
  // Only draining servers: nothing to route to (fail-open never includes draining ones).
  p.proxy.update(snapshot([record(a.port, { draining: true })]));
  t.is((await get(p.port)).status, 503);
  t.false(p.proxy.stats().failOpen);
});

test('passive ejection: consecutive failures eject a killed origin; traffic moves on', async (t) => {
  const victim = await startOrigin(undefined, 'victim');
  const good = await startOrigin(undefined, 'good');
  const victimPort = victim.port;
  const passiveHealth = { enabled: true, consecutiveFailures: 3, baseEjectionMs: 60_000, maxEjectionMs: 120_000 };
  const p = await startProxy(snapshot([record(victimPort), record(good.port)], { passiveHealth }), { maxRetries: 0 });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await good.close();
  });
  await get(p.port);
  await get(p.port);
  await victim.close();
  let failed = 0;
  for (let i = 0; i < 20; i++) if ((await get(p.port)).status === 502) failed++;
  t.is(failed, 3, 'exactly consecutiveFailures requests failed before ejection');
  const s = p.proxy.stats().servers.find((x) => x.port === victimPort)!;
  t.true(s.ejected);
  t.is(typeof s.ejectedUntil, 'number');
  t.is(s.failed, 3);
  t.true(p.log.lines.some((l) => l.msg === 'origin ejected after consecutive failures'));
});

test('active checks: a failing origin is demoted at once and traffic avoids it; recovery promotes it', async (t) => {
  let healthy = false;
  const flaky = await startOrigin((req, res) => {
    if (req.url === '/health') res.writeHead(healthy ? 200 : 500).end();
    else res.end('flaky');
  });
  const good = await startOrigin(undefined, 'good');
  const healthCheck = { enabled: true, method: 'GET' as const, path: '/health', intervalMs: 50, timeoutMs: 500, expectedStatus: { min: 200, max: 299 }, healthyThreshold: 2, unhealthyThreshold: 2, jitterMs: 10 };
  const p = await startProxy(snapshot([record(flaky.port), record(good.port, { healthCheck: { path: '/' } })], { healthCheck }), { healthChecks: true });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([flaky.close(), good.close()]);
  });
  const server = () => p.proxy.stats().servers.find((s) => s.port === flaky.port)!;
  await until(() => server().health === 'unhealthy');
  t.false(server().lastCheck!.ok);
  t.is(server().lastCheck!.status, 500);
  t.is(server().recentChecks?.at(-1), false, 'the check history ends with the failure');
  for (let i = 0; i < 4; i++) t.is((await get(p.port)).body.split(':')[0], 'good');
  healthy = true;
  await until(() => server().health === 'healthy');
  await until(() => p.proxy.stats().servers.every((s) => s.health === 'healthy'));
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add((await get(p.port)).body.split(':')[0]!);
  t.true(bodies.has('flaky'));
});

test('fail-open: every server unhealthy → route to all of them, flagged in stats, logged once', async (t) => {
  const a = await startOrigin((req, res) => res.writeHead(req.url === '/health' ? 503 : 200).end('a'));
  const b = await startOrigin((req, res) => res.writeHead(req.url === '/health' ? 503 : 200).end('b'));
  const healthCheck = { enabled: true, method: 'GET' as const, path: '/health', intervalMs: 40, timeoutMs: 500, expectedStatus: { min: 200, max: 299 }, healthyThreshold: 1, unhealthyThreshold: 1, jitterMs: 0 };
  const registry = new Registry();
  const p = await startProxy(snapshot([record(a.port), record(b.port)], { healthCheck }), { healthChecks: true, metrics: registry });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await Promise.all([a.close(), b.close()]);
  });
  await until(() => p.proxy.stats().failOpen);
  t.true(p.proxy.stats().servers.every((s) => s.health === 'unhealthy'));
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const r = await get(p.port);
    t.is(r.status, 200);
    bodies.add(r.body);
  }
  t.deepEqual([...bodies].sort(), ['a', 'b']);
  await new Promise((r) => setTimeout(r, 200));
  t.is(p.log.lines.filter((l) => /failing open/.test(l.msg ?? '')).length, 1);
  const text = await registry.metrics();
  t.regex(text, /weldr_proxy_fail_open 1/);
  t.regex(text, /weldr_health_checks_total\{result="fail"\} [1-9]/);
  t.regex(text, /weldr_health_checks_total\{result="pass"\} 0/);
  t.regex(text, /weldr_proxy_requests_total\{code_class="2xx"\} 4/);
  t.regex(text, /weldr_proxy_origin_health\{server="127\.0\.0\.1:\d+",state="unhealthy"\} 1/);
  t.regex(text, /weldr_proxy_request_duration_seconds_count 4/);
  t.regex(text, /weldr_proxy_request_duration_seconds_bucket\{le="\+Inf"\} 4/);
});

test('close() lets an in-flight request finish, then stops', async (t) => {
  const origin = await startOrigin((_req, res) => setTimeout(() => res.end('late'), 150));
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(() => origin.close());
  const inflight = get(p.port);
  await until(() => origin.server.listenerCount('request') > 0 && p.proxy.stats().servers[0]!.active === 1);
  const closed = p.proxy.close({ deadlineMs: 5_000 });
  const r = await inflight;
  t.is(r.body, 'late');
  await closed;
  t.false(p.proxy.server.listening);
});
