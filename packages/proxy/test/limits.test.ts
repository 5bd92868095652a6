// Issue 9 item 5: resource limits on the client side (connections in total and per
// source address, request-body rate) and the origin side (connections per origin).
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { record, setup, snapshot, startOrigin, startProxy, until } from './helpers.js';

/** Connect (optionally from `localAddress`) and resolve once connected. */
function open(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Whether the server closes `socket` (no byte received) within `ms`. */
function closedWithoutAnswer(socket: net.Socket, ms = 5_000): Promise<{ closed: boolean; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const timer = setTimeout(() => resolve({ closed: false, bytes }), ms);
    socket.on('data', (c: Buffer) => (bytes += c.length));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, bytes });
    });
  });
}

/** One GET on an open socket; resolves with the status line's code. */
function get(socket: net.Socket, path = '/'): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n/.exec(text);
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (m !== null && length >= 0 && text.length >= m[0].length + length) {
        socket.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    socket.on('data', onData);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
  });
}

test('maxConnectionsPerSource: the connection over the limit is closed at accept; other sources are still served', async (t) => {
  const { p } = await setup(t, undefined, { limits: { maxConnectionsPerSource: 3 } });
  const held = await Promise.all([open(p.port), open(p.port), open(p.port)]);
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (const s of held) t.is(await get(s), 200);
  const over = await open(p.port);
  const verdict = await closedWithoutAnswer(over);
  t.deepEqual(verdict, { closed: true, bytes: 0 }, 'accept-and-close: nothing written');
  // Another source address (the loopback range is all local on Linux) is not affected.
  const other = await open(p.port, '127.0.0.2');
  t.is(await get(other), 200);
  other.destroy();
  t.is(p.proxy.stats().limits.perSourceRefused, 1);
  // Once one of the source's connections closes, it may open another.
  const closed = new Promise((r) => held[0]!.once('close', r));
  held[0]!.destroy();
  await closed;
  await until(() => p.proxy.stats().connections <= 2);
  const again = await open(p.port);
  t.is(await get(again), 200);
  again.destroy();
});

test('maxConnections: connections beyond the total are closed at accept and counted', async (t) => {
  const metrics = new Registry();
  const { p } = await setup(t, undefined, { limits: { maxConnections: 2 }, metrics });
  const held = await Promise.all([open(p.port), open(p.port)]);
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (const s of held) t.is(await get(s), 200);
  const verdict = await closedWithoutAnswer(await open(p.port));
  t.true(verdict.closed);
  t.is(verdict.bytes, 0);
  await until(() => p.proxy.stats().limits.connectionsRefused === 1);
  // The connections it has are still served.
  t.is(await get(held[0]!), 200);
  const text = await metrics.metrics();
  t.regex(text, /weldr_proxy_limit_refusals_total\{limit="max_connections"\} 1/);
  t.regex(text, /weldr_proxy_client_connections 2/);
});

test('clientBodyMinRate: a body trickled far below the rate gets 408 and frees the origin request', async (t) => {
  const { p } = await setup(t, (req, res) => res.end('never'), { limits: { clientBodyMinRate: 1000, clientBodyRateGraceMs: 300 }, timeouts: { clientBodyIdleMs: 60_000 } });
    const started = performance.now();
  const socket = await open(p.port);
  socket.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const closed = new Promise((r) => socket.on('close', r));
  socket.on('error', () => undefined);
  // One byte every 100 ms: 10 B/s, a hundredth of the minimum.
  const trickle = setInterval(() => socket.write('x'), 100);
  t.teardown(() => clearInterval(trickle));
  await closed;
  clearInterval(trickle);
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.regex(text, /x-weldr-error: CLIENT_TIMEOUT/);
  t.is(p.proxy.stats().limits.bodyRateRefused, 1);
  await until(() => p.proxy.stats().servers[0]!.active === 0);
  t.true(performance.now() - started < 20_000);
});

test('clientBodyMinRate: time the origin spends not reading (backpressure) is not held against the client', async (t) => {
  const origin = await startOrigin();
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Read nothing for 1.5 s (far beyond the grace), then everything.
    setTimeout(() => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
    }, 1_500);
  });
  const p = await startProxy(snapshot([record(origin.port)]), { limits: { clientBodyMinRate: 4_000_000, clientBodyRateGraceMs: 200 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const size = 16 * 1024 * 1024;
  const res = await request(`http://127.0.0.1:${p.port}/upload`, { method: 'POST', body: Buffer.alloc(size, 1) });
  t.is(res.statusCode, 200);
  t.is(await res.body.text(), String(size));
  t.is(p.proxy.stats().limits.bodyRateRefused, 0);
});

test('originMaxConnections: at most that many connections to an origin; requests beyond wait for one', async (t) => {
  let open = 0;
  let maxOpen = 0;
  const origin = await startOrigin();
  origin.server.removeAllListeners('request');
  origin.server.on('connection', (s: net.Socket) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    s.on('close', () => open--);
  });
  origin.server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => setTimeout(() => res.end('ok'), 50));
  const metrics = new Registry();
  const p = await startProxy(snapshot([record(origin.port)]), { limits: { originMaxConnections: 2 }, metrics });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const results = await Promise.all(Array.from({ length: 8 }, () => request(`http://127.0.0.1:${p.port}/`).then((r) => r.body.text().then(() => r.statusCode))));
  t.deepEqual(results, new Array<number>(8).fill(200));
  t.is(maxOpen, 2);
  t.regex(await metrics.metrics(), /weldr_proxy_origin_connections\{server="127\.0\.0\.1:\d+"\} [0-2]\n/);
});
