// What the proxy does with origin responses that are ambiguous, malformed or unusual.
// The origin here is a raw TCP server answering with exact bytes.
import test from 'ava';
import { adminCall } from './helpers/admin.js';
import { Cleanup } from './helpers/cleanup.js';
import { startNode, type WeldrNode } from './helpers/node.js';
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
};

const cleanup = new Cleanup();
let node: WeldrNode;

test.before(async () => {
  const origin = await startRawOrigin(cleanup, responses, ['/until-close']);
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
