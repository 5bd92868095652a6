// Request smuggling attempts: ambiguous framing is refused with 400 and nothing of it
// reaches the origin (the test-server counts every request it receives, by path) — on
// the cleartext listener and, the same attempts, inside TLS on --listen-tls.
import type { ConnectionOptions } from 'node:tls';
import test from 'ava';
import { hasOpenssl, makeCa } from '@weldr/proxy/testing';
import { Cleanup } from './helpers/cleanup.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import type { WeldrNode } from './helpers/node.js';
import { requestCounts, type Origin } from './helpers/origins.js';
import { rawExchange } from './helpers/raw-http.js';

const cleanup = new Cleanup();
let node: WeldrNode;
let origin: Origin;

/** How to reach the node: cleartext, or TLS (when openssl can make a certificate). */
const transports: { name: string; port: () => number; tls?: ConnectionOptions }[] = [{ name: 'cleartext', port: () => node.proxyPort }];

test.before(async () => {
  let tlsArgs: string[] = [];
  if (hasOpenssl()) {
    const ca = makeCa();
    cleanup.teardown(() => ca.remove());
    const cert = ca.issue(['e2e.test']);
    tlsArgs = ['--listen-tls', '127.0.0.1:0', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile];
    transports.push({ name: 'TLS', port: () => node.proxyTlsPort!, tls: { ca: ca.ca, servername: 'e2e.test' } });
  }
  const fixture = await nodeWithOrigins(cleanup, ['smug-a'], { store: 'memory', args: tlsArgs });
  node = fixture.node;
  origin = fixture.origins[0]!;
});
test.after.always(() => cleanup.run());

const head = 'POST /front HTTP/1.1\r\nHost: e2e\r\n';
// Each body, if framed the "other" way, would carry a second request to /smuggled.
const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: e2e\r\n\r\n';
const chunkedBody = `0\r\n\r\n${smuggled}`;

const attempts: [string, string][] = [
  ['Content-Length and Transfer-Encoding (CL.TE)', `${head}Content-Length: ${chunkedBody.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody}`],
  ['Transfer-Encoding and Content-Length (TE.CL)', `${head}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunkedBody}`],
  ['two different Content-Lengths', `${head}Content-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`],
  ['Content-Length list', `${head}Content-Length: 0, ${smuggled.length}\r\n\r\n${smuggled}`],
  ['Transfer-Encoding not ending in chunked', `${head}Transfer-Encoding: chunked, identity\r\n\r\n${chunkedBody}`],
  ['unknown transfer coding', `${head}Transfer-Encoding: xchunked\r\n\r\n${chunkedBody}`],
  ['two Transfer-Encoding headers', `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunkedBody}`],
  ['space before the colon', `${head}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n${chunkedBody}`],
  ['obs-fold continuation line', `${head}X-Pad: a\r\n Transfer-Encoding: chunked\r\nContent-Length: ${chunkedBody.length}\r\n\r\n${chunkedBody}`],
];

// Here the head is valid and the framing error is in the body: a streaming proxy may
// already have forwarded the head of /front when it finds the error, so only the
// smuggled request is required never to arrive.
const bodyAttempts: [string, string][] = [
  ['bare LF in chunk framing', `${head}Transfer-Encoding: chunked\r\n\r\n0\n\r\n${smuggled}`],
  ['negative Content-Length', `${head}Content-Length: -1\r\n\r\n${smuggled}`],
  ['chunk size overflow', `${head}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nx\r\n0\r\n\r\n${smuggled}`],
];

const cases = [...attempts.map(([n, r]) => [n, r, true] as const), ...bodyAttempts.map(([n, r]) => [n, r, false] as const)];
// The TLS listener exists only when openssl could make its certificate (said in the test name).
for (const transport of [{ name: 'cleartext' }, { name: 'TLS' }]) for (const [name, raw, headerLevel] of cases) {
  test.serial(`smuggling refused (${transport.name}): ${name}`, async (t) => {
    const via = transports.find((tr) => tr.name === transport.name);
    if (via === undefined) {
      t.log('skipped: openssl is not installed, so the node has no TLS listener');
      t.pass();
      return;
    }
    const before = await requestCounts(origin);
    const { text } = await rawExchange(via.port(), raw, via.tls === undefined ? {} : { tls: via.tls });
    const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
    t.true(statuses.length > 0, 'got an answer');
    if (headerLevel) t.is(statuses[0], 400, text.slice(0, 200));
    else t.true(statuses[0] === 400 || statuses[0] === 502, text.slice(0, 200));
    t.false(statuses.some((s) => s < 300), `no request was served: ${statuses.join(',')}`);
    const after = await requestCounts(origin);
    t.is(after.paths['/smuggled'] ?? 0, before.paths['/smuggled'] ?? 0, 'the smuggled request never reached the origin');
    if (headerLevel) t.is(after.paths['/front'] ?? 0, before.paths['/front'] ?? 0, 'the ambiguous request never reached the origin');
  });
}

// node hands an Upgrade request over on its own path: one pipelined behind a request
// refused for its framing (here two Host fields) reached the origin all the same while
// the client got the refusal, as soon as the pool had an idle connection to the origin
// (which the fixture's routing checks leave). It may be the smuggled half: never forwarded.
test.serial('an Upgrade request pipelined behind a refused one never reaches the origin', async (t) => {
  const before = await requestCounts(origin);
  const upgrade = 'GET /smuggled-ws HTTP/1.1\r\nHost: e2e\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  const { text } = await rawExchange(node.proxyPort, `GET /front HTTP/1.1\r\nHost: e2e\r\nHost: other\r\n\r\n${upgrade}`);
  t.regex(text, /^HTTP\/1\.1 400 /);
  t.notRegex(text, /HTTP\/1\.1 101 /);
  // A request on a new connection has been answered: the upgrade, had it been forwarded, would have arrived.
  await rawExchange(node.proxyPort, 'GET /after HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n');
  const after = await requestCounts(origin);
  t.is(after.paths['/smuggled-ws'] ?? 0, before.paths['/smuggled-ws'] ?? 0, 'the smuggled upgrade reached the origin');
});
