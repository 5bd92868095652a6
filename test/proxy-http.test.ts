// HTTP/1.1 conformance of the proxy path: methods, framing, keep-alive, pipelining,
// header handling. One weldr node and two origins shared by the tests of this file.
import test from 'ava';
import { Client, request } from 'undici';
import { chunkedParts, DEFAULT_LARGE_BYTES, firstLargeBodyMismatch } from '@weldr/node';
import { Cleanup } from './helpers/cleanup.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import type { WeldrNode } from './helpers/node.js';
import { requestCounts, type Origin } from './helpers/origins.js';
import { header, parseResponses, rawExchange } from './helpers/raw-http.js';
import { fetchVia } from './helpers/routing.js';

const cleanup = new Cleanup();
let node: WeldrNode;
let origins: Origin[];

test.before(async () => {
  ({ node, origins } = await nodeWithOrigins(cleanup, ['http-a', 'http-b'], { store: 'memory' }));
});
test.after.always(() => cleanup.run());

interface Echo {
  method: string;
  url: string;
  headers: [string, string][];
  body: string;
  bodyLength: number;
}

const echoHeader = (echo: Echo, name: string): string[] => echo.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
  test(`${method} reaches the origin with its body and target`, async (t) => {
    const body = method === 'GET' ? undefined : `body of ${method}`;
    const reply = await fetchVia(node, `/echo/x?m=${method}`, { method: method as 'GET', ...(body === undefined ? {} : { body }) });
    t.is(reply.status, 200);
    const echo = JSON.parse(reply.body.toString()) as Echo;
    t.is(echo.method, method);
    t.is(echo.url, `/echo/x?m=${method}`);
    t.is(echo.body, body ?? '');
  });
}

test('HEAD gets the headers of GET and no body', async (t) => {
  const { text } = await rawExchange(node.proxyPort, 'HEAD /large HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n');
  const [res] = parseResponses(text, [true]);
  t.is(res?.status, 200);
  t.is(header(res!, 'content-length'), String(DEFAULT_LARGE_BYTES));
  t.true(text.endsWith('\r\n\r\n'), 'nothing after the head');
});

test('TRACE is refused with 405 (it would reflect credentials: cross-site tracing)', async (t) => {
  const reply = await fetchVia(node, '/echo', { method: 'TRACE' });
  t.is(reply.status, 405);
  t.is(reply.serverId, undefined, 'not forwarded');
});

test('CONNECT is not implemented: 501', async (t) => {
  const { text } = await rawExchange(node.proxyPort, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n', { until: (s) => s.includes('\r\n\r\n') });
  t.regex(text, /^HTTP\/1\.1 501 /);
});

test('a raw chunked request body reaches the origin de-chunked', async (t) => {
  const { text } = await rawExchange(
    node.proxyPort,
    ['POST /echo HTTP/1.1\r\nHost: e2e\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', '5\r\nhello\r\n', '0\r\n\r\n'],
  );
  const [res] = parseResponses(text);
  t.is(res?.status, 200);
  const echo = JSON.parse(res!.body) as Echo;
  t.is(echo.body, 'hello');
  t.is(echo.bodyLength, 5);
});

test('a chunked response arrives byte-exact', async (t) => {
  const reply = await fetchVia(node, '/chunked?n=20');
  t.is(reply.status, 200);
  t.is(reply.body.toString(), chunkedParts(20).join(''));
});

test('/large (4 MiB) arrives byte-exact with its Content-Length', async (t) => {
  const reply = await fetchVia(node, '/large');
  t.is(reply.headers['content-length'], String(DEFAULT_LARGE_BYTES));
  t.is(firstLargeBodyMismatch(reply.body, DEFAULT_LARGE_BYTES), -1);
});

test('a large upload arrives byte-exact (echo of 3 MiB binary)', async (t) => {
  const upload = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < upload.length; i++) upload[i] = (i * 7 + (i >> 11)) & 0xff;
  const reply = await fetchVia(node, '/echo', { method: 'POST', body: upload });
  const echo = JSON.parse(reply.body.toString()) as Echo & { bodyEncoding: string };
  t.is(echo.bodyLength, upload.length);
  t.true(Buffer.from(echo.body, echo.bodyEncoding === 'base64' ? 'base64' : 'utf8').equals(upload));
});

// Serial: ava runs serial tests before the concurrent ones, so the origin connection
// count is not polluted by other tests' traffic.
test.serial('keep-alive: sequential requests share one client connection, and origin connections are reused', async (t) => {
  const client = new Client(node.proxyUrl, { pipelining: 1 });
  t.teardown(() => client.close());
  let connects = 0;
  client.on('connect', () => connects++);
  const before = await Promise.all(origins.map(requestCounts));
  for (let i = 0; i < 20; i++) {
    const res = await client.request({ path: '/', method: 'GET' });
    t.is(res.statusCode, 200);
    await res.body.text();
  }
  t.is(connects, 1, 'one client connection for 20 requests');
  const after = await Promise.all(origins.map(requestCounts));
  const newConnections = after.reduce((sum, c, i) => sum + c.connections - before[i]!.connections, 0);
  t.log(`origin connections opened for 20 requests: ${newConnections}`);
  t.true(newConnections < 10, `the proxy reuses origin connections (${newConnections} new)`);
});

test('pipelining: three requests in one packet get three responses in order', async (t) => {
  const pipelined =
    'GET /echo/1 HTTP/1.1\r\nHost: e2e\r\n\r\n' +
    'GET /echo/2 HTTP/1.1\r\nHost: e2e\r\n\r\n' +
    'GET /echo/3 HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n';
  const { text } = await rawExchange(node.proxyPort, pipelined);
  const responses = parseResponses(text);
  t.deepEqual(
    responses.map((r) => (JSON.parse(r.body) as Echo).url),
    ['/echo/1', '/echo/2', '/echo/3'],
  );
});

test('hop-by-hop request headers, and those named in Connection, are not forwarded', async (t) => {
  const raw =
    'GET /echo HTTP/1.1\r\nHost: e2e\r\n' +
    'Connection: keep-alive, X-Secret-Hop\r\n' +
    'Keep-Alive: timeout=5\r\n' +
    'X-Secret-Hop: must-not-pass\r\n' +
    'Proxy-Connection: keep-alive\r\n' +
    'TE: trailers\r\n' +
    'Upgrade: h2c\r\n' +
    'X-End-To-End: passes\r\n\r\n';
  const { text } = await rawExchange(node.proxyPort, raw, { until: (s) => /\r\n\r\n[\s\S]*\}\n$/.test(s) });
  const [res] = parseResponses(text);
  const echo = JSON.parse(res!.body) as Echo;
  for (const name of ['keep-alive', 'x-secret-hop', 'proxy-connection', 'te', 'upgrade']) {
    t.deepEqual(echoHeader(echo, name), [], `${name} stripped`);
  }
  t.false(echoHeader(echo, 'connection').some((v) => /x-secret-hop/i.test(v)), 'Connection does not name stripped headers');
  t.deepEqual(echoHeader(echo, 'x-end-to-end'), ['passes']);
});

test('hop-by-hop response headers, and those named in Connection, are not passed back', async (t) => {
  const reply = await fetchVia(node, '/response-headers?Connection=x-origin-hop&x-origin-hop=1&keep-alive=timeout%3D99&x-kept=yes');
  t.is(reply.status, 200);
  t.is(reply.headers['x-origin-hop'], undefined);
  t.not(reply.headers['keep-alive'], 'timeout=99');
  t.is(reply.headers['x-kept'], 'yes');
});

test('Via and X-Forwarded-For/-Proto/-Host are added', async (t) => {
  const reply = await fetchVia(node, '/echo', { headers: { host: 'app.example' } });
  const echo = JSON.parse(reply.body.toString()) as Echo;
  t.regex(echoHeader(echo, 'via').join(','), /1\.1 /);
  t.regex(echoHeader(echo, 'x-forwarded-for').join(','), /127\.0\.0\.1/);
  t.deepEqual(echoHeader(echo, 'x-forwarded-proto'), ['http']);
  t.deepEqual(echoHeader(echo, 'x-forwarded-host'), ['app.example']);
});

test('repeated request headers keep their order', async (t) => {
  const reply = await fetchVia(node, '/echo', { headers: ['x-multi', 'one', 'x-other', 'z', 'x-multi', 'two'] });
  const echo = JSON.parse(reply.body.toString()) as Echo;
  t.deepEqual(echoHeader(echo, 'x-multi'), ['one', 'two']);
});

test('requests alternate between the two origins (round-robin)', async (t) => {
  const seen = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const id = (await fetchVia(node, '/')).serverId ?? 'none';
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  t.deepEqual([...seen.keys()].sort(), ['http-a', 'http-b']);
});

test('many concurrent requests all succeed', async (t) => {
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => request(`${node.proxyUrl}/echo/${i}`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))));
  t.true(replies.every((r) => r.status === 200));
});
