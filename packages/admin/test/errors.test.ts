import test from 'ava';
import { StoreError } from '@weldr/store';
import { startAdmin } from './harness.js';

test('unknown routes are 404 NOT_FOUND in the error shape', async (t) => {
  const h = await startAdmin(t);
  for (const path of ['/nope', '/servers/10.0.0.1', '/servers/10.0.0.1/80/extra', '/ui/nope.js', '/ui/index.html']) {
    const r = await h.call('GET', path);
    t.is(r.status, 404, path);
    t.is(r.headers['content-type'], 'application/json; charset=utf-8');
    t.like(r.json, { error: { code: 'NOT_FOUND' } });
  }
});

test('a server addressed by its id in one segment (/servers/10.0.0.1:80) gets a 404 that shows the right form', async (t) => {
  const h = await startAdmin(t);
  for (const path of ['/servers/10.0.0.1:80', '/servers/[::1]:80']) {
    const r = await h.call('DELETE', path);
    t.is(r.status, 404, path);
    t.regex((r.json as { error: { message: string } }).error.message, /a server is addressed as \/servers\/\{ip\}\/\{port\}/);
  }
  t.notRegex((await h.call('GET', '/nope')).text, /addressed as/);
});

test('a wrong method on a known route is 405 with Allow', async (t) => {
  const h = await startAdmin(t);
  const cases: Array<[string, string, string[]]> = [
    ['PUT', '/servers', ['GET', 'HEAD', 'POST']],
    ['DELETE', '/servers', ['GET', 'HEAD', 'POST']],
    ['POST', '/servers/10.0.0.1/80', ['DELETE', 'GET', 'HEAD', 'PATCH']],
    ['POST', '/stats', ['GET', 'HEAD']],
    ['DELETE', '/health', ['GET', 'HEAD']],
    ['POST', '/settings', ['GET', 'HEAD', 'PATCH']],
  ];
  for (const [method, path, allowed] of cases) {
    const r = await h.call(method, path, { body: {} });
    t.is(r.status, 405, `${method} ${path}`);
    t.deepEqual(String(r.headers['allow']).split(', ').sort(), allowed);
    t.like(r.json, { error: { code: 'METHOD_NOT_ALLOWED' } });
  }
});

test('OPTIONS lists the allowed methods with 204; any other method on a route is 405 with Allow', async (t) => {
  const h = await startAdmin(t);
  const options = await h.call('OPTIONS', '/servers/::1/80');
  t.is(options.status, 204);
  t.deepEqual(String(options.headers['allow']).split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'PATCH']);
  // Methods outside the router's list (it would answer 501) are the same client mistake as PUT.
  for (const method of ['PROPFIND', 'TRACE', 'PURGE']) {
    const r = await h.call(method, '/servers');
    t.is(r.status, 405, method);
    t.is(r.headers['allow'], 'HEAD, GET, POST');
    t.like(r.json, { error: { code: 'METHOD_NOT_ALLOWED' } });
  }
  t.like((await h.call('PROPFIND', '/nope')).json, { error: { code: 'NOT_FOUND' } });
});

const storeFailures: Array<[string, StoreError, number, string, string | undefined]> = [
  ['NOT_LEADER', new StoreError('NOT_LEADER', 'this node is not the leader', { leaderId: 'n2' }), 503, 'NOT_LEADER', '1'],
  ['NO_QUORUM', new StoreError('NO_QUORUM', 'no quorum'), 503, 'NO_QUORUM', '1'],
  ['STOPPED', new StoreError('STOPPED', 'the pool store is closed'), 503, 'STOPPED', '1'],
  ['TIMEOUT', new StoreError('TIMEOUT', 'the write did not complete'), 504, 'TIMEOUT', undefined],
  ['OVERLOADED', new StoreError('OVERLOADED', '1024 requests are already waiting for the disk; retry shortly'), 503, 'OVERLOADED', '1'],
  ['NODE_FAILED', new StoreError('NODE_FAILED', 'a write to data directory /d failed: disk full; the write may have been applied'), 500, 'NODE_FAILED', undefined],
];

for (const [name, error, status, code, retryAfter] of storeFailures) {
  test(`store error ${name} on a write → ${status} ${code}`, async (t) => {
    const h = await startAdmin(t);
    h.pool.failWith = error;
    const r = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
    t.is(r.status, status);
    t.is(r.headers['retry-after'], retryAfter);
    t.like(r.json, { error: { code } });
    if (name === 'NOT_LEADER') t.like(r.json, { error: { leaderId: 'n2' } });
    if (name === 'TIMEOUT') t.regex((r.json as { error: { message: string } }).error.message, /may still be applied/);
  });
}

test('a read that cannot be made linearizable → 504 suggesting ?stale=true', async (t) => {
  const h = await startAdmin(t);
  h.pool.failWith = new StoreError('TIMEOUT', 'read index timed out');
  const r = await h.call('GET', '/servers');
  t.is(r.status, 504);
  t.regex((r.json as { error: { message: string } }).error.message, /stale=true/);
  t.is((await h.call('GET', '/servers?stale=true')).status, 200);
});

test('a store that overruns its deadline is cut off by the admin API with 504', async (t) => {
  const h = await startAdmin(t, { requestTimeoutMs: 50 });
  h.pool.hang = true;
  const started = Date.now();
  const write = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
  t.is(write.status, 504);
  t.like(write.json, { error: { code: 'TIMEOUT' } });
  t.is(h.pool.proposals[0]?.options?.timeoutMs, 50, 'the store was told the deadline too');
  const read = await h.call('GET', '/servers');
  t.is(read.status, 504);
  t.true(Date.now() - started < 2_000);
});

test('unexpected errors are 500 INTERNAL without leaking details, and are logged', async (t) => {
  const h = await startAdmin(t);
  h.pool.failWith = new Error('secret database path /var/lib/x');
  const r = await h.call('DELETE', '/servers/10.0.0.1/80');
  t.is(r.status, 500);
  t.deepEqual(r.json, { error: { code: 'INTERNAL', message: 'internal error' } });
  const logged = h.logs.find((l) => l.level === 'error');
  t.is(((logged?.obj as { err?: Error }).err)?.message, 'secret database path /var/lib/x');
});

test('X-Request-Id is echoed when sane and generated otherwise', async (t) => {
  const h = await startAdmin(t);
  t.is((await h.call('GET', '/health', { headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id'], 'abc-123');
  const generated = (await h.call('GET', '/health', { headers: { 'x-request-id': 'has space' } })).headers['x-request-id'];
  t.regex(String(generated), /^[0-9a-f-]{36}$/);
});

test('createAdminApp rejects nonsensical options', async (t) => {
  await t.throwsAsync(startAdmin(t, { bodyLimitBytes: 0 }), { instanceOf: TypeError });
  await t.throwsAsync(startAdmin(t, { requestTimeoutMs: -5 }), { instanceOf: TypeError });
  await t.throwsAsync(startAdmin(t, { auth: { token: '' } }), { instanceOf: TypeError });
});

test('expected refusals are not errors: a passive /ready and NOT_LEADER at debug, a commit timeout at warn without a stack', async (t) => {
  const h = await startAdmin(t, { requestTimeoutMs: 50 });
  h.cluster.active = false;
  t.is((await h.call('GET', '/ready')).status, 503);
  h.pool.failWith = new StoreError('NOT_LEADER', 'not the leader; the leader is n2', { leaderId: 'n2' });
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } })).status, 503);
  h.pool.failWith = undefined;
  h.pool.hang = true;
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 81 } })).status, 504);
  const answers = h.logs.filter((l) => (l.obj as { code?: string }).code !== undefined);
  t.deepEqual(
    answers.map((l) => [l.level, (l.obj as { code: string }).code]),
    [
      ['debug', 'NOT_ACTIVE'],
      ['debug', 'NOT_LEADER'],
      ['warn', 'TIMEOUT'],
    ],
  );
  t.false(answers.some((l) => 'err' in l.obj), 'no stack trace for an answer the node meant to give');
});
