// Exchange life-cycle rules that a hand mutation run found untested: each test here
// fails when its rule is removed from forward.ts / attempt.ts.
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { forgetRequest, skipDrain } from '../src/forward.js';
import { deadPort, rawRequest, record, setup, snapshot, startOrigin, startProxy, statusOf, until } from './helpers.js';

test('an error answered while the request body is still unread closes the connection (its state is unknown)', async (t) => {
  const dead = await deadPort();
  const p = await startProxy(snapshot([record(dead)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  // Only part of the announced body is sent: the 502 comes before the rest.
  const r = await rawRequest(p.port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`, 3_000);
  t.is(statusOf(r.text), 502);
  t.regex(r.text, /\r\nconnection: close\r\n/i);
  t.true(r.closed, 'the proxy closed the connection');
  // A bodyless request that fails the same way keeps the connection (its state is known).
  const ok = await rawRequest(p.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 500);
  t.is(statusOf(ok.text), 502);
  t.notRegex(ok.text, /\r\nconnection: close\r\n/i);
  t.false(ok.closed);
});

test('a request pipelined behind one refused for its framing is never handled: dropped with the connection', async (t) => {
  const { origin, p } = await setup(t);
  const r = await rawRequest(p.port, 'GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /third HTTP/1.1\r\nHost: a\r\n\r\n');
  t.true(r.closed);
  await until(() => p.proxy.stats().active === 0);
  t.deepEqual(origin.seen.map((s) => s.url), ['/first']);
  // /third never became an exchange (not even one aborted before it was sent).
  t.deepEqual(p.proxy.stats().client, { success: 1, failed: 1 });
});

test('1xx interim responses from the origin are relayed in order, arriving in separate reads, before the final response (RFC 9110 §15.2)', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
      setTimeout(() => socket.write('HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'), 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const p = await startProxy(snapshot([record((server.address() as net.AddressInfo).port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.deepEqual([...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['103', '102', '200'], r.text);
  t.true(r.text.endsWith('ok'));
  t.regex(r.text, /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/style\.css>; rel=preload\r\n/);
});

test('a client gone while its request waits for an origin connection: the request is never sent', async (t) => {
  const arrived: string[] = [];
  let release: (() => void) | null = null;
  const origin = await startOrigin();
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    arrived.push(req.url!);
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('ok');
  });
  // One connection to the origin: a second request waits in the pool's queue.
  const p = await startProxy(snapshot([record(origin.port)]), { limits: { originMaxConnections: 1 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const slow = request(`http://127.0.0.1:${p.port}/slow`);
  await until(() => arrived.includes('/slow'));
  const waiting = net.connect(p.port, '127.0.0.1');
  waiting.on('error', () => undefined);
  await new Promise((r) => waiting.once('connect', r));
  waiting.write('GET /abandoned HTTP/1.1\r\nHost: a\r\n\r\n');
  await until(() => p.proxy.stats().active === 2);
  waiting.resetAndDestroy();
  await until(() => p.proxy.stats().active === 1);
  release!();
  t.is((await (await slow).body.text()), 'slow');
  // The pool's one connection goes on in order: /abandoned would be sent before /after
  // (and, its answer never read, would hold that connection for good).
  const after = await Promise.race([
    request(`http://127.0.0.1:${p.port}/after`).then((r) => r.body.text()),
    new Promise<string>((r) => setTimeout(() => r('no answer within 10 s'), 10_000).unref()),
  ]);
  t.is(after, 'ok');
  t.deepEqual(arrived, ['/slow', '/after']);
});

test('skipDrain: the end of a bodiless request schedules no \'readable\' event (and no drain)', async (t) => {
  const events = async (mark: boolean): Promise<string[]> => {
    const req = new http.IncomingMessage(new net.Socket());
    if (mark) skipDrain(req);
    const seen: string[] = [];
    const emit = req.emit.bind(req);
    req.emit = ((name: string, ...args: unknown[]) => {
      seen.push(name);
      return emit(name, ...args);
    }) as typeof req.emit;
    req.complete = true;
    req.push(null);
    await new Promise((r) => setImmediate(r));
    return seen;
  };
  t.true((await events(false)).includes('readable'));
  t.deepEqual(await events(true), []);
});

test('skipDrain marks a request drained only where node keeps that flag', (t) => {
  const marked = { _dumped: false } as unknown as http.IncomingMessage;
  skipDrain(marked);
  t.true((marked as unknown as { _dumped: boolean })._dumped);
  const other = {} as http.IncomingMessage;
  skipDrain(other);
  t.false('_dumped' in other);
});

test('requests without content are not drained by node after their response; with content they are read; the connection goes on in order', async (t) => {
  const { origin, p } = await setup(t);
  const seen: http.IncomingMessage[] = [];
  // After the proxy's own 'request' listener: sees each request as the proxy left it.
  p.proxy.server.on('request', (req: http.IncomingMessage) => seen.push(req));
  const r = await rawRequest(
    p.port,
    'GET /a HTTP/1.1\r\nHost: a\r\n\r\n' +
      'POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
      'DELETE /c HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n' +
      'GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  t.deepEqual([...r.text.matchAll(/origin:(\w+ \/\w)/g)].map((m) => m[1]), ['GET /a', 'POST /b', 'DELETE /c', 'GET /d'], r.text);
  t.true(r.closed);
  t.deepEqual(origin.seen.map((s) => s.body), ['', 'hello', '', '']);
  await until(() => p.proxy.stats().active === 0);
  // Those without content were never made to flow to their end (node's drain skipped);
  // the one with content was read to its end by the origin request, as before.
  t.deepEqual(seen.map((req) => req.readableEnded), [false, true, false, false]);
  t.true(seen.every((req) => req.complete));
  t.deepEqual(p.proxy.stats().client, { success: 4, failed: 0 });
});

test('an idle keep-alive connection does not hold on to its last request without content', async (t) => {
  const { p } = await setup(t);
  const sockets: net.Socket[] = [];
  p.proxy.server.on('connection', (s: net.Socket) => sockets.push(s));
  const client = net.connect(p.port, '127.0.0.1');
  t.teardown(() => client.destroy());
  let text = '';
  client.on('data', (c: Buffer) => (text += c.toString('latin1')));
  client.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n');
  await until(() => text.endsWith('origin:GET /a'));
  await until(() => p.proxy.stats().active === 0);
  const parser = (sockets[0] as net.Socket & { parser?: { incoming?: unknown } | null }).parser;
  t.false(sockets[0]!.destroyed);
  t.not(parser, null);
  // Checked at once: the idle sweep would free the parser with the connection later.
  t.is(parser!.incoming, null);
});

test('forgetRequest lets go only of the complete request the parser holds', (t) => {
  const req = { complete: true } as http.IncomingMessage;
  const other = { complete: true } as http.IncomingMessage;
  const socket = { parser: { incoming: req } } as unknown as net.Socket;
  forgetRequest(socket, other);
  t.is((socket as unknown as { parser: { incoming: unknown } }).parser.incoming, req);
  forgetRequest(socket, { complete: false } as http.IncomingMessage);
  t.is((socket as unknown as { parser: { incoming: unknown } }).parser.incoming, req);
  forgetRequest(socket, req);
  t.is((socket as unknown as { parser: { incoming: unknown } }).parser.incoming, null);
  forgetRequest({} as net.Socket, req);
});
