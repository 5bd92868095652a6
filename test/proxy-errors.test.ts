// Errors are mapped by where they come from: the client (400, 431), the origin
// (502 refused/reset, 504 timeout) or an empty pool (503).
import test from 'ava';
import { adminCall } from './helpers/admin.js';
import { Cleanup } from './helpers/cleanup.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import { startNode, type WeldrNode } from './helpers/node.js';
import { deadPort } from './helpers/ports.js';
import { nonHealthRequests, requestCounts, type Origin } from './helpers/origins.js';
import { rawExchange } from './helpers/raw-http.js';
import { fetchVia } from './helpers/routing.js';

const cleanup = new Cleanup();
let node: WeldrNode;
let origin: Origin;

test.before(async () => {
  const fixture = await nodeWithOrigins(cleanup, ['err-a'], { store: 'memory', args: ['--origin-response-timeout', '500ms'] });
  node = fixture.node;
  origin = fixture.origins[0]!;
});
test.after.always(() => cleanup.run());

const statusLine = (text: string): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? NaN);

test.serial('malformed requests get 400 and never reach the origin', async (t) => {
  const before = nonHealthRequests(await requestCounts(origin));
  const malformed = [
    'NOT-HTTP\r\n\r\n',
    'GET /bad-header HTTP/1.1\r\nHost: e2e\r\nNo colon here\r\n\r\n',
    'GET /bad\x01target HTTP/1.1\r\nHost: e2e\r\n\r\n',
    'POST /bad-length HTTP/1.1\r\nHost: e2e\r\nContent-Length: abc\r\n\r\n',
  ];
  for (const raw of malformed) {
    const { text } = await rawExchange(node.proxyPort, raw);
    t.is(statusLine(text), 400, JSON.stringify(raw));
  }
  t.is(nonHealthRequests(await requestCounts(origin)), before);
});

test.serial('an unsupported HTTP version gets 505 and never reaches the origin', async (t) => {
  const before = nonHealthRequests(await requestCounts(origin));
  const { text } = await rawExchange(node.proxyPort, 'GET /bad-version HTTP/9.9\r\nHost: e2e\r\n\r\n');
  t.is(statusLine(text), 505, text.slice(0, 80));
  t.regex(text, /\r\nx-weldr-error: VERSION_NOT_SUPPORTED\r\n/i);
  t.is(nonHealthRequests(await requestCounts(origin)), before);
});

test.serial('oversized request headers get 431 and never reach the origin', async (t) => {
  const before = nonHealthRequests(await requestCounts(origin));
  const { text } = await rawExchange(node.proxyPort, `GET /big HTTP/1.1\r\nHost: e2e\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.is(statusLine(text), 431);
  t.is(nonHealthRequests(await requestCounts(origin)), before);
});

test.serial('an origin that resets the connection gives 502', async (t) => {
  const reply = await fetchVia(node, '/reset');
  t.is(reply.status, 502);
  t.is(reply.headers['x-weldr-error'], 'ORIGIN_RESET');
});

test.serial('an origin slower than --origin-response-timeout gives 504', async (t) => {
  const reply = await fetchVia(node, '/delay/5000');
  t.is(reply.status, 504);
  t.is(reply.headers['x-weldr-error'], 'ORIGIN_TIMEOUT');
});

test.serial('an origin answering normally still works after the errors', async (t) => {
  t.is((await fetchVia(node, '/')).status, 200);
});

test('an empty pool gives 503; a refusing origin gives 502', async (t) => {
  const empty = await startNode(t, { id: 'n-empty', store: 'memory' });
  const none = await fetchVia(empty, '/');
  t.is(none.status, 503);
  t.is(none.headers['x-weldr-error'], 'NO_ORIGIN');

  const port = await deadPort();
  const added = await adminCall(empty, 'POST', '/servers', { ip: '127.0.0.1', port });
  t.true(added.status < 300, JSON.stringify(added.body));
  const refused = await fetchVia(empty, '/');
  t.is(refused.status, 502);
  t.is(refused.headers['x-weldr-error'], 'ORIGIN_REFUSED');
});
