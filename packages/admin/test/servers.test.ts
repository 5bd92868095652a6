import test from 'ava';
import { startAdmin } from './harness.js';

const JSON_TYPE = 'application/json; charset=utf-8';

test('POST /servers creates (201), then answers the same server with 200', async (t) => {
  const h = await startAdmin(t);
  const created = await h.call('POST', '/servers', { body: { ip: '127.0.0.1', port: '12345' } });
  t.is(created.status, 201);
  t.is(created.headers['content-type'], JSON_TYPE);
  t.is(created.headers['x-weldr-index'], '1');
  t.is(created.headers['location'], '/servers/127.0.0.1/12345');
  t.deepEqual(created.json, { id: '127.0.0.1:12345', ip: '127.0.0.1', port: 12345, weight: 1, healthCheck: {}, draining: false, createdIndex: 1, updatedIndex: 1 });

  const again = await h.call('POST', '/servers', { body: { ip: '127.0.0.1', port: 12345 } });
  t.is(again.status, 200);
  t.is(again.headers['location'], undefined);
  t.deepEqual(again.json, created.json);

  const reweighted = await h.call('POST', '/servers', { body: { ip: '127.0.0.1', port: 12345, weight: 4, healthCheck: { path: '/healthz' } } });
  t.is(reweighted.status, 200);
  t.like(reweighted.json, { weight: 4, healthCheck: { path: '/healthz' }, createdIndex: 1, updatedIndex: 3 });
});

test('POST /servers accepts the seed usage: curl -d (form content type) and no content type', async (t) => {
  const h = await startAdmin(t);
  const form = await h.call('POST', '/servers', { body: '{"ip":"127.0.0.1","port":"12345"}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(form.status, 201);
  const bare = await h.call('POST', '/servers', { body: '{"ip":"127.0.0.2","port":80}' });
  t.is(bare.status, 201);
  const vendor = await h.call('POST', '/servers', { body: '{"ip":"127.0.0.3","port":80}', headers: { 'content-type': 'application/merge-patch+json; charset=UTF-8' } });
  t.is(vendor.status, 201);
});

test('POST /servers canonicalises IPv6 in every accepted spelling', async (t) => {
  const h = await startAdmin(t);
  const first = await h.call('POST', '/servers', { body: { ip: '[0:0:0:0:0:0:0:1]', port: 8080 } });
  t.is(first.status, 201);
  t.like(first.json, { id: '[::1]:8080', ip: '::1' });
  t.is(first.headers['location'], '/servers/::1/8080');
  for (const ip of ['::1', '[::1]', '0::1', '0:0:0:0:0:0:0:0001']) {
    const r = await h.call('POST', '/servers', { body: { ip, port: '8080' } });
    t.is(r.status, 200, ip);
  }
  t.is(h.pool.snapshot().servers.length, 1);
});

test('GET /servers lists records in creation order with the index they reflect', async (t) => {
  const h = await startAdmin(t);
  await h.call('POST', '/servers', { body: { ip: '10.0.0.2', port: 80 } });
  await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
  const list = await h.call('GET', '/servers');
  t.is(list.status, 200);
  t.is(list.headers['x-weldr-index'], '2');
  t.deepEqual((list.json as Array<{ id: string }>).map((s) => s.id), ['10.0.0.2:80', '10.0.0.1:80']);
  const empty = await (await startAdmin(t)).call('GET', '/servers');
  t.deepEqual(empty.json, []);
  t.is(empty.headers['x-weldr-index'], '0');
});

test('reads are linearizable by default and local with ?stale=true', async (t) => {
  const h = await startAdmin(t);
  await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
  // A store that cannot confirm leadership fails linearizable reads but not stale ones.
  h.pool.hang = true;
  const stale = await h.call('GET', '/servers?stale=true');
  t.is(stale.status, 200);
  t.is(stale.headers['x-weldr-index'], '1');
  t.is((await h.call('GET', '/servers?stale')).status, 200);
  t.is((await h.call('GET', '/settings?stale=1')).status, 200);
  t.is((await h.call('GET', '/servers/10.0.0.1/80?stale=true')).status, 200);
});

const ipv6Paths = ['/servers/::1/8080', '/servers/%3A%3A1/8080', '/servers/[::1]/8080', '/servers/%5B%3A%3A1%5D/8080', '/servers/0:0::1/8080'];

for (const path of ipv6Paths) {
  test(`GET and DELETE accept the IPv6 path form ${path}`, async (t) => {
    const h = await startAdmin(t);
    await h.call('POST', '/servers', { body: { ip: '::1', port: 8080 } });
    const got = await h.call('GET', path);
    t.is(got.status, 200);
    t.like(got.json, { id: '[::1]:8080' });
    const removed = await h.call('DELETE', path);
    t.is(removed.status, 204);
    t.is(removed.text, '');
    t.is(removed.headers['x-weldr-index'], '2');
    t.is((await h.call('GET', path)).status, 404);
  });
}

test('DELETE /servers/:ip/:port answers 204, then 404 for a server that is gone', async (t) => {
  const h = await startAdmin(t);
  await h.call('POST', '/servers', { body: { ip: '127.0.0.1', port: 12345 } });
  t.is((await h.call('DELETE', '/servers/127.0.0.1/12345')).status, 204);
  const again = await h.call('DELETE', '/servers/127.0.0.1/12345');
  t.is(again.status, 404);
  t.deepEqual(again.json, { error: { code: 'NOT_FOUND', message: 'server 127.0.0.1:12345 is not in the pool' } });
  t.is(again.headers['x-weldr-index'], '3');
});

test('GET /servers/:ip/:port answers 404 for an unknown server and 400 for a malformed address', async (t) => {
  const h = await startAdmin(t);
  t.like((await h.call('GET', '/servers/10.0.0.1/80')).json, { error: { code: 'NOT_FOUND' } });
  const badIp = await h.call('GET', '/servers/db.internal/80');
  t.is(badIp.status, 400);
  t.like(badIp.json, { error: { code: 'INVALID_COMMAND', field: 'ip' } });
  const badPort = await h.call('GET', '/servers/10.0.0.1/http');
  t.like(badPort.json, { error: { code: 'INVALID_COMMAND', field: 'port' } });
  t.like((await h.call('DELETE', '/servers/10.0.0.1/0')).json, { error: { code: 'INVALID_COMMAND', field: 'port' } });
});

test('PATCH /servers/:ip/:port updates weight, health check and draining', async (t) => {
  const h = await startAdmin(t);
  await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
  const patched = await h.call('PATCH', '/servers/10.0.0.1/80', { body: { weight: 10, draining: true, healthCheck: { path: '/up', intervalMs: 5000 } } });
  t.is(patched.status, 200);
  t.is(patched.headers['x-weldr-index'], '2');
  t.like(patched.json, { weight: 10, draining: true, healthCheck: { path: '/up', intervalMs: 5000 }, updatedIndex: 2 });
  const unchanged = await h.call('PATCH', '/servers/10.0.0.1/80', { body: {} });
  t.is(unchanged.status, 200);
  t.like(unchanged.json, { updatedIndex: 2 });
  const missing = await h.call('PATCH', '/servers/10.0.0.9/80', { body: { weight: 2 } });
  t.is(missing.status, 404);
  t.like(missing.json, { error: { code: 'NOT_FOUND' } });
});

test('Idempotency-Key: a retried POST replays the first answer, a reused key for another body is 409', async (t) => {
  const h = await startAdmin(t);
  const headers = { 'idempotency-key': 'deploy-42' };
  const first = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 }, headers });
  t.is(first.status, 201);
  t.is(first.headers['idempotent-replayed'], undefined);
  const retry = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: '80' }, headers });
  t.is(retry.status, 201, 'the replay answers like the original');
  t.is(retry.headers['idempotent-replayed'], 'true');
  t.is(retry.headers['x-weldr-index'], '1', 'the index the write was applied at');
  t.deepEqual(retry.json, first.json);
  t.is(h.pool.proposals.at(-1)?.options?.requestId, 'deploy-42');

  const other = await h.call('POST', '/servers', { body: { ip: '10.0.0.2', port: 80 }, headers });
  t.is(other.status, 409);
  t.like(other.json, { error: { code: 'CONFLICT' } });

  // A retried DELETE with its key answers 204 again instead of 404.
  const del = { 'idempotency-key': 'remove-1' };
  t.is((await h.call('DELETE', '/servers/10.0.0.1/80', { headers: del })).status, 204);
  t.is((await h.call('DELETE', '/servers/10.0.0.1/80', { headers: del })).status, 204);
  t.is((await h.call('DELETE', '/servers/10.0.0.1/80')).status, 404);
});

test('an invalid Idempotency-Key is a 400 naming the header', async (t) => {
  const h = await startAdmin(t);
  const r = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 }, headers: { 'idempotency-key': 'x'.repeat(256) } });
  t.is(r.status, 400);
  t.like(r.json, { error: { code: 'INVALID_HEADER', field: 'Idempotency-Key' } });
  t.is(h.pool.proposals.length, 0);
});

test('an empty Idempotency-Key (sent, but blank) is a 400, not a write without a key', async (t) => {
  const h = await startAdmin(t);
  for (const key of ['', '   ']) {
    const r = await h.call('DELETE', '/servers/10.0.0.1/80', { headers: { 'idempotency-key': key } });
    t.is(r.status, 400, JSON.stringify(key));
    t.like(r.json, { error: { code: 'INVALID_HEADER', field: 'Idempotency-Key' } });
  }
  t.is(h.pool.proposals.length, 0);
});

test('writes are logged with the request id, command and index', async (t) => {
  const h = await startAdmin(t);
  await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 }, headers: { 'x-request-id': 'trace-1' } });
  const line = h.logs.find((l) => l.msg === 'pool write applied');
  t.like(line?.obj, { requestId: 'trace-1', command: 'AddServer', index: 1, duplicate: false });
});

test("POST /servers refuses this node's own listener (the proxy would forward to itself), in any spelling", async (t) => {
  const h = await startAdmin(t, { ownListenerAt: (ip, port) => (ip === '127.0.0.1' && port === 8080 ? 'proxy' : undefined) });
  for (const body of [{ ip: '127.0.0.1', port: 8080 }, { ip: '127.0.0.1', port: '8080' }]) {
    const r = await h.call('POST', '/servers', { body });
    t.is(r.status, 400);
    t.like(r.json, { error: { code: 'INVALID_COMMAND', field: 'port', message: "127.0.0.1:8080 is this node's own proxy listener: the proxy would forward requests to itself" } });
  }
  t.is(h.pool.proposals.length, 0);
  t.is((await h.call('POST', '/servers', { body: { ip: '127.0.0.1', port: 8081 } })).status, 201);
  // A malformed address is still reported by validation, with its own field.
  t.like((await h.call('POST', '/servers', { body: { ip: 'localhost', port: 8080 } })).json, { error: { field: 'ip' } });
});
