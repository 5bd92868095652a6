// Issue 9 item 5: pipelined requests are forwarded one at a time, in order, at most
// maxPipelineDepth of them held per connection, and every one of them is cleaned up
// when the client goes away.
import net from 'node:net';
import test from 'ava';
import { record, snapshot, startOrigin, startProxy, until, type Origin, type Running } from './helpers.js';

const MiB = 1024 * 1024;

/** An origin answering every request with `size` bytes; counts requests in flight. */
async function bigOrigin(t: import('ava').ExecutionContext, size: number): Promise<Origin & { inFlight: () => number; maxInFlight: () => number; requests: () => number }> {
  let inFlight = 0;
  let count = 0;
  let maxInFlight = 0;
  const body = Buffer.alloc(size, 0x61);
  const origin = await startOrigin();
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req, res) => {
    inFlight++;
    count++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => {
      inFlight--;
    });
    req.resume();
    // A short think time, so that requests forwarded together overlap at the origin.
    setTimeout(() => {
      res.writeHead(200, { 'content-length': size, 'x-path': req.url });
      res.end(body);
    }, 10);
  });
  t.teardown(() => origin.close());
  return Object.assign(origin, { inFlight: () => inFlight, maxInFlight: () => maxInFlight, requests: () => count });
}

async function proxyFor(t: import('ava').ExecutionContext, origin: Origin, over: Parameters<typeof startProxy>[1] = {}): Promise<Running> {
  const p = await startProxy(snapshot([record(origin.port)]), over);
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  return p;
}

const requests = (n: number, from = 0): string => Array.from({ length: n }, (_, i) => `GET /r${from + i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');

test('20 pipelined requests for 1 MiB each, then the client disconnects: nothing is left in flight', async (t) => {
  const origin = await bigOrigin(t, MiB);
  const p = await proxyFor(t, origin);
  const socket = net.connect(p.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  socket.write(requests(20));
  // Read the first bytes (the first response has started), then go away.
  await new Promise((r) => socket.once('data', r));
  socket.pause();
  socket.destroy();
  await until(() => p.proxy.stats().servers[0]!.active === 0, 10_000);
  await until(() => origin.inFlight() === 0, 10_000);
  // Every exchange of the connection ended: active requests back to 0.
  await until(() => activeRequests(p) === 0, 10_000);
  t.is(activeRequests(p), 0);
});

test('pipelined requests reach the origin one at a time, and the responses come back in order', async (t) => {
  const origin = await bigOrigin(t, 64 * 1024);
  const p = await proxyFor(t, origin);
  const n = 10;
  const text = await collect(p.port, requests(n), (s) => (s.match(/x-path: /g) ?? []).length === n && s.length >= n * 64 * 1024);
  const paths = [...text.matchAll(/x-path: (\S+)/g)].map((m) => m[1]);
  t.deepEqual(paths, Array.from({ length: n }, (_, i) => `/r${i}`));
  t.is(origin.maxInFlight(), 1, 'never more than one request of the connection at the origin');
});

test('requests beyond maxPipelineDepth that arrive at once get 429 and the connection closes; those before are served', async (t) => {
  const origin = await bigOrigin(t, 16);
  const p = await proxyFor(t, origin, { limits: { maxPipelineDepth: 4 } });
  const text = await collect(p.port, requests(12), () => false);
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  t.deepEqual(statuses, [200, 200, 200, 200, 429], text.slice(0, 2000));
  t.regex(text, /x-weldr-error: PIPELINE_LIMIT/);
  t.is(origin.requests(), 4, 'nothing beyond the depth reached the origin');
  t.true(p.proxy.stats().limits.pipelineRefused >= 1);
});

test('a client that keeps at most maxPipelineDepth requests outstanding is never refused; reading pauses at the depth', async (t) => {
  const origin = await bigOrigin(t, 256 * 1024);
  const p = await proxyFor(t, origin, { limits: { maxPipelineDepth: 2 } });
  const socket = net.connect(p.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const n = 8;
  let text = '';
  let sent = 0;
  // Two requests outstanding at any time, each in its own write.
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    while (sent < n && sent - finished(text) < 2) socket.write(requests(1, sent++));
  });
  socket.write(requests(1, sent++));
  socket.write(requests(1, sent++));
  await until(() => finished(text) === n, 10_000);
  socket.destroy();
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  t.deepEqual(statuses, new Array<number>(n).fill(200));
  t.is(p.proxy.stats().limits.pipelineRefused, 0);
  t.true(p.proxy.stats().limits.pipelinePaused >= 1);
  t.is(origin.maxInFlight(), 1);
});

/** Responses of 256 KiB fully received in `text` (head + body each). */
function finished(text: string): number {
  let count = 0;
  let at = 0;
  for (;;) {
    const head = text.indexOf('\r\n\r\n', at);
    if (head < 0) return count;
    const length = Number(/content-length: (\d+)/i.exec(text.slice(at, head))?.[1] ?? 0);
    if (text.length < head + 4 + length) return count;
    count++;
    at = head + 4 + length;
  }
}

function activeRequests(p: Running): number {
  return p.proxy.stats().active;
}

/** Write `data` and collect until `done` holds or the server closes (10 s at most). */
function collect(port: number, data: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
    let text = '';
    const timer = setTimeout(() => finish(), 10_000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (done(text)) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
  });
}
