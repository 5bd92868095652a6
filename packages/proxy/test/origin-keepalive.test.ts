// timeouts.originKeepAliveMs (--origin-keepalive-timeout): how long an idle keep-alive
// connection to an origin is kept for reuse. The origins here send no Keep-Alive hint
// (keepAliveTimeout 0), so the proxy's setting alone decides.
import type { Socket } from 'node:net';
import test from 'ava';
import { record, snapshot, startOrigin, startProxy, until, type Origin } from './helpers.js';

/** An origin without a keep-alive timeout of its own; counts its connections and their closes. */
async function hintlessOrigin(t: { teardown(fn: () => unknown): void }): Promise<{ origin: Origin; opened: () => number; closed: () => number }> {
  const origin = await startOrigin();
  origin.server.keepAliveTimeout = 0;
  let opened = 0;
  let closed = 0;
  origin.server.on('connection', (s: Socket) => {
    opened++;
    s.on('close', () => closed++);
  });
  t.teardown(() => origin.close());
  return { origin, opened: () => opened, closed: () => closed };
}

async function get(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/k`);
  await res.text();
  return res.status;
}

test('an idle origin connection is closed by the proxy after originKeepAliveMs; the next request opens a new one', async (t) => {
  const o = await hintlessOrigin(t);
  const p = await startProxy(snapshot([record(o.origin.port)]), { timeouts: { originKeepAliveMs: 200 } });
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  t.is(await get(p.port), 200);
  t.is(o.opened(), 1);
  await until(() => o.closed() === 1, 10_000);
  t.is(await get(p.port), 200);
  t.is(o.opened(), 2, 'a new connection after the idle one was closed');
});

test('with a long originKeepAliveMs an idle origin connection is reused after 5 s (undici alone closes it at 4 s)', async (t) => {
  const o = await hintlessOrigin(t);
  const p = await startProxy(snapshot([record(o.origin.port)]), { timeouts: { originKeepAliveMs: 60_000 } });
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  t.is(await get(p.port), 200);
  await new Promise((r) => setTimeout(r, 5_000));
  t.is(o.closed(), 0);
  t.is(await get(p.port), 200);
  t.is(o.opened(), 1, 'the same connection served both');
});
