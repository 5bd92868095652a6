// Pool settings changed through the admin API take effect on the data plane: active
// health checks, draining, weights, and a hanging origin.
import avaTest from 'ava';
import { request } from 'undici';
import { adminCall } from './helpers/admin.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import type { WeldrNode } from './helpers/node.js';
import type { Origin } from './helpers/origins.js';
import { distribution, fetchVia, waitForRouting } from './helpers/routing.js';
import { eventually, within } from './helpers/wait.js';
import { limitedTest } from './helpers/limit.js';

// Each test starts its own node and origins: at most 2 at a time (helpers/limit.ts).
const test = limitedTest(avaTest, 2);

async function patch(node: WeldrNode, path: string, body: unknown): Promise<void> {
  const res = await adminCall(node, 'PATCH', path, body);
  if (res.status !== 200) throw new Error(`PATCH ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

const serverPath = (origin: Origin): string => `/servers/127.0.0.1/${origin.port}`;

/** Fast checks of the origins' /health endpoint, which the tests can flip. */
const FAST_CHECKS = { healthCheck: { path: '/health', intervalMs: 200, timeoutMs: 150, healthyThreshold: 1, unhealthyThreshold: 2 } };

test('an origin failing its active health check leaves the rotation and comes back', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['hc-a', 'hc-b'], { store: 'memory' });
  const [a] = origins;
  await patch(node, '/settings', FAST_CHECKS);
  await request(`${a!.url}/health/fail`, { method: 'POST' }).then((r) => r.body.text());
  await waitForRouting(node, ['hc-b'], 15_000);
  const detail = await adminCall<{ id: string; health: string }[]>(node, 'GET', '/stats/detail');
  t.is(detail.body.find((s) => s.id === `127.0.0.1:${a!.port}`)?.health, 'unhealthy');

  await request(`${a!.url}/health/ok`, { method: 'POST' }).then((r) => r.body.text());
  const back = await waitForRouting(node, ['hc-a', 'hc-b'], 15_000);
  t.true((back.get('hc-a') ?? 0) > 0, 'hc-a serves again');
  const after = await adminCall<{ id: string; health: string }[]>(node, 'GET', '/stats/detail');
  t.is(after.body.find((s) => s.id === `127.0.0.1:${a!.port}`)?.health, 'healthy');
});

test('when every origin fails its health check the proxy fails open', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['open-a'], { store: 'memory' });
  await patch(node, '/settings', FAST_CHECKS);
  await request(`${origins[0]!.url}/health/fail`, { method: 'POST' }).then((r) => r.body.text());
  await eventually('the origin to be judged unhealthy', async () => {
    const detail = await adminCall<{ health: string }[]>(node, 'GET', '/stats/detail');
    return detail.body[0]?.health === 'unhealthy' ? true : undefined;
  });
  t.is((await fetchVia(node, '/')).serverId, 'open-a');
  t.true((await adminCall<{ failOpen: boolean }>(node, 'GET', '/stats')).body.failOpen);
});

test('PATCH draining: true takes a server out of rotation without dropping its in-flight request', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['dr-a', 'dr-b'], { store: 'memory' });
  const [a] = origins;
  // Find a request that lands on dr-a: round-robin alternates, so one of two does.
  const pending: Promise<{ status: number; id: unknown }>[] = [];
  for (let i = 0; i < 2; i++) pending.push(request(`${node.proxyUrl}/delay/1500`).then(async (r) => ({ status: r.statusCode, id: r.headers['x-server-id'], _: await r.body.text() })));
  await eventually('a slow request on dr-a', async () => {
    const res = await request(`${a!.url}/__requests`);
    const counts = (await res.body.json()) as { paths: Record<string, number> };
    return counts.paths['/delay/1500'] ? true : undefined;
  });
  await patch(node, serverPath(a!), { draining: true });
  const after = await distribution(node, 10);
  t.deepEqual([...after.keys()], ['dr-b']);
  const results = await within('the slow requests', Promise.all(pending), 15_000);
  t.deepEqual(results.map((r) => r.status), [200, 200]);
  t.true(results.some((r) => r.id === 'dr-a'));
});

test('weighted-round-robin follows the weights', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['w-a', 'w-b'], { store: 'memory' });
  await patch(node, '/settings', { balancer: 'weighted-round-robin' });
  await patch(node, serverPath(origins[0]!), { weight: 3 });
  const seen = await distribution(node, 40);
  t.log(Object.fromEntries(seen));
  t.is(seen.get('w-a'), 30);
  t.is(seen.get('w-b'), 10);
});

test('a client that goes away mid-response leaves nothing in flight', async (t) => {
  const { node } = await nodeWithOrigins(t, ['abort-a'], { store: 'memory' });
  const controller = new AbortController();
  const res = await request(`${node.proxyUrl}/large?size=${512 * 1024 * 1024}`, { signal: controller.signal });
  let received = 0;
  for await (const chunk of res.body) {
    received += (chunk as Buffer).length;
    if (received > 1024 * 1024) break;
  }
  controller.abort();
  await eventually('the exchange to be released', async () => {
    const detail = await adminCall<{ active: number }[]>(node, 'GET', '/stats/detail');
    return detail.body.every((s) => s.active === 0) ? true : undefined;
  });
  t.is((await fetchVia(node, '/')).status, 200);
  // Nothing in flight, so shutdown does not wait for the deadline.
  t.is((await node.proc.stop('SIGTERM')).code, 0);
});

test('an origin that hangs (SIGSTOP) costs a 504 at most and leaves the rotation', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['stop-a', 'stop-b'], { store: 'memory', args: ['--origin-response-timeout', '1s', '--origin-connect-timeout', '500ms'] });
  await patch(node, '/settings', FAST_CHECKS);
  await waitForRouting(node, ['stop-a', 'stop-b']);
  const b = origins[1]!;
  b.proc.signal('SIGSTOP');
  t.teardown(() => b.proc.signal('SIGCONT'));
  const statuses: number[] = [];
  await eventually(
    'stop-b to leave the rotation',
    async () => {
      const seen = await distribution(node, 6);
      for (const [key, n] of seen) if (key.startsWith('status')) for (let i = 0; i < n; i++) statuses.push(Number(key.slice(7)));
      return [...seen.keys()].join() === 'stop-a' ? true : undefined;
    },
    20_000,
  );
  t.log(`failed answers while stop-b hung: ${statuses.join(', ') || 'none'}`);
  t.true(statuses.every((s) => s === 504 || s === 502), statuses.join(','));
  t.true(statuses.length <= 4, `${statuses.length} failures`);
});
