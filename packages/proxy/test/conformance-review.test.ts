// HTTP/1.1 conformance cases found in an adversarial review (RFC 9110 / RFC 9112): the
// order of answers on a pipelined connection that turns malformed, request-line vs.
// header-section overflow, Expect, and origin responses undici or node mishandle.
import net, { type AddressInfo } from 'node:net';
import test from 'ava';
import { clientErrorCode } from '../src/server.js';
import { rawRequest, record, setup, snapshot, startOrigin, startProxy, statusOf, until } from './helpers.js';

/** An origin answering each request head with the exact bytes mapped to its path. */
async function rawOrigin(t: import('ava').ExecutionContext, responses: Record<string, string>): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      let end: number;
      while ((end = head.indexOf('\r\n\r\n')) >= 0) {
        const path = head.slice(0, end).split(' ')[1] ?? '/';
        head = head.slice(end + 4);
        socket.write(responses[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

test('a request-target longer than maxHeaderSize → 414, a large header field → 431', async (t) => {
  const { origin, p } = await setup(t, undefined, { maxHeaderSize: 4096 });
  const long = await rawRequest(p.port, `GET /${'a'.repeat(6000)} HTTP/1.1\r\nHost: a\r\n\r\n`);
  t.is(statusOf(long.text), 414, long.text.slice(0, 100));
  t.regex(long.text, /x-weldr-error: URI_TOO_LONG/);
  t.true(long.closed);
  const big = await rawRequest(p.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(6000)}\r\n\r\n`);
  t.is(statusOf(big.text), 431);
  t.is(origin.seen.length, 0);
});

test('clientErrorCode judges the request line that failed, not the first one of the chunk', (t) => {
  const packet = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /${'a'.repeat(100)}`);
  t.is(clientErrorCode('HPE_HEADER_OVERFLOW', packet, packet.length), 'URI_TOO_LONG');
  const headers = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(100)}`);
  t.is(clientErrorCode('HPE_HEADER_OVERFLOW', headers, headers.length), 'HEADERS_TOO_LARGE');
  // A valid request, then one with an unsupported major version, then one with garbage.
  const v2 = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/3.0\r\nHost: a\r\n\r\n');
  t.is(clientErrorCode('HPE_INVALID_VERSION', v2, v2.indexOf('HTTP/3.0')), 'VERSION_NOT_SUPPORTED');
  const junk = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n@@@\r\n\r\n');
  t.is(clientErrorCode('HPE_INVALID_METHOD', junk, junk.indexOf('@@@')), 'BAD_REQUEST');
});

test('pipelining: a malformed request after a valid one is answered after it, in order, then the connection closes', async (t) => {
  const { origin, p } = await setup(t);
  const r = await rawRequest(p.port, 'GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\nGET /third HTTP/1.1\r\nHost: a\r\n\r\n');
  t.deepEqual(statuses(r.text), [200, 400], r.text);
  t.true(r.text.includes('origin:GET /first'));
  t.true(r.closed);
  t.deepEqual(origin.seen.map((s) => s.url), ['/first']);
});

test('pipelining: a request refused by the filter does not cut the answer to the one before; nothing after it is forwarded', async (t) => {
  const { origin, p } = await setup(t);
  const r = await rawRequest(p.port, 'GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /third HTTP/1.1\r\nHost: a\r\n\r\n');
  t.deepEqual(statuses(r.text), [200, 400], r.text);
  t.true(r.closed);
  t.deepEqual(origin.seen.map((s) => s.url), ['/first']);
});

// node hands a CONNECT over as soon as it is parsed; its 501 was written at once and the
// connection closed: the answer to the request pipelined before it was never sent, even
// a fast one (found by probing GET + CONNECT in one packet). RFC 9112 §9.3.2.
test('pipelining: a CONNECT after a valid request is answered 501 after it, in order, then the connection closes', async (t) => {
  const { origin, p } = await setup(t, (req, res) => setTimeout(() => res.end(`origin:${req.method} ${req.url}`), req.url === '/slow' ? 200 : 0));
  for (const first of ['/fast', '/slow']) {
    const r = await rawRequest(p.port, `GET ${first} HTTP/1.1\r\nHost: a\r\n\r\nCONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n`);
    t.deepEqual(statuses(r.text), [200, 501], r.text);
    t.true(r.text.includes(`origin:GET ${first}`), r.text);
    t.true(r.closed);
  }
  t.deepEqual(origin.seen.map((s) => s.url), ['/fast', '/slow']);
});

test('a chunked body malformed within the first packet: 400, the origin receives nothing and is not blamed', async (t) => {
  const { origin, p } = await setup(t);
  // Heads as they arrive (origin.seen records complete requests only).
  const arrived: string[] = [];
  origin.server.on('request', (req: import('node:http').IncomingMessage) => arrived.push(req.url!));
  const r = await rawRequest(p.port, 'POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n');
  t.deepEqual(statuses(r.text), [400], r.text);
  t.true(r.closed);
  // Give a forwarded request time to arrive, if one was sent.
  const probe = await rawRequest(p.port, 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.is(statusOf(probe.text), 200);
  t.deepEqual(arrived, ['/after']);
  t.is(p.proxy.stats().server.failed, 0);
});

test('Expect: every member of every Expect field must be 100-continue, else 417 and nothing is forwarded', async (t) => {
  const { origin, p } = await setup(t);
  for (const expect of ['Expect: 100-continue\r\nExpect: x-custom', 'Expect: 100-continue, x-custom', 'Expect: x-custom']) {
    const r = await rawRequest(p.port, `POST / HTTP/1.1\r\nHost: a\r\n${expect}\r\nContent-Length: 2\r\n\r\nhi`);
    t.is(statusOf(r.text), 417, `${expect}: ${r.text}`);
    t.regex(r.text, /x-weldr-error: EXPECTATION_FAILED/);
    t.notRegex(r.text, /100 Continue/);
    t.true(r.closed);
  }
  t.is(origin.seen.length, 0);
});

test('Expect: 100-continue on a request the proxy refuses gets no 100, only the refusal', async (t) => {
  const { origin, p } = await setup(t);
  const r = await rawRequest(p.port, 'POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
  t.deepEqual(statuses(r.text), [400], r.text);
  t.is(origin.seen.length, 0);
});

test('204 and 304 with a Content-Length from the origin are relayed without a body, and the connection stays usable', async (t) => {
  const port = await rawOrigin(t, {
    '/204': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n',
    '/304': 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 5\r\n\r\n',
    '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  });
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.deepEqual(statuses(r.text), [204, 304, 200], r.text);
  const [h204, h304] = r.text.split('HTTP/1.1 ').slice(1);
  t.notRegex(h204!, /content-length|transfer-encoding/i, 'RFC 9110 §8.6: no Content-Length in a 204');
  t.regex(h304!, /content-length: 5/i, "a 304's Content-Length describes the representation");
  t.true(r.text.endsWith('ok'));
  t.is(p.proxy.stats().server.failed, 0);
});

test('an origin status outside 100..599 → 502 ORIGIN_BAD_RESPONSE', async (t) => {
  const port = await rawOrigin(t, {
    '/600': 'HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok',
    '/099': 'HTTP/1.1 099 Below\r\nContent-Length: 2\r\n\r\nok',
  });
  const p = await startProxy(snapshot([record(port)]), { maxRetries: 0 });
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  for (const path of ['/600', '/099']) {
    const r = await rawRequest(p.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    t.is(statusOf(r.text), 502, r.text);
    t.regex(r.text, /x-weldr-error: ORIGIN_BAD_RESPONSE/);
  }
});

test('proxy-generated errors written on a raw socket carry Date', async (t) => {
  const { p } = await setup(t);
  const r = await rawRequest(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n');
  t.is(statusOf(r.text), 400);
  t.regex(r.text, /\r\ndate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/i);
});

test('a client that half-closes after its request still gets the response', async (t) => {
  const { p } = await setup(t);
  const text = await new Promise<string>((resolve) => {
    const socket = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.end('GET /half HTTP/1.1\r\nHost: a\r\n\r\n'));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
  t.is(statusOf(text), 200, text);
  t.true(text.endsWith('origin:GET /half'));
});

test('a request with as many header fields as node keeps (2000) → 431: none is silently dropped', async (t) => {
  const { origin, p } = await setup(t, undefined, { maxHeaderSize: 64 * 1024 });
  const fields = Array.from({ length: 2000 }, (_, i) => `X-${i}: v\r\n`).join('');
  const r = await rawRequest(p.port, `GET / HTTP/1.1\r\nHost: a\r\n${fields}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
  t.is(statusOf(r.text), 431, r.text.slice(0, 100));
  t.is(origin.seen.length, 0);
  const fewer = Array.from({ length: 100 }, (_, i) => `X-${i}: v\r\n`).join('');
  t.is(statusOf((await rawRequest(p.port, `GET / HTTP/1.1\r\nHost: a\r\n${fewer}Connection: close\r\n\r\n`)).text), 200);
});

test('Transfer-Encoding: chunked plus an empty Transfer-Encoding field → 400 (not 501: no coding to implement)', async (t) => {
  const { origin, p } = await setup(t);
  const r = await rawRequest(p.port, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n');
  t.is(statusOf(r.text), 400, r.text);
  t.is(origin.seen.length, 0);
});

test('an origin response in a transfer coding other than chunked → 502 (it would reach the client undecodable)', async (t) => {
  const port = await rawOrigin(t, {
    '/gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  });
  const p = await startProxy(snapshot([record(port)]), { maxRetries: 0 });
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const bad = await rawRequest(p.port, 'GET /gzip-chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.is(statusOf(bad.text), 502, bad.text);
  t.regex(bad.text, /x-weldr-error: ORIGIN_BAD_RESPONSE/);
  const ok = await rawRequest(p.port, 'GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.is(statusOf(ok.text), 200, ok.text);
  t.true(ok.text.endsWith('3\r\nabc\r\n0\r\n\r\n'));
});

test('a request body that stops arriving → 408 after clientBodyIdleMs (long before clientRequestMs); the origin request is aborted', async (t) => {
  const { p } = await setup(t, undefined, { timeouts: { clientBodyIdleMs: 300, clientRequestMs: 60_000 } });
  const r = await rawRequest(p.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a little', 10_000);
  t.is(statusOf(r.text), 408, r.text);
  t.regex(r.text, /x-weldr-error: CLIENT_TIMEOUT/);
  t.true(r.closed);
  t.is(p.proxy.stats().server.failed, 0, 'the stalled upload is not held against the origin');
  t.is(p.proxy.stats().servers[0]!.active, 0);
});

test('an upload that keeps making progress is not cut by clientBodyIdleMs', async (t) => {
  const { origin, p } = await setup(t, undefined, { timeouts: { clientBodyIdleMs: 400 } });
  const parts = ['POST /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n', ...'abcdefghijkl'];
  const text = await new Promise<string>((resolve) => {
    const socket = net.connect(p.port, '127.0.0.1', async () => {
      // 12 bytes, one every 100 ms: 1.2 s in all, three times the idle limit.
      for (const part of parts) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('close', () => resolve(got));
  });
  t.is(statusOf(text), 200, text);
  t.is(origin.seen[0]!.body, 'abcdefghijkl');
});

test('an upload held back by a slow origin (backpressure) is not cut by clientBodyIdleMs', async (t) => {
  const http = await import('node:http');
  let received = 0;
  const slow = http.createServer((req, res) => {
    // Read nothing for three idle limits, then everything.
    setTimeout(() => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end('done'));
    }, 3_000);
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  // An idle limit long enough that a busy machine's own pauses in the upload never reach it.
  const p = await startProxy(snapshot([record((slow.address() as AddressInfo).port)]), { timeouts: { clientBodyIdleMs: 1_000 } });
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
  });
  const size = 8 * 1024 * 1024;
  const r = await rawRequest(p.port, Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`), Buffer.alloc(size, 0x61)]), 10_000);
  t.is(statusOf(r.text), 200, r.text.slice(0, 200));
  t.is(received, size);
});

test('a declined upgrade relayed from an origin that sent no Date gets one', async (t) => {
  const port = await rawOrigin(t, { '/up': 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n' });
  const p = await startProxy(snapshot([record(port)]));
  t.teardown(() => p.proxy.close({ deadlineMs: 100 }));
  const r = await rawRequest(p.port, 'GET /up HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  t.is(statusOf(r.text), 404, r.text);
  t.regex(r.text, /\r\ndate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/i);
});

test('a client that resets mid-upload is not held against the origin (no failure, no ejection)', async (t) => {
  const passiveHealth = { enabled: true, consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 120_000 };
  const origin = await startOrigin();
  const arrived: string[] = [];
  origin.server.on('request', (req: import('node:http').IncomingMessage) => arrived.push(req.url!));
  const p = await startProxy(snapshot([record(origin.port)], { passiveHealth }));
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const socket = net.connect(p.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(10_000)}`);
  // Reset once the origin has the request (the upload is under way).
  await until(() => arrived.includes('/upload'));
  socket.resetAndDestroy();
  await until(() => p.proxy.stats().client.failed === 1 && p.proxy.stats().servers[0]!.active === 0);
  const s = p.proxy.stats();
  t.is(s.server.failed, 0);
  t.false(s.servers[0]!.ejected);
});

test('HTTP/1.2 is processed as HTTP/1.1 (RFC 9112 §2.3); other major versions → 505; strictness otherwise unchanged', async (t) => {
  const { origin, p } = await setup(t, undefined, { timeouts: { clientHeadersMs: 300, clientRequestMs: 1000 } });
  const r = await rawRequest(p.port, 'GET /v12 HTTP/1.2\r\nHost: a\r\n\r\nGET /v19 HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.deepEqual(statuses(r.text), [200, 200], r.text);
  t.true(r.closed);
  t.deepEqual(origin.seen.map((s) => s.url), ['/v12', '/v19']);
  t.is(statusOf((await rawRequest(p.port, 'GET / HTTP/1.2\r\n\r\n')).text), 400, 'Host is required as in 1.1');
  for (const version of ['4.2', '0.8']) {
    t.is(statusOf((await rawRequest(p.port, `GET / HTTP/${version}\r\nHost: a\r\n\r\n`)).text), 505, version);
  }
  for (const bad of ['GET / http/1.1\r\nHost: a\r\n\r\n', 'GET / HTTP/1.10\r\nHost: a\r\n\r\n', 'POST / HTTP/1.2\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
    t.is(statusOf((await rawRequest(p.port, bad)).text), 400, bad);
  }
  // Expect is honoured as for 1.1 (node handles it for 1.1 only).
  const e = await rawRequest(p.port, 'POST /e12 HTTP/1.2\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  t.deepEqual(statuses(e.text), [100, 200], e.text);
  t.is(statusOf((await rawRequest(p.port, 'POST / HTTP/1.2\r\nHost: a\r\nExpect: x-other\r\nContent-Length: 0\r\n\r\n')).text), 417);
  // The re-initialised parser still has the header timeout.
  const slow = await rawRequest(p.port, 'GET / HTTP/1.2\r\nHost: a\r\nX-Slow: ', 5_000);
  t.is(statusOf(slow.text), 408);
  t.is(origin.seen.length, 3);
});

test('an Upgrade request with content (curl --http2 -d) is forwarded with its body; an origin ignoring Upgrade answers normally', async (t) => {
  const { origin, p } = await setup(t);
  const head = 'POST /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\n';
  // Head and body in one packet, then split across two.
  for (const data of [head + 'hello', [head, 'hel', 'lo']]) {
    const text = await new Promise<string>((resolve) => {
      const socket = net.connect(p.port, '127.0.0.1', async () => {
        for (const part of Array.isArray(data) ? data : [data]) {
          socket.write(part);
          await new Promise((r) => setTimeout(r, 20));
        }
      });
      let got = '';
      socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
      socket.on('close', () => resolve(got));
    });
    t.is(statusOf(text), 200, text);
    t.true(text.endsWith('origin:POST /h2c'), text);
  }
  t.deepEqual(origin.seen.map((s) => s.body), ['hello', 'hello']);
  const chunked = await rawRequest(p.port, 'POST /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  t.is(statusOf(chunked.text), 400);
  const big = await rawRequest(p.port, 'POST /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 1000000\r\n\r\n');
  t.is(statusOf(big.text), 413);
  t.is(origin.seen.length, 2);
});

test('a request-target with a fragment → 400, in origin-form and absolute-form', async (t) => {
  const { origin, p } = await setup(t);
  for (const target of ['/a#b', 'http://a/x#frag', '/#']) {
    const r = await rawRequest(p.port, `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`);
    t.is(statusOf(r.text), 400, target);
    t.true(r.closed);
  }
  t.is(origin.seen.length, 0);
});
