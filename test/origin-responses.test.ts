// What the proxy does with origin responses that are ambiguous, malformed or unusual.
// The origin here is a raw TCP server answering with exact bytes.
import test from 'ava';
import { adminCall } from './helpers/admin.js';
import { Cleanup } from './helpers/cleanup.js';
import { startNode, type WeldrNode } from './helpers/node.js';
import { rawExchange } from './helpers/raw-http.js';
import { startRawOrigin } from './helpers/raw-origin.js';
import { fetchVia } from './helpers/routing.js';
import { eventually } from './helpers/wait.js';

const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const responses: Record<string, string> = {
  '/': ok,
  '/cl-and-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  '/bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok',
  '/nul-in-header': 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok',
  '/until-close': 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody delimited by the end of the connection',
  '/early-hints': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + ok,
  '/truncated': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it',
  '/truncated-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nf\r\nonly part of it\r\n',
  '/extra-after': ok + 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled',
};

const cleanup = new Cleanup();
let node: WeldrNode;

test.before(async () => {
  const origin = await startRawOrigin(cleanup, responses, ['/until-close', '/truncated', '/truncated-chunked']);
  node = await startNode(cleanup, { store: 'memory' });
  const added = await adminCall(node, 'POST', '/servers', { ip: '127.0.0.1', port: origin.port });
  if (added.status !== 201) throw new Error(`add: ${added.status}`);
  await eventually('the raw origin to be routable', async () => ((await fetchVia(node, '/')).status === 200 ? true : undefined));
});
test.after.always(() => cleanup.run());

for (const path of ['/cl-and-te', '/two-lengths']) {
  test(`an ambiguously framed response (${path}) becomes 502 ORIGIN_BAD_RESPONSE`, async (t) => {
    const reply = await fetchVia(node, path);
    t.is(reply.status, 502);
    t.is(reply.headers['x-weldr-error'], 'ORIGIN_BAD_RESPONSE');
  });
}

for (const path of ['/bad-status', '/nul-in-header']) {
  test(`a malformed response (${path}) becomes 502`, async (t) => {
    t.is((await fetchVia(node, path)).status, 502);
  });
  // undici raises HTTPParserError (no `code`) for a malformed head; it is a bad response, not a reset.
  test(`a malformed response (${path}) is reported as ORIGIN_BAD_RESPONSE, not ORIGIN_RESET`, async (t) => {
    t.is((await fetchVia(node, path)).headers['x-weldr-error'], 'ORIGIN_BAD_RESPONSE');
  });
}

test('a body delimited by connection close arrives whole (re-framed for the client)', async (t) => {
  const reply = await fetchVia(node, '/until-close');
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'body delimited by the end of the connection');
});

test('a 103 informational response before the final one does not replace it', async (t) => {
  const reply = await fetchVia(node, '/early-hints');
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'ok');
});

// RFC 9112 §6.3 / §8: an origin that closes before the end of the body it announced
// sent an incomplete message; the client must be able to tell (the proxy closes its
// connection instead of completing the response), never receive a complete-looking one.
for (const path of ['/truncated', '/truncated-chunked']) {
  test(`a body cut short by the origin (${path}) reaches the client incomplete, and its connection is closed`, async (t) => {
    const { text, closedByServer } = await rawExchange(node.proxyPort, `GET ${path} HTTP/1.1\r\nHost: e2e\r\n\r\n`);
    t.true(closedByServer);
    const head = text.slice(0, text.indexOf('\r\n\r\n') + 4);
    const body = text.slice(head.length);
    if (head === '') return void t.is(text, '', 'nothing, or an incomplete response');
    t.regex(head, /^HTTP\/1\.1 200 /);
    const length = /\r\ncontent-length: (\d+)\r\n/i.exec(head);
    if (length !== null) t.true(body.length < Number(length[1]), `a complete body: ${JSON.stringify(text)}`);
    else t.false(body.endsWith('0\r\n\r\n'), `a complete chunked body: ${JSON.stringify(text)}`);
  });
}

// Bytes an origin sends after a complete response (here a second, unsolicited response)
// are never taken for the answer to the next request: response desync.
test('bytes after a complete origin response are never delivered as the next response', async (t) => {
  const { text } = await rawExchange(node.proxyPort, 'GET /extra-after HTTP/1.1\r\nHost: e2e\r\n\r\nGET / HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n');
  const bodies = [...text.matchAll(/\r\n\r\n(ok|smuggled)/g)].map((m) => m[1]);
  t.deepEqual(bodies, ['ok', 'ok'], text);
});
