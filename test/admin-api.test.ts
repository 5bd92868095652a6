// The admin API seen from outside: stats counters follow traffic, bad input gets a
// clear 4xx in the one error shape, and nothing invalid reaches the pool.
import test from 'ava';
import { request } from 'undici';
import { adminCall } from './helpers/admin.js';
import { Cleanup } from './helpers/cleanup.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import { startNode, type WeldrNode } from './helpers/node.js';
import type { Origin } from './helpers/origins.js';
import { fetchVia } from './helpers/routing.js';

const cleanup = new Cleanup();
let node: WeldrNode;
let origin: Origin;

test.before(async () => {
  const fixture = await nodeWithOrigins(cleanup, ['adm-a'], { store: 'memory' });
  node = fixture.node;
  origin = fixture.origins[0]!;
});
test.after.always(() => cleanup.run());

interface Counters {
  success: number;
  failed: number;
}
interface Stats {
  client: Counters;
  server: Counters;
  servers: { id: string; success: number; failed: number }[];
}

/** GET /stats (totals) and GET /stats/detail (per server) together. */
const stats = async (): Promise<Stats> => {
  const [totals, detail] = await Promise.all([adminCall<Omit<Stats, 'servers'>>(node, 'GET', '/stats'), adminCall<Stats['servers']>(node, 'GET', '/stats/detail')]);
  if (totals.status !== 200 || detail.status !== 200) throw new Error(`GET /stats: ${totals.status}, /stats/detail: ${detail.status}`);
  return { ...totals.body, servers: detail.body };
};

test.serial('stats count successful and failed requests, in total and per server', async (t) => {
  const before = await stats();
  for (let i = 0; i < 5; i++) t.is((await fetchVia(node, '/')).status, 200);
  t.is((await fetchVia(node, '/reset')).status, 502);
  const after = await stats();
  t.is(after.client.success - before.client.success, 5);
  t.true(after.client.failed - before.client.failed >= 1);
  t.true(after.server.failed - before.server.failed >= 1);
  const server = after.servers.find((s) => s.id === `127.0.0.1:${origin.port}`);
  const serverBefore = before.servers.find((s) => s.id === `127.0.0.1:${origin.port}`);
  t.truthy(server);
  t.is(server!.success - serverBefore!.success, 5);
});

test.serial('GET /metrics is Prometheus text', async (t) => {
  const res = await adminCall<string>(node, 'GET', '/metrics');
  t.is(res.status, 200);
  t.regex(String(res.headers['content-type']), /text\/plain/);
  t.regex(res.body, /^# HELP /m);
});

const badAdds: [string, string][] = [
  ['not JSON', '{"ip": '],
  ['JSON but not an object', '[1,2]'],
  ['missing ip', '{"port": 8081}'],
  ['missing port', '{"ip": "127.0.0.1"}'],
  ['ip not an address', '{"ip": "not-an-ip", "port": 8081}'],
  ['port out of range', '{"ip": "127.0.0.1", "port": 70000}'],
  ['port zero', '{"ip": "127.0.0.1", "port": 0}'],
  ['port not a number', '{"ip": "127.0.0.1", "port": "http"}'],
  ['weight out of range', '{"ip": "127.0.0.1", "port": 8081, "weight": 0}'],
];

for (const [name, body] of badAdds) {
  test(`POST /servers with bad input (${name}) is 400 with an error code, and the pool is unchanged`, async (t) => {
    const before = await adminCall<unknown>(node, 'GET', '/servers');
    const res = await adminCall<{ error?: { code?: unknown; message?: unknown } }>(node, 'POST', '/servers', undefined, body);
    t.is(res.status, 400, JSON.stringify(res.body));
    t.is(typeof res.body.error?.code, 'string');
    t.is(typeof res.body.error?.message, 'string');
    t.deepEqual((await adminCall<unknown>(node, 'GET', '/servers')).body, before.body);
  });
}

test('DELETE of a server not in the pool is 404', async (t) => {
  const res = await adminCall<{ error?: { code?: unknown } }>(node, 'DELETE', '/servers/127.0.0.1/1');
  t.is(res.status, 404);
  t.is(typeof res.body.error?.code, 'string');
});

test('an unknown admin path is 404 in the error shape', async (t) => {
  const res = await adminCall<{ error?: { code?: unknown } }>(node, 'GET', '/no-such-thing');
  t.is(res.status, 404);
  t.is(typeof res.body.error?.code, 'string');
});

test('with --admin-token (here from WELDR_ADMIN_TOKEN), writes need the bearer token and reads stay open', async (t) => {
  const token = 'e2e-token-0123456789abcdef';
  const secured = await startNode(t, { id: 'n-secured', store: 'memory', env: { WELDR_ADMIN_TOKEN: token } });
  const body = { ip: '127.0.0.1', port: origin.port };
  const denied = await adminCall<{ error?: { code?: string } }>(secured, 'POST', '/servers', body);
  t.true(denied.status === 401 || denied.status === 403, String(denied.status));
  t.is((await adminCall(secured, 'GET', '/servers')).status, 200);
  const res = await request(`${secured.adminUrl}/servers`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  t.is(res.statusCode, 201);
  await res.body.text();
  t.false(secured.proc.stdout.includes(token), 'the token is never logged');
});

test.serial('a URL over the header limit is 431 in the error shape, and the admin API keeps serving', async (t) => {
  const res = await request(`${node.adminUrl}/servers/${'1'.repeat(20_000)}/80`);
  t.is(res.statusCode, 431);
  t.is(res.headers['content-type'], 'application/json; charset=utf-8');
  t.like(await res.body.json(), { error: { code: 'HEADERS_TOO_LARGE' } });
  t.is((await adminCall(node, 'GET', '/health')).status, 200);
});

test.serial("adding the node's own proxy listener as a server is refused (it would forward to itself)", async (t) => {
  for (const [ip, port, listener] of [['127.0.0.1', node.proxyPort, 'proxy'], ['127.0.0.1', node.adminPort, 'admin']] as const) {
    const res = await adminCall(node, 'POST', '/servers', { ip, port });
    t.is(res.status, 400);
    t.like(res.body, { error: { code: 'INVALID_COMMAND', field: 'port', message: `${ip}:${port} is this node's own ${listener} listener: the proxy would forward requests to itself` } });
  }
  const servers = await adminCall<{ port: number }[]>(node, 'GET', '/servers');
  t.false(servers.body.some((s) => s.port === node.proxyPort || s.port === node.adminPort));
});

test('a client that dribbles an admin request head is cut with a JSON 408 within seconds, not minutes', async (t) => {
  const { rawExchange } = await import('./helpers/raw-http.js');
  const started = Date.now();
  const { text, closedByServer } = await rawExchange(node.adminPort, 'POST /servers HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\n', { timeoutMs: 20_000 });
  const ms = Date.now() - started;
  t.true(closedByServer, 'closed by the admin listener');
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.regex(text, /"REQUEST_TIMEOUT"/);
  t.true(ms < 12_000, `cut after ${ms} ms`);
});
