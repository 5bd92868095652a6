// The client-side timeouts, set through flags, as a client meets them.
import test from 'ava';
import { Cleanup } from './helpers/cleanup.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import type { WeldrNode } from './helpers/node.js';
import { parseResponses, rawExchange } from './helpers/raw-http.js';

const cleanup = new Cleanup();
let node: WeldrNode;

test.before(async () => {
  const args = ['--client-headers-timeout', '400ms', '--client-request-timeout', '800ms', '--client-idle-timeout', '300ms'];
  ({ node } = await nodeWithOrigins(cleanup, ['cto-a'], { store: 'memory', args }));
});
test.after.always(() => cleanup.run());

test('a request head that never completes gets 408 (--client-headers-timeout)', async (t) => {
  const { text, closedByServer } = await rawExchange(node.proxyPort, 'GET / HTTP/1.1\r\nHost: e2e\r\nX-Slow: ', { timeoutMs: 15_000 });
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.true(closedByServer);
});

test('a request body that never completes gets 408 (--client-request-timeout)', async (t) => {
  const { text, closedByServer } = await rawExchange(node.proxyPort, 'POST /echo HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100\r\n\r\nonly a little', { timeoutMs: 15_000 });
  t.true(closedByServer, 'the connection is closed');
  // The head was already forwarded, so the origin may have begun; whatever the client
  // sees, it is not a success.
  const statuses = parseResponses(text).map((r) => r.status);
  t.false(statuses.some((s) => s < 400), statuses.join(','));
  t.log(`answer: ${statuses.join(',') || 'connection closed without a response'}`);
});

test('an idle keep-alive connection is closed (--client-idle-timeout)', async (t) => {
  const { text, closedByServer } = await rawExchange(node.proxyPort, 'GET / HTTP/1.1\r\nHost: e2e\r\n\r\n', { timeoutMs: 15_000 });
  t.is(parseResponses(text)[0]?.status, 200);
  t.true(closedByServer, 'closed by the proxy well before the 15 s bound');
});

test('a request body that stops arriving gets 408 after --client-body-timeout, long before --client-request-timeout', async (t) => {
  const local = new Cleanup();
  t.teardown(() => local.run());
  const { node: slow } = await nodeWithOrigins(local, ['cto-b'], { store: 'memory', args: ['--client-body-timeout', '300ms', '--client-request-timeout', '5m'] });
  const started = Date.now();
  const { text, closedByServer } = await rawExchange(slow.proxyPort, 'POST /echo HTTP/1.1\r\nHost: e2e\r\nContent-Length: 100\r\n\r\npart of it', { timeoutMs: 15_000 });
  t.true(closedByServer);
  t.true(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms`);
  const statuses = parseResponses(text).map((r) => r.status);
  t.false(statuses.some((s) => s < 400), statuses.join(','));
});
