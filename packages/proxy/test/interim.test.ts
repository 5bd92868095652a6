// Interim (1xx) responses from an origin reach the client (RFC 9110 §15.2: a proxy MUST
// forward them unless it asked for them itself, and MUST NOT send them to an HTTP/1.0
// client): 103 Early Hints with its Link fields, 102, any other 1xx; not 100 (the proxy
// answers Expect itself) and not 101 (the upgrade path). Hop-by-hop fields are dropped
// and Via added as for a final response; at most MAX_INTERIM per request.
import net, { type AddressInfo, type Socket } from 'node:net';
import test from 'ava';
import { MAX_INTERIM } from '../src/forward.js';
import { rawRequest, record, snapshot, startProxy, statusOf, type Teardown } from './helpers.js';

const ok = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

/** An origin that answers every request head with `answer(socket, head)`. */
async function origin(t: Teardown, answer: (s: Socket, head: string) => void): Promise<number> {
  const sockets: Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    let pending = '';
    s.on('data', (d) => {
      pending += d.toString('latin1');
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = pending.slice(0, end + 4);
      pending = pending.slice(end + 4);
      answer(s, head);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** The interim responses' heads at the start of `text`, and what follows them. */
function split(text: string): { interim: string[]; rest: string } {
  const interim: string[] = [];
  let rest = text;
  while (/^HTTP\/1\.1 1\d\d/.test(rest)) {
    const end = rest.indexOf('\r\n\r\n');
    interim.push(rest.slice(0, end));
    rest = rest.slice(end + 4);
  }
  return { interim, rest };
}

for (const originClient of ['native', 'undici'] as const) {
  test(`${originClient}: a 103 Early Hints and a 102 reach an HTTP/1.1 client before the 200, with hop-by-hop fields dropped and Via added`, async (t) => {
    const port = await origin(t, (s) =>
      s.write(
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style\r\nLink: </b.js>; rel=preload; as=script\r\nConnection: x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\r\n' +
          'HTTP/1.1 102 Processing\r\n\r\n' +
          ok('final'),
      ),
    );
    const p = await startProxy(snapshot([record(port)]), { originClient });
    t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
    const r = await rawRequest(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const { interim, rest } = split(r.text);
    t.is(interim.length, 2, r.text);
    const [early, processing] = interim.map((h) => h.split('\r\n'));
    t.is(early![0], 'HTTP/1.1 103 Early Hints');
    t.deepEqual(
      early!.slice(1).filter((l) => /^link:/i.test(l)),
      ['Link: </a.css>; rel=preload; as=style', 'Link: </b.js>; rel=preload; as=script'],
    );
    t.false(early!.some((l) => /^(connection|x-hop|keep-alive):/i.test(l)), early!.join('\n'));
    t.true(early!.some((l) => /^via: 1\.1 /i.test(l)));
    t.is(processing![0], 'HTTP/1.1 102 Processing');
    t.is(statusOf(rest), 200);
    t.true(rest.endsWith('\r\n\r\nfinal'), rest);
  });
}

test('an HTTP/1.0 client gets no interim response, only the final one (RFC 9110 §15.2)', async (t) => {
  const port = await origin(t, (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n' + ok('final')));
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET / HTTP/1.0\r\nHost: a\r\n\r\n');
  t.regex(r.text, /^HTTP\/1\.1 200 /);
  t.notRegex(r.text, /103/);
  t.true(r.text.endsWith('final'));
});

test('a client that sent Expect: 100-continue gets the proxy\'s one 100, the origin\'s 103, then the answer; the origin\'s own 100 is not relayed', async (t) => {
  // The origin answers once it has the head and the body (which the proxy may send together).
  let seen = '';
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => {
      seen += d.toString('latin1');
      if (seen.endsWith('\r\n\r\nhello')) s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n' + ok('stored'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const p = await startProxy(snapshot([record((server.address() as AddressInfo).port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const socket = net.connect(p.port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 100 in ${JSON.stringify(text)}`)), 10_000);
    socket.on('data', () => {
      if (!text.includes('100 Continue')) return;
      clearTimeout(timer);
      resolve();
    });
  });
  socket.write('hello');
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const { interim, rest } = split(text);
  t.deepEqual(
    interim.map((h) => h.split('\r\n')[0]),
    ['HTTP/1.1 100 Continue', 'HTTP/1.1 103 Early Hints'],
    JSON.stringify(text),
  );
  t.is(statusOf(rest), 200, JSON.stringify(text));
  t.true(rest.endsWith('stored'));
});

test(`an origin sending a run of 103s: at most ${MAX_INTERIM} reach the client, then the final response`, async (t) => {
  const port = await origin(t, (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(200) + ok('final')));
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const { interim, rest } = split(r.text);
  t.is(interim.length, MAX_INTERIM);
  t.is(statusOf(rest), 200);
  t.true(rest.endsWith('final'));
});

test('pipelined requests: the second request\'s 103 is written after the first response, never inside it', async (t) => {
  const port = await origin(t, (s, head) => {
    if (head.startsWith('GET /slow')) setTimeout(() => s.write(ok('first')), 200);
    else s.write('HTTP/1.1 103 Early Hints\r\nLink: </b.css>\r\n\r\n' + ok('second'));
  });
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const first = r.text.indexOf('first');
  const early = r.text.indexOf('103 Early Hints');
  t.true(first !== -1 && early > first, r.text);
  t.true(r.text.endsWith('second'), r.text);
});
