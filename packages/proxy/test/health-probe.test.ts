// The health check's own HTTP/1.1 client (health/http-probe.ts) against raw origins that
// answer with each framing RFC 9112 §6.3 allows, and the summary log of health changes.
import net from 'node:net';
import test from 'ava';
import { HttpProbe, MAX_BODY, type ProbeOutcome } from '../src/health/http-probe.js';
import { HealthLog } from '../src/health/health-log.js';

/** A raw origin: `respond(requestHead, socket, n)` for the n-th request on a connection. */
async function rawOrigin(t: import('ava').ExecutionContext, respond: (head: string, socket: net.Socket, n: number) => void): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let buf = '';
    let n = 0;
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        respond(head, socket, n++);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

function probeOf(t: import('ava').ExecutionContext, port: number, method = 'GET'): HttpProbe {
  const p = new HttpProbe({ host: '127.0.0.1', port, tls: null }, { method, path: '/health', authority: `127.0.0.1:${port}` });
  t.teardown(() => p.close());
  return p;
}

const check = (p: HttpProbe): Promise<ProbeOutcome> => new Promise((resolve) => p.check(resolve));

test('status and framing: Content-Length, chunked with trailers, 204, interim 100; the connection is reused for each', async (t) => {
  const answers = [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nbusy\r\n3\r\n!!!\r\n0\r\nX-Trailer: 1\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n',
  ];
  let seen = '';
  const o = await rawOrigin(t, (head, s, n) => {
    seen = head;
    // Split each answer in two writes, so parsing across chunks is exercised.
    const a = answers[n]!;
    s.write(a.slice(0, 9));
    setTimeout(() => s.write(a.slice(9)), 5);
  });
  const p = probeOf(t, o.port);
  t.deepEqual(await check(p), { status: 200 });
  t.regex(seen, /^GET \/health HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nUser-Agent: weldr-health-check/);
  t.deepEqual(await check(p), { status: 503 });
  t.deepEqual(await check(p), { status: 204 });
  t.deepEqual(await check(p), { status: 302 });
  t.is(o.connections(), 1, 'one kept-alive connection for every check');
});

test('HEAD has no body whatever Content-Length says; a close-delimited body ends at the close and the next check reconnects', async (t) => {
  const o = await rawOrigin(t, (head, s) => {
    if (head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    else s.end('HTTP/1.0 200 OK\r\n\r\nbody until close');
  });
  const h = probeOf(t, o.port, 'HEAD');
  t.deepEqual(await check(h), { status: 200 });
  t.deepEqual(await check(h), { status: 200 });
  t.is(o.connections(), 1);
  const g = probeOf(t, o.port);
  t.deepEqual(await check(g), { status: 200 });
  t.deepEqual(await check(g), { status: 200 });
  t.is(o.connections(), 3, 'a close-delimited answer is never followed by another request on its connection');
});

test('a body beyond MAX_BODY decides by its status and drops the connection', async (t) => {
  const o = await rawOrigin(t, (_h, s) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${4 * MAX_BODY}\r\n\r\n`);
    s.write(Buffer.alloc(4 * MAX_BODY, 0x61));
  });
  const p = probeOf(t, o.port);
  t.deepEqual(await check(p), { status: 200 });
  t.deepEqual(await check(p), { status: 200 });
  t.is(o.connections(), 2);
});

test('malformed answers, refused and reset connections fail the check with a reason', async (t) => {
  const o = await rawOrigin(t, (_h, s, n) => {
    if (n === 0) s.write('SMTP ready\r\n\r\n');
  });
  t.deepEqual(await check(probeOf(t, o.port)), { error: 'malformed response' });
  const closed = await rawOrigin(t, (_h, s) => s.destroy());
  t.deepEqual(await check(probeOf(t, closed.port)), { error: 'ECONNRESET' });
  // A port with nothing listening.
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as net.AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  t.deepEqual(await check(probeOf(t, port)), { error: 'ECONNREFUSED' });
  const chunky = await rawOrigin(t, (_h, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
  t.deepEqual(await check(probeOf(t, chunky.port)), { error: 'malformed chunked body' });
});

test('a kept-alive connection the origin closed as the check went out is retried once on a fresh one', async (t) => {
  // The origin answers the first request, then closes the connection on the next one
  // without answering (its keep-alive timer fired just then): not a health failure.
  const o = await rawOrigin(t, (_h, s, n) => {
    if (n === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    else s.destroy();
  });
  const p = probeOf(t, o.port);
  t.deepEqual(await check(p), { status: 200 });
  t.deepEqual(await check(p), { status: 200 });
  t.is(o.connections(), 2);
  // On a fresh connection the same close is a failure: no second retry.
  const dead = await rawOrigin(t, (_h, s) => s.destroy());
  const q = probeOf(t, dead.port);
  t.deepEqual(await check(q), { error: 'ECONNRESET' });
  t.is(dead.connections(), 1);
});

test('abort() drops the connection: a late answer is not taken for the next check', async (t) => {
  // The first request is answered late (500), once the test says so: after the abort and
  // after the second check. Event-driven, so a loaded machine changes nothing.
  let requests = 0;
  let requestSeen!: () => void;
  const firstArrived = new Promise<void>((r) => (requestSeen = r));
  let answerFirst!: () => void;
  const release = new Promise<void>((r) => (answerFirst = r));
  let lateWritten!: () => void;
  const written = new Promise<void>((r) => (lateWritten = r));
  const o = await rawOrigin(t, (_h, s) => {
    if (requests++ === 0) {
      requestSeen();
      void release.then(() => {
        if (!s.destroyed) s.write('HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n');
        lateWritten();
      });
    } else s.write('HTTP/1.1 200 X\r\nContent-Length: 0\r\n\r\n');
  });
  const p = probeOf(t, o.port);
  let first: ProbeOutcome | undefined;
  p.check((r) => (first = r));
  await firstArrived;
  p.abort();
  t.deepEqual(await check(p), { status: 200 });
  answerFirst();
  await written;
  await new Promise((r) => setTimeout(r, 50));
  t.is(first, undefined, 'an aborted check is never answered');
  t.is(o.connections(), 2);
});

test('health log: one change at a time is one line; a storm within the window is one summary', (t) => {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const record = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger = { info: record('info'), warn: record('warn'), debug: record('debug'), error: record('error') };
  let now = 10_000;
  const totals = { healthy: 9_990, unhealthy: 10, unknown: 0 };
  const log = new HealthLog(logger, () => totals, { now: () => now, windowMs: 1_000 });
  log.changed({ server: 'a:1', from: 'healthy', to: 'unhealthy', error: 'ECONNREFUSED' });
  t.deepEqual(lines.filter((l) => l.level !== 'debug').map((l) => [l.level, l.msg]), [['warn', 'origin health changed: a:1 healthy → unhealthy']]);
  now += 10;
  for (let i = 0; i < 10_000; i++) log.changed({ server: `s${i}:80`, from: 'healthy', to: 'unhealthy', error: 'timeout' });
  log.changed({ server: 'b:1', from: 'unknown', to: 'healthy' });
  t.is(lines.filter((l) => l.level !== 'debug').length, 1, 'nothing more until the window ends');
  log.flush();
  const summary = lines.filter((l) => l.level !== 'debug').at(-1)!;
  t.is(summary.level, 'warn');
  t.is(summary.msg, 'origin health: 10000 became unhealthy: s0:80 (timeout), s1:80 (timeout), s2:80 (timeout), s3:80 (timeout), s4:80 (timeout), and 9995 more; 1 became healthy: b:1 (now 9990 healthy, 10 unhealthy, 0 unknown)');
  t.is(summary.obj['wentUnhealthy'], 10_000);
  t.is(lines.filter((l) => l.level === 'debug').length, 10_002, 'every change still at debug level');
});
