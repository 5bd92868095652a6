import test from 'ava';
import { startAdmin } from './harness.js';

const token = 's3cret-token';
const writes: Array<[string, string, unknown]> = [
  ['POST', '/servers', { ip: '10.0.0.1', port: 80 }],
  ['PATCH', '/servers/10.0.0.1/80', { weight: 2 }],
  ['DELETE', '/servers/10.0.0.1/80', undefined],
  ['PATCH', '/settings', { balancer: 'power-of-two' }],
  ['POST', '/servers/batch', { commands: [{ type: 'UpdateServer', ip: '10.0.0.1', port: 80, weight: 3 }] }],
];

test('without auth configured, writes need no credentials', async (t) => {
  const h = await startAdmin(t);
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } })).status, 201);
});

for (const [method, path, body] of writes) {
  test(`with a token, ${method} ${path}: 401 without credentials, 403 with a wrong token, success with the right one`, async (t) => {
    const h = await startAdmin(t, { auth: { token } });
    // Seed the server directly so PATCH/DELETE have something to act on.
    await h.pool.inner.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80 });

    const missing = await h.call(method, path, { body });
    t.is(missing.status, 401);
    t.is(missing.headers['www-authenticate'], 'Bearer realm="weldr-admin"');
    t.like(missing.json, { error: { code: 'UNAUTHORIZED' } });

    const basic = await h.call(method, path, { body, headers: { authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` } });
    t.is(basic.status, 401);

    const wrong = await h.call(method, path, { body, headers: { authorization: 'Bearer nope' } });
    t.is(wrong.status, 403);
    t.like(wrong.json, { error: { code: 'FORBIDDEN' } });

    const prefix = await h.call(method, path, { body, headers: { authorization: `Bearer ${token.slice(0, -1)}` } });
    t.is(prefix.status, 403);
    t.is(h.pool.proposals.length, 0, 'nothing was proposed without valid credentials');

    const ok = await h.call(method, path, { body, headers: { authorization: `bearer ${token}` } });
    t.true(ok.status >= 200 && ok.status < 300, `${ok.status} ${ok.text}`);
  });
}

test('credentials are checked before the body is read or validated', async (t) => {
  const h = await startAdmin(t, { auth: { token }, bodyLimitBytes: 10 });
  const r = await h.call('POST', '/servers', { body: '{"this is": "not even valid and too long"' });
  t.is(r.status, 401);
});

test('reads stay open when a token is configured', async (t) => {
  const h = await startAdmin(t, { auth: { token } });
  for (const path of ['/servers', '/settings', '/stats', '/stats/detail', '/cluster', '/health', '/ready', '/metrics']) {
    t.is((await h.call('GET', path)).status, 200, path);
  }
});

test('with reads: true, reads need the token too, except the open paths; the error shape is the same', async (t) => {
  const h = await startAdmin(t, { auth: { token, reads: true, openPaths: ['/health', '/ready'] } });
  for (const path of ['/servers', '/settings', '/stats', '/stats/detail', '/cluster', '/metrics', '/no-such-path']) {
    const missing = await h.call('GET', path);
    t.is(missing.status, 401, path);
    t.like(missing.json, { error: { code: 'UNAUTHORIZED' } });
    t.is(missing.headers['www-authenticate'], 'Bearer realm="weldr-admin"');
    const wrong = await h.call('GET', path, { headers: { authorization: 'Bearer nope' } });
    t.is(wrong.status, 403, path);
    t.like(wrong.json, { error: { code: 'FORBIDDEN' } });
    t.is((await h.call('HEAD', path)).status, 401, `HEAD ${path}`);
    const ok = await h.call('GET', path, { headers: { authorization: `Bearer ${token}` } });
    t.is(ok.status, path === '/no-such-path' ? 404 : 200, path);
  }
  for (const path of ['/health', '/ready']) t.is((await h.call('GET', path)).status, 200, path);
  t.is((await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } })).status, 401, 'writes keep their check');
});
