// The retry policy (RFC 9110 §9.2.2): another attempt only when nothing reached the
// failed origin, or when the request is idempotent and has no body to replay.
import test from 'ava';
import { request } from 'undici';
import { isIdempotent, mayRetry } from '../src/upstream.js';
import { record, snapshot, startOrigin, startProxy } from './helpers.js';

test('isIdempotent: GET, HEAD, OPTIONS, PUT, DELETE, TRACE; not POST, PATCH, CONNECT or unknown methods', (t) => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) t.true(isIdempotent(m), m);
  for (const m of ['POST', 'PATCH', 'CONNECT', 'PROPFIND', 'get']) t.false(isIdempotent(m), m);
});

test('mayRetry: by failure, connection state, method and body', (t) => {
  const cases: [Parameters<typeof mayRetry>, boolean][] = [
    // Nothing reached the origin: any method, even with a body.
    [['refused', false, 'POST', true], true],
    [['timeout', false, 'PATCH', true], true],
    // Reset after the request went out: only idempotent methods without a body.
    [['reset', true, 'GET', false], true],
    [['reset', true, 'DELETE', false], true],
    [['reset', true, 'POST', false], false],
    [['reset', true, 'PATCH', false], false],
    [['reset', true, 'PUT', true], false],
    [['bad_response', true, 'POST', false], false],
    // A response timeout is never retried: the origin may still be working on it.
    [['timeout', true, 'GET', false], false],
  ];
  for (const [args, expected] of cases) t.is(mayRetry(...args), expected, args.join(' '));
});

test('a bodyless POST or PATCH reset by the origin is not retried: exactly one attempt, 502; a GET is', async (t) => {
  let attempts = 0;
  const resetter = (req: import('node:http').IncomingMessage): void => {
    attempts++;
    req.socket.destroy();
  };
  const a = await startOrigin(resetter);
  const b = await startOrigin(resetter);
  const p = await startProxy(snapshot([record(a.port), record(b.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await a.close();
    await b.close();
  });
  for (const method of ['POST', 'PATCH']) {
    attempts = 0;
    const res = await request(`http://127.0.0.1:${p.port}/side-effect`, { method, headers: { 'content-length': '0' } });
    await res.body.text();
    t.is(res.statusCode, 502, method);
    t.is(res.headers['x-weldr-error'], 'ORIGIN_RESET');
    t.is(attempts, 1, `${method}: a single attempt reached an origin`);
  }
  // The same reset for a GET is retried (maxRetries 2: three attempts).
  attempts = 0;
  const res = await request(`http://127.0.0.1:${p.port}/read`);
  await res.body.text();
  t.is(res.statusCode, 502);
  t.is(attempts, 3);
});
