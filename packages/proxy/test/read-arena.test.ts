// A cleartext origin connection reads into memory it reuses (src/origin-client/read-arena.ts)
// and hands Content-Length bodies over as views of it: the bytes of a chunk must stay
// as they are for as long as its handler may still send them. Checked here by content,
// byte for byte, never by time: bodies that differ per request, through connections
// shared by clients that read at once, slowly, or behind a pipelined response.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import test from 'ava';
import { OriginConnection } from '../src/origin-client/connection.js';
import { arenaCounts, READ_MAX, SMALL_ARENA } from '../src/origin-client/read-arena.js';
import type { OriginHandler } from '../src/origin-client/types.js';
import { originClient, record, snapshot, startOrigin, startProxy } from './helpers.js';

/** The body for request `n`: its length and bytes both depend on n (a mix-up shows). */
function bodyOf(n: number): Buffer {
  const sizes = [3 * 1024, 20 * 1024, SMALL_ARENA - 100, 300 * 1024, 1536 * 1024, READ_MAX + 1];
  const size = sizes[n % sizes.length]! + n;
  const body = Buffer.allocUnsafe(size);
  let x = (n * 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    body[i] = x >>> 24;
  }
  return body;
}

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Send the heads of `paths` at once on one connection and read their responses, at `pace`. */
function rawGets(port: number, paths: string[], slow: boolean): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const bodies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let need = -1;
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        if (need < 0) {
          const end = pending.indexOf('\r\n\r\n');
          if (end < 0) break;
          const head = pending.subarray(0, end).toString('latin1');
          const m = /\r\ncontent-length: (\d+)/i.exec(head);
          if (m === null) return reject(new Error(`no content-length: ${head}`));
          need = Number(m[1]);
          pending = pending.subarray(end + 4);
        }
        if (pending.length < need) break;
        bodies.push(Buffer.from(pending.subarray(0, need)));
        pending = pending.subarray(need);
        need = -1;
        if (bodies.length === paths.length) {
          socket.destroy();
          resolve(bodies);
          return;
        }
      }
      if (slow) {
        // A slow reader: the proxy's writes to it stay queued, its origin is paused and
        // resumed, while other clients' responses are read into the same connections.
        socket.pause();
        setTimeout(() => socket.resume(), 3);
      }
    });
    socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
  });
}

function fastGet(port: number, path: string, agent: http.Agent): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('bodies read into reused memory reach fast, slow and pipelined clients intact, over origin connections they share', async (t) => {
  const origin = await startOrigin((req, res) => {
    const body = bodyOf(Number(req.url!.slice(1)));
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  // Two origin connections for every client: each is read for fast and slow ones in turn.
  const p = await startProxy(snapshot([record(origin.port)]), { limits: { originMaxConnections: 2 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
  t.teardown(() => agent.destroy());
  let next = 0;
  const checks: Promise<void>[] = [];
  const expect = (n: number, got: Buffer, who: string): void => {
    t.is(got.length, bodyOf(n).length, `${who}: length of /${n}`);
    t.is(digest(got), digest(bodyOf(n)), `${who}: bytes of /${n}`);
  };
  for (let client = 0; client < 3; client++) {
    checks.push(
      (async () => {
        for (let i = 0; i < 8; i++) {
          const n = next++;
          expect(n, await fastGet(p.port, `/${n}`, agent), 'fast');
        }
      })(),
    );
  }
  for (let client = 0; client < 2; client++) {
    checks.push(
      (async () => {
        for (let i = 0; i < 4; i++) {
          const n = next++;
          expect(n, (await rawGets(p.port, [`/${n}`], true))[0]!, 'slow');
        }
      })(),
    );
  }
  checks.push(
    (async () => {
      for (let i = 0; i < 4; i++) {
        // Two pipelined: the second response is written behind the first, which the
        // client reads slowly (it waits in the response's own buffer meanwhile).
        const a = next++;
        const b = next++;
        const [ga, gb] = await rawGets(p.port, [`/${a}`, `/${b}`], i % 2 === 0);
        expect(a, ga!, 'pipelined');
        expect(b, gb!, 'pipelined');
      }
    })(),
  );
  await Promise.all(checks);
  t.is(p.proxy.stats().client.failed, 0);
});

test('a handler that does not say when it is done with its chunks keeps them as they were; one that holds them for a while too', async (t) => {
  const origin = await startOrigin((req, res) => {
    const body = bodyOf(Number(req.url!.slice(1)));
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  t.teardown(() => origin.close());
  const c = originClient(t, (origin.server.address() as AddressInfo).port, { connections: 1 });
  // Every chunk kept as handed over (views): compared once all responses are read.
  const kept: { n: number; chunks: Buffer[] }[] = [];
  const get = (n: number, holdUntil: Promise<void> | null): Promise<void> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let holding = true;
      void holdUntil?.then(() => (holding = false));
      const handler: OriginHandler = {
        onConnect: () => undefined,
        onHeaders: () => true,
        onData: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        onComplete: () => {
          kept.push({ n, chunks });
          resolve();
        },
        onError: reject,
      };
      if (holdUntil !== null) handler.holdsChunks = () => holding;
      c.dispatch({ path: `/${n}`, method: 'GET', headers: ['host', 'a'], body: null }, handler);
    });
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  // One connection: every response is read into the memory of the ones before it.
  for (let n = 0; n < 12; n++) await get(n, n % 3 === 0 ? released : null);
  // The holders' chunks, still held: intact although eleven responses came after.
  for (const { n, chunks } of kept) t.is(digest(Buffer.concat(chunks)), digest(bodyOf(n)), `/${n} while held`);
  release();
  await new Promise((r) => setImmediate(r));
  for (let n = 12; n < 18; n++) await get(n, null);
  // Handlers without holdsChunks: never reused under them, even after others released.
  for (const { n, chunks } of kept) if (n % 3 !== 0) t.is(digest(Buffer.concat(chunks)), digest(bodyOf(n)), `/${n} (never released)`);
});

test.serial('small responses on one connection go round its one small arena: no arena per response, every body intact until its handler lets go', async (t) => {
  const origin = await startOrigin((req, res) => {
    const n = Number(req.url!.slice(1));
    const body = Buffer.alloc(900 + (n % 7) * 50, 0x41 + (n % 26));
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  t.teardown(() => origin.close());
  const c = originClient(t, (origin.server.address() as AddressInfo).port, { connections: 1 });
  // As forward.ts's exchange: a small body is held until the turn's check phase, then let go.
  const get = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let holding = true;
      c.dispatch({ path: `/${n}`, method: 'GET', headers: ['host', 'a'], body: null }, {
        onConnect: () => undefined,
        onHeaders: () => true,
        onData: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        holdsChunks: () => holding,
        onComplete: () =>
          setImmediate(() => {
            const body = Buffer.concat(chunks);
            t.is(body.length, 900 + (n % 7) * 50, `/${n}`);
            t.true(body.every((b) => b === 0x41 + (n % 26)), `/${n} intact`);
            holding = false;
            resolve();
          }),
        onError: reject,
      });
    });
  await get(0);
  const made = arenaCounts.made[0]!;
  // ~100 KB through a 16 KiB arena: round it several times.
  for (let n = 1; n <= 100; n++) await get(n);
  t.is(arenaCounts.made[0]! - made, 0, 'no new small arena');
});

test.serial('an idle connection lets go of the last handler its arena lent to, a turn after that handler is done (not at its next read)', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('a small body'));
  t.teardown(() => origin.close());
  const conns: OriginConnection[] = [];
  const idle = OriginConnection.prototype.idle;
  OriginConnection.prototype.idle = function (this: OriginConnection) {
    if (!conns.includes(this)) conns.push(this);
    idle.call(this);
  };
  t.teardown(() => (OriginConnection.prototype.idle = idle));
  const c = originClient(t, (origin.server.address() as AddressInfo).port, { connections: 1 });
  let holding = true;
  const handler: OriginHandler = {
    onConnect: () => undefined,
    onHeaders: () => true,
    onData: () => true,
    holdsChunks: () => holding,
    onComplete: () => undefined,
    onError: () => undefined,
  };
  await new Promise<void>((resolve) => {
    handler.onComplete = () =>
      // As forward.ts's exchange: its small body leaves in the turn's check phase.
      setImmediate(() => {
        holding = false;
        resolve();
      });
    c.dispatch({ path: '/', method: 'GET', headers: ['host', 'a'], body: null }, handler);
  });
  t.is(conns.length, 1);
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  t.is(conns[0]!.small?.lentTo ?? null, null, 'the idle connection no longer references the handler');
});
