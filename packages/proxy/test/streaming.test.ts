// Bodies streamed both ways with backpressure, and symmetric cleanup on aborts.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import test from 'ava';
import { request } from 'undici';
import { record, snapshot, startOrigin, startProxy, until } from './helpers.js';

test('large bodies stream both ways intact (echo, 8 MiB each way)', async (t) => {
  const origin = await startOrigin();
  // Replace the recording origin with a streaming echo (nothing buffered whole).
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const chunk = Buffer.alloc(64 * 1024, 7);
  const n = 128;
  const sent = createHash('sha256');
  async function* body() {
    for (let i = 0; i < n; i++) {
      chunk[0] = i;
      sent.update(chunk);
      yield Buffer.from(chunk);
    }
  }
  const res = await request(`http://127.0.0.1:${p.port}/echo`, { method: 'POST', body: Readable.from(body()) });
  const got = createHash('sha256');
  let size = 0;
  for await (const c of res.body) {
    got.update(c as Buffer);
    size += (c as Buffer).length;
  }
  t.is(res.statusCode, 200);
  t.is(size, n * chunk.length);
  t.is(got.digest('hex'), sent.digest('hex'));
});

test('client abort (RST) mid-response aborts the origin request and clears the exchange', async (t) => {
  let originClosed = false;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200);
    res.write('first');
    res.on('close', () => {
      originClosed = true;
    });
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const socket = net.connect(p.port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  await new Promise((r) => socket.once('data', r));
  socket.resetAndDestroy();
  await until(() => originClosed);
  await until(() => p.proxy.stats().servers[0]!.active === 0);
  const s = p.proxy.stats();
  t.is(s.client.failed, 1);
  t.is(s.server.failed, 0, 'a client abort is not held against the origin');
  t.is(p.proxy.stats().client.success, 0);
});

test('a client that closes (FIN) mid-response is found gone at the next write: the origin request is aborted', async (t) => {
  let originClosed = false;
  let more: (() => void) | null = null;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200);
    res.write('first');
    // More body once the test says so (after the client closed), then nothing.
    more = () => {
      for (let i = 0; i < 4; i++) res.write(Buffer.alloc(64 * 1024, 1));
    };
    res.on('close', () => {
      originClosed = true;
    });
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const socket = net.connect(p.port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  await new Promise((r) => socket.once('data', r));
  // A full close with nothing unread: the proxy receives a plain FIN, which is not an
  // abort on its own (it may be a half-close, RFC 9112 §9.6) ...
  const closed = new Promise((r) => socket.once('close', r));
  socket.destroy();
  await closed;
  t.is(p.proxy.stats().client.failed, 0);
  // ... but the client's kernel answers the next bytes with RST.
  more!();
  await until(() => originClosed);
  await until(() => p.proxy.stats().servers[0]!.active === 0);
  t.is(p.proxy.stats().client.failed, 1);
  t.is(p.proxy.stats().server.failed, 0);
});

test('origin reset mid-response closes the client connection (no silent truncation)', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => req.socket.destroy(), 20);
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const text = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    let buf = '';
    s.on('data', (d) => (buf += d.toString()));
    s.on('close', () => resolve(buf));
    s.on('error', () => undefined);
  });
  t.regex(text, /^HTTP\/1\.1 200/);
  t.true(text.endsWith('partial'));
  t.is(p.proxy.stats().server.failed, 1);
  t.is(p.proxy.stats().client.failed, 1);
});

test('a client that stops reading is cut off after originIdleMs; the origin connection is released', async (t) => {
  let originClosed = false;
  const origin = await startOrigin((_req, res) => {
    const big = Buffer.alloc(1024 * 1024, 1);
    res.writeHead(200);
    const pump = (): void => {
      while (res.write(big));
    };
    res.on('drain', pump);
    res.on('close', () => {
      originClosed = true;
    });
    pump();
  });
  const p = await startProxy(snapshot([record(origin.port)]), { timeouts: { originIdleMs: 300 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  s.pause(); // never read
  let closedByProxy = false;
  const closed = new Promise((r) => s.on('close', r));
  s.on('error', () => (closedByProxy = true));
  s.on('end', () => (closedByProxy = true));
  await until(() => originClosed, 10_000);
  await until(() => p.proxy.stats().servers[0]!.active === 0);
  const stats = p.proxy.stats();
  t.is(stats.client.failed, 1, 'the stalled exchange ended as failed');
  t.is(stats.server.failed, 0, 'a client that stops reading is not held against the origin');
  t.is(stats.active, 0);
  // The proxy closed the client connection: reading now shows the end (or a reset).
  s.resume();
  await closed;
  t.true(closedByProxy);
});

test('slow request body upload is streamed (origin sees bytes before the upload ends)', async (t) => {
  let firstChunkAt = 0;
  const origin = await startOrigin();
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.once('data', () => {
      firstChunkAt = Date.now();
    });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const s = net.connect(p.port, '127.0.0.1');
  s.write('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nfirst\r\n');
  await until(() => firstChunkAt !== 0);
  t.pass('first chunk arrived while the upload is still open');
  let reply = '';
  s.on('data', (d) => (reply += d.toString()));
  const done = new Promise((r) => s.on('close', r));
  s.write('0\r\n\r\n');
  await done;
  t.regex(reply, /^HTTP\/1\.1 200/);
});
