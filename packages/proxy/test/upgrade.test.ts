// WebSocket through the proxy, with a hand-made handshake in the origin (no deps).
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { rawRequest, record, snapshot, startOrigin, startProxy, statusOf, until } from './helpers.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Upgrade requests the echo origins received (request-targets), in order. */
const upgrades: string[] = [];

/** Unmasked server frame / masked client frame for a short text payload. */
function frame(text: string, mask: boolean): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.from([0x81, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([head, payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, masked]);
}

function unmask(data: Buffer): string {
  const len = data[1]! & 0x7f;
  const key = data.subarray(2, 6);
  return Buffer.from(data.subarray(6, 6 + len).map((b, i) => b ^ key[i % 4]!)).toString();
}

async function echoOrigin(handler?: Parameters<typeof startOrigin>[0]) {
  const origin = await startOrigin(handler);
  origin.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(req.url ?? '');
    if (req.headers['upgrade']?.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nno ws!\n');
      return;
    }
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d: Buffer) => socket.write(frame(`echo:${unmask(d)}`, false)));
    // A well-behaved server closes when its peer has (node keeps half-open sockets).
    socket.on('end', () => socket.end());
  });
  return origin;
}

test('WebSocket handshake and frames are tunnelled both ways', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const key = Buffer.from('0123456789abcdef').toString('base64');
  const s = net.connect(p.port, '127.0.0.1');
  s.write(`GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0);
  const read = (pred: (b: Buffer) => boolean) =>
    new Promise<void>((resolve) => {
      const on = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (pred(buf)) {
          s.off('data', on);
          resolve();
        }
      };
      s.on('data', on);
    });
  await read((b) => b.includes('\r\n\r\n'));
  const head = buf.toString('latin1', 0, buf.indexOf('\r\n\r\n'));
  t.regex(head, /^HTTP\/1\.1 101 /);
  t.regex(head, /\r\nupgrade: websocket/i);
  t.regex(head, /\r\nconnection: upgrade/i);
  t.regex(head, new RegExp(`sec-websocket-accept: ${createHash('sha1').update(`${key}${GUID}`).digest('base64').replace(/[+/]/g, '\\$&')}`, 'i'));
  buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
  s.write(frame('hello', true));
  await read((b) => b.length >= 2 && b.length >= 2 + (b[1]! & 0x7f));
  t.is(buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString(), 'echo:hello');
  t.is(p.proxy.stats().servers[0]!.active, 1, 'an open tunnel counts as in flight');
  s.destroy();
  await until(() => p.proxy.stats().servers[0]!.active === 0);
  t.is(p.proxy.stats().client.success, 1);
  t.is(origin.seen.length, 0, 'the upgrade did not go through the request path');
});

test('an origin refusing the upgrade has its answer relayed and the connection closed', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const r = await rawRequest(p.port, 'GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
  t.is(statusOf(r.text), 400);
  t.true(r.text.endsWith('no ws!\n'));
  t.true(r.closed);
});

test('upgrade with no origin → 503 and close', async (t) => {
  const p = await startProxy(snapshot([]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  t.is(statusOf(r.text), 503);
  t.true(r.closed);
});

test('close() ends open tunnels after the deadline', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(() => origin.close());
  const s = net.connect(p.port, '127.0.0.1');
  s.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await new Promise((r) => s.once('data', r));
  const closed = new Promise((r) => s.on('close', r));
  s.on('error', () => undefined);
  const started = performance.now();
  await p.proxy.close({ deadlineMs: 50 });
  const closedIn = performance.now() - started;
  await closed;
  t.true(s.destroyed, 'the tunnel was closed by the proxy');
  // close() returned once the deadline was over, not when the (idle) tunnel would have
  // timed out by itself (tunnelIdleMs, 60 s).
  t.true(closedIn < 10_000, `close() took ${Math.round(closedIn)} ms`);
  await until(() => p.proxy.stats().client.success === 1);
  t.is(p.proxy.stats().active, 0);
});

// node takes its 'error' listener off a socket it hands over for an upgrade: an upgrade
// request the proxy refuses, from a client that resets the connection at once, made the
// refusal's write fail with ECONNRESET on a socket nobody listened to — an uncaught
// exception that ended the process (found by probing: one such request killed a node).
test('a client that resets right after an upgrade request the proxy refuses does not crash the process', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const uncaught: Error[] = [];
  const onUncaught = (err: Error): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => void process.off('uncaughtException', onUncaught));
  // TRACE is refused (405); so are a bad Host, an Upgrade request with chunked content, …
  for (const request of [
    'TRACE /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'GET /ws HTTP/1.1\r\nHost: a b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 100000\r\n\r\n',
  ]) {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect(p.port, '127.0.0.1', () => {
          s.write(request + 'x'.repeat(1000));
          s.resetAndDestroy();
        });
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
    }
  }
  // Whatever the proxy still had to do with those sockets is done by the time it has
  // answered a request on a new connection.
  await new Promise((r) => setTimeout(r, 100));
  const r = await rawRequest(p.port, 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.is(statusOf(r.text), 200);
  t.deepEqual(uncaught.map((e) => e.message), []);
});

/** A raw client: what it has received so far, and a wait for more. */
function rawClient(port: number) {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  let got = Buffer.alloc(0);
  let closed = false;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  s.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
    wake();
  });
  s.on('close', () => {
    closed = true;
    wake();
  });
  return {
    socket: s,
    text: () => got.toString('latin1'),
    closed: () => closed,
    /** Resolves once `pred` holds for the bytes received, the connection closed, or `ms` passed. */
    until: (pred: (text: string) => boolean, ms = 10_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve();
        }, ms);
        const check = (): void => {
          if (pred(got.toString('latin1')) || closed) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

const WS_HEAD = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n';

// RFC 9112 §9.3.2. node hands an Upgrade request over as soon as it has parsed it; the
// 101 overtook the response to a slower request pipelined before it, whose response
// then went into the tunnel (found by probing: GET /slow + GET /ws in one packet).
test('an upgrade pipelined behind a slower request is answered after it, in order; the tunnel then works', async (t) => {
  const origin = await echoOrigin((req, res) => setTimeout(() => res.end(`answer to ${req.url}`), 300));
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const c = rawClient(p.port);
  c.socket.write(`GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /ws-ordered HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`);
  await c.until((text) => /\r\n\r\n[^]*HTTP\/1\.1 101 [^]*\r\n\r\n/.test(text));
  const text = c.text();
  t.regex(text, /^HTTP\/1\.1 200 /);
  const first = text.indexOf('answer to /slow');
  const switched = text.indexOf('HTTP/1.1 101 ');
  t.true(first > 0 && switched > first, text);
  c.socket.write(frame('after', true));
  await c.until((t2) => t2.includes('echo:after'));
  t.true(c.text().includes('echo:after'));
  c.socket.destroy();
});

// A request refused for its framing marks its connection: whatever is parsed after it
// may be the smuggled half and is never forwarded (handleRequest). An Upgrade request
// there went to the origin all the same — at once when the pool had an idle connection
// to it (found by probing: two Host fields, then an upgrade, in one packet).
test('an upgrade pipelined behind a refused request (or one that closes the connection) never reaches the origin', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const cases: [string, string, number][] = [
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['TRACE', 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n', 405],
    ['an unknown expectation', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: x-other\r\n\r\n', 417],
    ['Connection: close', 'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 200],
  ];
  for (const [name, first, status] of cases) {
    for (const split of [false, true]) {
      // An idle connection to the origin: a forwarded request would go out at once.
      t.is(statusOf((await rawRequest(p.port, 'GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text), 200);
      const target = `/ws-${upgrades.length}`;
      const upgrade = `GET ${target} HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`;
      const c = rawClient(p.port);
      if (split) {
        // The upgrade sent once the first answer has been read.
        c.socket.write(first);
        await c.until((text) => text.includes('\r\n\r\n'));
        c.socket.write(upgrade);
      } else c.socket.write(first + upgrade);
      await c.until(() => false);
      t.is(statusOf(c.text()), status, `${name}: ${c.text()}`);
      t.notRegex(c.text(), /HTTP\/1\.1 101 /, name);
      // A request on a new connection has been answered: the upgrade, had it been forwarded, would have arrived.
      t.is(statusOf((await rawRequest(p.port, 'GET /check HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text), 200);
      t.false(upgrades.includes(target), `${name}${split ? ' (upgrade in a later packet)' : ''}: the upgrade reached the origin`);
    }
  }
});

// RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is received in an
// HTTP/1.0 request." llhttp flags such a request as an upgrade all the same, and it was
// forwarded as one: the client got a 101 and a tunnel (found by probing HTTP/1.0 + Upgrade).
test('Upgrade in an HTTP/1.0 request is ignored: forwarded as an ordinary request, its answer relayed', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const r = await rawRequest(p.port, `GET /ws10 HTTP/1.0\r\nHost: a\r\n${WS_HEAD}\r\n`);
  t.is(statusOf(r.text), 200, r.text);
  t.true(r.text.endsWith('origin:GET /ws10'), r.text);
  t.true(r.closed);
  t.false(upgrades.includes('/ws10'));
  const seen = origin.seen.find((s) => s.url === '/ws10');
  t.truthy(seen);
  t.is(seen!.headers.upgrade, undefined);
});

// The content of an Upgrade request is read by the proxy itself (node's request timers
// no longer see the socket): it waited up to 60 s (the tunnel's idle time) for each
// byte, with no bound on the whole, whatever --client-body-timeout and
// --client-request-timeout said (found by probing: a byte every 800 ms held the
// request for as long as the client went on).
test('the content of an Upgrade request is bounded by the client body and request timeouts: 408', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]), { timeouts: { clientBodyIdleMs: 300, clientRequestMs: 1_000 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const head = `POST /ws-body HTTP/1.1\r\nHost: a\r\n${WS_HEAD}Content-Length: 100\r\n\r\n`;
  // Nothing after the head: the gap between body bytes.
  const stopped = rawClient(p.port);
  stopped.socket.write(head + 'abc');
  await stopped.until(() => false, 5_000);
  t.is(statusOf(stopped.text()), 408, stopped.text());
  // A byte every 100 ms: no gap is long enough, the whole takes too long.
  const trickle = rawClient(p.port);
  trickle.socket.write(head);
  const started = performance.now();
  for (let i = 0; i < 50 && !trickle.closed(); i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (!trickle.closed()) trickle.socket.write('x');
  }
  await trickle.until(() => false, 5_000);
  t.is(statusOf(trickle.text()), 408, trickle.text());
  t.true(performance.now() - started < 4_000, 'refused before the client had sent it all');
  t.false(upgrades.includes('/ws-body'));
  stopped.socket.destroy();
  trickle.socket.destroy();
  await until(() => p.proxy.stats().active === 0);
});

// Field values are bytes (obs-text allowed, RFC 9110 §5.5); the proxy holds them as
// latin1 strings, one char per byte. The heads the tunnel path writes itself (a 101, a
// declined upgrade's answer) were encoded as UTF-8: 'caf\xe9' reached the client as
// 'caf\xc3\xa9' (found by probing obs-text in origin responses on each path).
test('an upgrade answer passes obs-text field values through byte for byte, as the request path does', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', (d: Buffer) => {
      const upgrade = d.toString('latin1').startsWith('GET /101 ');
      const head = upgrade
        ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Obs: caf\xe9\r\n\r\n'
        : 'HTTP/1.1 400 Bad Request\r\nX-Obs: caf\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno';
      socket.write(Buffer.from(head, 'latin1'));
      if (!upgrade) socket.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await new Promise<void>((r) => server.close(() => r()));
  });
  for (const path of ['/101', '/400']) {
    const c = rawClient(p.port);
    c.socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`);
    await c.until((text) => text.includes('\r\n\r\n'), 5_000);
    t.regex(c.text(), /^HTTP\/1\.1 (101|400) /);
    t.is(/\r\nX-Obs: ([^\r]*)\r\n/i.exec(c.text())?.[1], 'caf\xe9', path);
    c.socket.destroy();
  }
});

// node handles Expect (checkContinue, checkExpectation) for every request but an
// Upgrade one, which it hands over as it is: a client announcing content with
// `Expect: 100-continue` (curl --http2 -d with a large body) waited for a 100 that never
// came, and the proxy for the content, until the body timeout: 408 (found by probing
// Expect on upgrade requests). RFC 9110 §10.1.1: 100 or a final status; 417 for an
// expectation the proxy cannot meet, as on the request path.
test('Expect on an Upgrade request: 100 (Continue) before content the client holds back; 417 for other expectations', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]), { timeouts: { clientBodyIdleMs: 5_000 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const head = (expect: string): string => `POST /h2c-expect HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nExpect: ${expect}\r\nContent-Length: 5\r\n\r\n`;
  const c = rawClient(p.port);
  c.socket.write(head('100-continue'));
  await c.until((text) => text.includes('\r\n\r\n'), 3_000);
  t.regex(c.text(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  c.socket.write('hello');
  // Forwarded with its content once it came; the origin declines h2c (400), relayed.
  await c.until(() => false, 5_000);
  t.regex(c.text(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 400 /);
  t.true(c.text().endsWith('no ws!\n'), c.text());
  t.true(upgrades.includes('/h2c-expect'));
  const other = rawClient(p.port);
  other.socket.write(head('x-other'));
  await other.until(() => false, 3_000);
  t.is(statusOf(other.text()), 417, other.text());
});

// The answer of an origin that declines an upgrade is relayed by the proxy itself: a
// client that stopped reading it paused the origin for ever (no stall limit on that
// path), holding the client connection, the origin connection and an in-flight request
// (found by probing clients that stop reading, on each response path).
test('a client that stops reading a declined upgrade\'s answer is closed after the stall limit', async (t) => {
  const big = Buffer.alloc(16 * 1024 * 1024, 0x61);
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
      socket.end(big);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = await startProxy(snapshot([record((server.address() as net.AddressInfo).port)]), { timeouts: { originIdleMs: 300 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await new Promise<void>((r) => server.close(() => r()));
  });
  const c = rawClient(p.port);
  c.socket.once('data', () => c.socket.pause());
  c.socket.write(`GET /big HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`);
  t.teardown(() => c.socket.destroy());
  await until(() => p.proxy.stats().active === 1, 5_000);
  await until(() => p.proxy.stats().active === 0 && p.proxy.stats().connections === 0, 5_000).catch(() => undefined);
  t.is(p.proxy.stats().active, 0, 'the relay still waits for the client');
  t.is(p.proxy.stats().connections, 0, 'the client connection is still open');
});

// Splicing the tunnel removed every 'close' listener of the client socket, the
// connection tracker's too: a connection that had been a WebSocket was never given back
// to the connection limits. After maxConnectionsPerSource tunnels from one address
// (2,500 by default; a load balancer in front is one address) that address was refused
// for good, and after maxConnections (10,000) every client was (found by probing: with a
// per-source limit of 3 the 4th WebSocket, long after the first three closed, was refused).
test('a closed tunnel gives its connection back to the connection limits', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]), { limits: { maxConnectionsPerSource: 2 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  for (let i = 0; i < 5; i++) {
    const c = rawClient(p.port);
    c.socket.write(`GET /ws-${i} HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`);
    await c.until((text) => text.includes('\r\n\r\n'), 5_000);
    t.regex(c.text(), /^HTTP\/1\.1 101 /, `tunnel ${i}`);
    c.socket.end();
    await until(() => p.proxy.stats().active === 0, 5_000);
    await until(() => p.proxy.stats().connections === 0, 5_000).catch(() => undefined);
    t.is(p.proxy.stats().connections, 0, `tunnel ${i} still holds its connection slot`);
  }
});

// A tunnel ends when either side closes or when it idles for tunnelIdleMs (60 s at
// least): each side is ended after its pending bytes and destroyed once they are sent.
// A client that reads nothing never takes them, so the tunnel stayed open for ever
// (found by probing a WebSocket client that stops reading while its origin sends: still
// open 80 s after the 60 s idle timeout). Now destroyed after the stall limit.
test('a tunnel whose client stops reading is closed after the stall limit once it times out', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      // More than the kernel and the proxy take for a client that reads nothing.
      socket.write(Buffer.alloc(16 * 1024 * 1024, 0x62));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = await startProxy(snapshot([record((server.address() as net.AddressInfo).port)]), { timeouts: { originIdleMs: 300 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await new Promise<void>((r) => server.close(() => r()));
  });
  // The proxy's side of the client connection, to stand in for its idle timer (60 s).
  let proxySide: net.Socket | null = null;
  p.proxy.server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => (proxySide = socket));
  const c = rawClient(p.port);
  // The 101 reached the client: the tunnel is spliced (its idle timer is the one fired below).
  let switched = false;
  c.socket.once('data', () => {
    switched = true;
    c.socket.pause();
  });
  c.socket.write(`GET /ws HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`);
  t.teardown(() => c.socket.destroy());
  await until(() => p.proxy.stats().active === 1 && proxySide !== null && switched, 5_000);
  // The client's buffers fill; then the idle timeout fires.
  await new Promise((r) => setTimeout(r, 200));
  proxySide!.emit('timeout');
  await until(() => p.proxy.stats().active === 0 && p.proxy.stats().connections === 0, 5_000).catch(() => undefined);
  t.is(p.proxy.stats().active, 0, 'the tunnel is still open');
  t.is(p.proxy.stats().connections, 0, 'the client connection is still open');
});

// node's HTTP server keeps sockets half-open: the upgrade path ended its side after an
// answer (a refusal, a declined upgrade's relayed response, an HTTP/1.0 request with
// Upgrade) and waited for the client to close. A client that neither read nor closed
// kept the connection, and its place in the connection limits, for ever (found by
// probing clients that never read: still open long after every timeout).
test('after an answer on the upgrade path, a client that neither reads nor closes is closed', async (t) => {
  const origin = await echoOrigin();
  const p = await startProxy(snapshot([record(origin.port)]), { timeouts: { originIdleMs: 300 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  for (const [name, request] of [
    ['a refused upgrade (TRACE)', `TRACE /ws HTTP/1.1\r\nHost: a\r\n${WS_HEAD}\r\n`],
    ['a declined upgrade (the origin answers 400)', `GET /h2c HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n`],
    ['an HTTP/1.0 request with Upgrade', `GET /ws10-idle HTTP/1.0\r\nHost: a\r\n${WS_HEAD}\r\n`],
  ] as const) {
    const s = net.connect(p.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.pause();
    s.write(request);
    t.teardown(() => s.destroy());
    await until(() => p.proxy.stats().connections === 1, 5_000);
    await until(() => p.proxy.stats().connections === 0, 5_000).catch(() => undefined);
    t.is(p.proxy.stats().connections, 0, `${name}: the connection is still open`);
    s.destroy();
  }
});

test('a client that half-closes after an upgrade request still gets the whole relayed answer', async (t) => {
  // More than the kernel buffers take at once: some of it is still unsent when the origin is done.
  const big = 'x'.repeat(16 * 1024 * 1024);
  const origin = await echoOrigin((_req, res) => res.end(big));
  const p = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const text = await new Promise<string>((resolve) => {
    const s = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true }, () => s.end(`GET /half HTTP/1.0\r\nHost: a\r\n${WS_HEAD}\r\n`));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.true(text.endsWith(big), `${text.length} bytes received`);
});
