// How a large response body moves through the proxy (issue 13, the 1 MiB figures):
// each chunk read from the origin (libuv reads up to 64 KiB at a time) is written to
// the client once, and a chunk on its own never reports backpressure. With node's
// default 16 KiB high-water mark every 64 KiB write returned false although it had
// completed, so the origin was paused and resumed on every chunk (a drain listener and
// a stall timer each time) and undici's resume handed over an empty chunk that became
// an empty write(2). What is checked here is what the proxy writes, not how fast.
import http, { type ServerResponse } from 'node:http';
import net from 'node:net';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { EventEmitter } from 'node:events';
import { CORK_LIMIT_FAST, fastSlotsTaken, HOLDING_FAST, takeFastSlot } from '../src/forward.js';
import { hasOpenssl, makeCa } from '../src/testing/index.js';
import { record, snapshot, startOrigin, startProxy, type Running } from './helpers.js';

const CHUNK = 64 * 1024;
const BODY = 4 * 1024 * 1024;

interface WriteRecord {
  /** Bytes of the chunk. */
  length: number;
  /** Bytes already queued on the client socket before this write. */
  queuedBefore: number;
  /** What write() returned. */
  ok: boolean;
}

/** Records every write() of the proxy's responses (listeners added after the proxy's own). */
function watchWrites(server: http.Server): WriteRecord[] & { uploadBuffers: number[] } {
  const writes = Object.assign([] as WriteRecord[], { uploadBuffers: [] as number[] });
  server.on('request', (req: http.IncomingMessage, res: ServerResponse) => {
    writes.uploadBuffers.push(req.readableHighWaterMark);
    const write = res.write;
    res.write = function (this: ServerResponse, chunk: Buffer, ...rest: unknown[]) {
      const queuedBefore = this.socket?.writableLength ?? 0;
      const ok = (write as (c: Buffer, ...r: unknown[]) => boolean).call(this, chunk, ...rest);
      writes.push({ length: chunk.length, queuedBefore, ok });
      return ok;
    } as typeof res.write;
  });
  return writes;
}

/** An origin that sends BODY bytes in 64 KiB writes, as fast as its socket takes them. */
async function fastOrigin() {
  const body = Buffer.alloc(BODY, 0x61);
  return startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(BODY) });
    let at = 0;
    const pump = (): void => {
      while (at < BODY) {
        const more = res.write(body.subarray(at, at + CHUNK));
        at += CHUNK;
        if (!more) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
}

function check(t: import('ava').ExecutionContext, writes: WriteRecord[] & { uploadBuffers: number[] }, received: number): void {
  t.is(received, BODY);
  // Only the writing side is raised: a request body still pauses its client at node's
  // default read buffer, not at the response's 128 KiB.
  t.true(writes.uploadBuffers.length > 0);
  t.true(writes.uploadBuffers.every((hwm) => hwm <= 64 * 1024), `request read buffers ${writes.uploadBuffers.join(',')}`);
  t.true(writes.length > 0);
  t.deepEqual(writes.filter((w) => w.length === 0), [], 'no empty writes');
  // A chunk of at most 64 KiB written onto a socket with nothing queued completes
  // without reporting backpressure: only a client that has not taken what was written
  // before pauses the origin.
  const single = writes.filter((w) => w.queuedBefore === 0 && w.length <= CHUNK);
  t.true(single.length > 0);
  t.deepEqual(single.filter((w) => !w.ok), [], 'a single chunk reported backpressure');
}

test('a large body: each origin chunk written once, no empty writes, no backpressure from one chunk', async (t) => {
  const origin = await fastOrigin();
  const p: Running = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const writes = watchWrites(p.proxy.server);
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  // Twice on one connection: the second response goes through a reused socket.
  for (let i = 0; i < 2; i++) {
    const received = await bodyLength((done) => http.get({ host: '127.0.0.1', port: p.port, path: '/', agent }, done));
    check(t, writes, received);
  }
});

test("a large body: the chunks read from the origin in one event-loop turn reach the client socket as one writev", async (t) => {
  // The origin hands its whole body to its socket at once: the proxy then finds several
  // 64 KiB reads' worth waiting on each turn, and writes them to the client together.
  const body = Buffer.alloc(BODY, 0x62);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(BODY) });
    res.end(body);
  });
  const p: Running = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  let chunks = 0;
  let socketWrites = 0;
  let gathered = 0;
  p.proxy.server.on('request', (_req: http.IncomingMessage, res: ServerResponse) => {
    const socket = res.socket as unknown as { _write: (...a: unknown[]) => void; _writev: (c: unknown[], ...a: unknown[]) => void };
    const write = res.write;
    res.write = function (this: ServerResponse, ...args: unknown[]) {
      chunks++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof res.write;
    const one = socket._write;
    socket._write = function (this: unknown, ...args: unknown[]) {
      socketWrites++;
      return one.apply(this, args);
    };
    const many = socket._writev;
    socket._writev = function (this: unknown, c: unknown[], ...args: unknown[]) {
      socketWrites++;
      if (c.length > 1) gathered++;
      return many.call(this, c, ...args);
    };
  });
  const received = await bodyLength((done) => http.get({ host: '127.0.0.1', port: p.port, path: '/' }, done));
  t.is(received, BODY);
  // Without the gathering nearly every chunk was a socket write of its own (85 chunks in
  // 84 writes); with it, under half as many (14–43 writes for 66–87 chunks).
  t.true(socketWrites * 4 <= chunks * 3, `${chunks} chunks in ${socketWrites} socket writes (${gathered} of them several chunks)`);
  t.log(`${chunks} chunks in ${socketWrites} socket writes (${gathered} of them several chunks)`);
});

test.serial('the fast slots: at most HOLDING_FAST connections, one each, given back when the socket drains or closes', (t) => {
  t.is(CORK_LIMIT_FAST, 1024 * 1024);
  const before = fastSlotsTaken();
  const sockets = Array.from({ length: HOLDING_FAST - before }, () => new EventEmitter());
  for (const s of sockets) t.true(takeFastSlot(s as never));
  t.is(fastSlotsTaken(), HOLDING_FAST);
  t.true(takeFastSlot(sockets[0] as never), 'a connection keeps its slot');
  t.is(fastSlotsTaken(), HOLDING_FAST, 'not counted twice');
  const late = new EventEmitter();
  t.false(takeFastSlot(late as never), 'none left: this one pauses its origin at 256 KiB');
  sockets[0]!.emit('drain');
  t.is(fastSlotsTaken(), HOLDING_FAST - 1, 'given back when everything was sent');
  t.true(takeFastSlot(late as never));
  sockets[1]!.emit('close');
  late.emit('close');
  for (const s of sockets.slice(2)) s.emit('drain');
  t.is(fastSlotsTaken(), before);
  t.true(sockets.every((s) => s.listenerCount('drain') === 0 && s.listenerCount('close') === 0), 'no listener left behind');
});

test.serial('a client that stops reading: its connection takes a slot, its origin waits, and the slot is given back when the connection closes', async (t) => {
  // An origin with far more than the proxy may hold: it writes as its socket takes them.
  const total = 64 * 1024 * 1024;
  const chunk = Buffer.alloc(CHUNK, 0x63);
  let sent = 0;
  let originClosed = false;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(total) });
    res.on('close', () => (originClosed = true));
    const pump = (): void => {
      while (sent < total && !res.destroyed) {
        sent += CHUNK;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const p: Running = await startProxy(snapshot([record(origin.port)]), { timeouts: { originIdleMs: 60_000 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const before = fastSlotsTaken();
  const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  s.on('error', () => undefined);
  s.pause(); // never read
  const deadline = Date.now() + 10_000;
  while (fastSlotsTaken() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(fastSlotsTaken(), before + 1, 'the connection holds a slot');
  // Paused: what the origin got rid of stops growing far below the body (kernel buffers
  // on both sides, plus what the proxy holds), instead of the whole 64 MiB.
  await new Promise((r) => setTimeout(r, 300));
  const settled = sent;
  await new Promise((r) => setTimeout(r, 300));
  t.is(sent, settled, 'the origin is paused');
  t.true(sent < total / 2, `the origin wrote ${sent} bytes`);
  s.destroy();
  while ((fastSlotsTaken() !== before || !originClosed) && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 20));
  t.is(fastSlotsTaken(), before, 'given back when the client left');
  t.true(originClosed);
});

if (hasOpenssl()) {
  test('a large body over TLS: the same', async (t) => {
    const ca = makeCa();
    t.teardown(() => ca.remove());
    const cert = ca.issue(['localhost']);
    const origin = await fastOrigin();
    const p: Running = await startProxy(snapshot([record(origin.port)]), { tls: { certificates: [cert] } });
    const tlsPort = ((await p.proxy.listenTls(0, '127.0.0.1')) as AddressInfo).port;
    t.teardown(async () => {
      await p.proxy.close({ deadlineMs: 100 });
      await origin.close();
    });
    const writes = watchWrites(p.proxy.tlsServer!);
    const received = await bodyLength((done) => https.get({ host: '127.0.0.1', port: tlsPort, path: '/', ca: ca.ca, servername: 'localhost' }, done));
    check(t, writes, received);
  });
}

/** The number of body bytes of the response to the request `get` makes. */
function bodyLength(get: (onResponse: (res: http.IncomingMessage) => void) => http.ClientRequest): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    get((res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject);
  });
}
