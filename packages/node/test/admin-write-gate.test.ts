// The admission of admin writes (--admin-max-writes, --admin-max-queued-writes): at most
// N writes handled at once, the rest wait in arrival order, a write beyond the queue is
// answered 429 TOO_MANY_WRITES with Retry-After before the app sees it; reads pass.
// A real node:http server; the "app" holds each write until the test releases it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { writeGate } from '../src/runtime/admin-write-gate.js';
import type { Logger } from '../src/runtime/logger.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet } as unknown as Logger;

interface Held {
  readonly path: string;
  release(): void;
}

async function setUp(t: { teardown(fn: () => unknown): void }, maxWrites: number, maxQueued: number) {
  const held: Held[] = [];
  const started: string[] = [];
  const metrics = new Registry();
  const app = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    if (req.method === 'GET') {
      res.end('read');
      return;
    }
    started.push(path);
    req.resume();
    held.push({ path, release: () => res.end(`done ${path}`) });
  };
  const gate = writeGate(app, { maxWrites, maxQueued, metrics, log: quiet });
  const server: Server = createServer(gate.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent({ connections: 50 });
  t.teardown(async () => {
    gate.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await agent.close();
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const call = async (method: 'GET' | 'POST', path: string) => {
    const r = await request(`${base}${path}`, { method, dispatcher: agent, body: method === 'POST' ? '{}' : null });
    return { status: r.statusCode, text: await r.body.text(), retryAfter: r.headers['retry-after'] };
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 500; i++) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const queued = async (): Promise<number> => Number(/^weldr_admin_writes_queued (\d+)$/m.exec(await metrics.metrics())?.[1]);
  return { held, started, metrics, port, call, until, queued };
}

test('2 writes at once, 2 waiting: the 5th is refused 429 with Retry-After, reads pass, the waiting ones start in order', async (t) => {
  const s = await setUp(t, 2, 2);
  const answers = [1, 2, 3, 4].map((i) => s.call('POST', `/w${i}`));
  await s.until('two writes in the app', () => s.held.length === 2);
  await s.until('two queued', async () => (await s.queued()) === 2);
  t.deepEqual(s.started, ['/w1', '/w2']);
  const refused = await s.call('POST', '/w5');
  t.is(refused.status, 429);
  t.is(refused.retryAfter, '1');
  t.is((JSON.parse(refused.text) as { error: { code: string } }).error.code, 'TOO_MANY_WRITES');
  t.false(s.started.includes('/w5'), 'the app never saw the refused write');
  t.is((await s.call('GET', '/servers')).text, 'read', 'reads are not held');
  s.held[0]!.release();
  await s.until('a queued write starts', () => s.started.length === 3);
  t.is(s.started[2], '/w3', 'the first queued write goes first');
  s.held[1]!.release();
  await s.until('the other queued write starts', () => s.started.length === 4);
  t.is(s.started[3], '/w4');
  s.held[2]!.release();
  s.held[3]!.release();
  t.deepEqual((await Promise.all(answers)).map((a) => a.status), [200, 200, 200, 200]);
  const text = await s.metrics.metrics();
  t.regex(text, /weldr_admin_writes_refused_total 1\b/);
  t.regex(text, /weldr_admin_writes_in_progress 0\b/);
  t.regex(text, /weldr_admin_writes_queued 0\b/);
});

test('no queue (--admin-max-queued-writes 0): a write over the bound is refused at once; under it, writes go straight through', async (t) => {
  const s = await setUp(t, 1, 0);
  const first = s.call('POST', '/a');
  await s.until('the write in the app', () => s.held.length === 1);
  t.is((await s.call('POST', '/b')).status, 429);
  s.held[0]!.release();
  t.is((await first).status, 200);
  const next = s.call('POST', '/c');
  await s.until('the next write in the app', () => s.held.length === 2);
  s.held[1]!.release();
  t.is((await next).status, 200);
  t.deepEqual(s.started, ['/a', '/c']);
});

test('a client that goes away while its write waits: the app never handles it, and its place is not kept', async (t) => {
  const s = await setUp(t, 1, 4);
  const first = s.call('POST', '/first');
  await s.until('the first write in the app', () => s.held.length === 1);
  const sock = connect({ host: '127.0.0.1', port: s.port });
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /abandoned HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}');
  await s.until('the abandoned write queued', async () => (await s.queued()) === 1);
  sock.destroy();
  const later = s.call('POST', '/later');
  await s.until('the later write queued', async () => (await s.queued()) === 2);
  s.held[0]!.release();
  await s.until('the later write in the app', () => s.held.length === 2);
  t.deepEqual(s.started, ['/first', '/later']);
  s.held[1]!.release();
  t.is((await first).status, 200);
  t.is((await later).status, 200);
});
