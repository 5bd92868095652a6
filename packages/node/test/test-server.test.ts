import { connect } from 'node:net';
import test from 'ava';
import { request, WebSocket } from 'undici';
import { chunkedParts, DEFAULT_LARGE_BYTES, firstLargeBodyMismatch, startTestServer, type TestServer } from '../src/index.js';

async function withServer(t: { teardown(fn: () => Promise<void>): void }, id?: string): Promise<{ server: TestServer; base: string }> {
  const server = await startTestServer({ host: '127.0.0.1', port: 0, ...(id === undefined ? {} : { id }) });
  t.teardown(() => server.close(100));
  return { server, base: `http://127.0.0.1:${server.port}` };
}

/** Sends raw bytes and resolves with everything the server sent until it closed or `until` matched. */
function rawExchange(port: number, data: string | Buffer, until?: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, 5000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (until?.(received)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
    socket.write(data);
  });
}

test('/ names the server in the body and x-server-id', async (t) => {
  const { base } = await withServer(t, 'alpha');
  const res = await request(`${base}/`);
  t.is(res.statusCode, 200);
  t.is(res.headers['x-server-id'], 'alpha');
  t.is(await res.body.text(), 'hello from alpha\n');
});

test('the id defaults to test-server-<port>', async (t) => {
  const { server, base } = await withServer(t);
  t.is(server.id, `test-server-${server.port}`);
  t.is((await request(`${base}/`)).headers['x-server-id'], server.id);
});

test('/large is 4 MiB of the verifiable pattern with Content-Length', async (t) => {
  const { base } = await withServer(t);
  const res = await request(`${base}/large`);
  t.is(res.headers['content-length'], String(DEFAULT_LARGE_BYTES));
  const body = Buffer.from(await res.body.arrayBuffer());
  t.is(firstLargeBodyMismatch(body, DEFAULT_LARGE_BYTES), -1);
});

test('/large?size= is bounded and any size verifies; a corrupted byte is found', async (t) => {
  const { base } = await withServer(t);
  for (const size of [0, 1, 63, 64, 65, 100_001]) {
    const body = Buffer.from(await (await request(`${base}/large?size=${size}`)).body.arrayBuffer());
    t.is(firstLargeBodyMismatch(body, size), -1, `size ${size}`);
  }
  const body = Buffer.from(await (await request(`${base}/large?size=200000`)).body.arrayBuffer());
  body[131_072] ^= 1;
  t.is(firstLargeBodyMismatch(body, 200_000), 131_072);
  t.is(firstLargeBodyMismatch(body.subarray(0, 1000), 200_000), 1000);
  t.is((await request(`${base}/large?size=${2 ** 31}`)).statusCode, 400);
  t.is((await request(`${base}/large?size=abc`)).statusCode, 400);
});

test('HEAD /large sends the length and no body', async (t) => {
  const { server } = await withServer(t);
  const text = await rawExchange(server.port, 'HEAD /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.regex(text, /content-length: 4194304/i);
  t.true(text.endsWith('\r\n\r\n'));
});

test('/bytes/N sends exactly N bytes', async (t) => {
  const { base } = await withServer(t);
  const body = Buffer.from(await (await request(`${base}/bytes/1048577`)).body.arrayBuffer());
  t.is(body.length, 1_048_577);
  t.true(body.every((b) => b === 0x78));
});

test('/chunked is chunked on the wire with known content', async (t) => {
  const { server, base } = await withServer(t);
  const raw = await rawExchange(server.port, 'GET /chunked?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.regex(raw, /transfer-encoding: chunked/i);
  t.false(/content-length/i.test(raw));
  t.is(await (await request(`${base}/chunked?n=7`)).body.text(), chunkedParts(7).join(''));
});

test('/echo reports method, target, raw headers in order and the body', async (t) => {
  const { base } = await withServer(t, 'echoer');
  const res = await request(`${base}/echo/some/path?a=1&b=two`, {
    method: 'PUT',
    headers: ['X-First', '1', 'x-second', 'two', 'X-First', 'again'],
    body: 'héllo',
  });
  const echoed = (await res.body.json()) as Record<string, unknown>;
  t.like(echoed, { id: 'echoer', method: 'PUT', url: '/echo/some/path?a=1&b=two', path: '/echo/some/path', query: { a: '1', b: 'two' }, body: 'héllo', bodyEncoding: 'utf8', bodyLength: 6 });
  const headers = (echoed.headers as [string, string][]).filter(([name]) => name.toLowerCase().startsWith('x-'));
  t.deepEqual(headers, [['X-First', '1'], ['x-second', 'two'], ['X-First', 'again']]);
});

test('/echo base64-encodes a body that is not UTF-8', async (t) => {
  const { base } = await withServer(t);
  const body = Buffer.from([0xff, 0x00, 0xfe]);
  const echoed = (await (await request(`${base}/echo`, { method: 'POST', body })).body.json()) as { body: string; bodyEncoding: string };
  t.is(echoed.bodyEncoding, 'base64');
  t.deepEqual(Buffer.from(echoed.body, 'base64'), body);
});

test('/echo receives a raw chunked request body de-chunked', async (t) => {
  const { server } = await withServer(t);
  const raw = await rawExchange(
    server.port,
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  );
  t.regex(raw, /"body":"hello"/);
});

test('/status/:code and /delay/:ms', async (t) => {
  const { base } = await withServer(t);
  t.is((await request(`${base}/status/503`)).statusCode, 503);
  const noContent = await request(`${base}/status/204`);
  t.is(noContent.statusCode, 204);
  t.is(await noContent.body.text(), '');
  t.is((await request(`${base}/status/99`)).statusCode, 400);
  const delayed = await request(`${base}/delay/20`);
  t.is(await delayed.body.text(), `delayed 20 ms by ${delayed.headers['x-server-id'] as string}\n`);
  t.is((await request(`${base}/delay/60001`)).statusCode, 400);
});

test('an abandoned /delay does not hold the server open', async (t) => {
  const { server, base } = await withServer(t);
  const controller = new AbortController();
  const pending = request(`${base}/delay/60000`, { signal: controller.signal });
  await new Promise((r) => setTimeout(r, 50));
  controller.abort();
  t.truthy(await pending.then(() => undefined, (err: unknown) => err));
  // The close would wait for the minute-long /delay if its timer kept the response
  // alive; it must be done long before that (and before ava's own timeout).
  const outcome = await Promise.race([
    server.close(30_000).then(() => 'closed'),
    new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000).unref()),
  ]);
  t.is(outcome, 'closed');
});

test('/health flips with POST /health/fail and /health/ok', async (t) => {
  const { base } = await withServer(t);
  t.is((await request(`${base}/health`)).statusCode, 200);
  t.is((await request(`${base}/health/fail`)).statusCode, 405);
  t.is((await request(`${base}/health/fail`, { method: 'POST' })).statusCode, 200);
  t.is((await request(`${base}/health`)).statusCode, 503);
  await request(`${base}/health/ok`, { method: 'POST' });
  t.is((await request(`${base}/health`)).statusCode, 200);
});

test('/__requests counts requests by path; POST resets', async (t) => {
  const { base } = await withServer(t);
  await (await request(`${base}/`)).body.text();
  await (await request(`${base}/nope`)).body.text();
  await (await request(`${base}/nope`)).body.text();
  const counts = (await (await request(`${base}/__requests`)).body.json()) as { total: number; paths: Record<string, number> };
  t.is(counts.total, 3);
  t.deepEqual(counts.paths, { '/': 1, '/nope': 2 });
  await request(`${base}/__requests`, { method: 'POST' });
  t.is(((await (await request(`${base}/__requests`)).body.json()) as { total: number }).total, 0);
});

test('unknown paths are 404; /reset and /truncate break the connection', async (t) => {
  const { base } = await withServer(t);
  t.is((await request(`${base}/nope`)).statusCode, 404);
  await t.throwsAsync(request(`${base}/reset`));
  const truncated = await request(`${base}/truncate`);
  await t.throwsAsync(truncated.body.text());
});

test('WebSocket /ws echoes text and binary messages', async (t) => {
  const { server } = await withServer(t);
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
  ws.binaryType = 'arraybuffer';
  const messages: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onopen = () => {
      ws.send('hello');
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send('x'.repeat(70_000));
    };
    ws.onmessage = (event) => {
      messages.push(event.data);
      if (messages.length === 3) resolve();
    };
  });
  t.is(messages[0], 'hello');
  t.deepEqual([...new Uint8Array(messages[1] as ArrayBuffer)], [1, 2, 3]);
  t.is((messages[2] as string).length, 70_000);
  const closed = new Promise<number>((resolve) => {
    ws.onclose = (event) => resolve(event.code);
  });
  ws.close(1000);
  t.is(await closed, 1000);
});

function maskedFrame(opcode: number, payload: Buffer, fin: boolean): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([header, mask, body]);
}

test('WebSocket: handshake accept value, fragmented message, unmasked frame rejected', async (t) => {
  const { server } = await withServer(t);
  // The sample handshake of RFC 6455 §1.3.
  const handshake =
    'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  const fragments = Buffer.concat([
    Buffer.from(handshake),
    maskedFrame(0x1, Buffer.from('frag'), false),
    maskedFrame(0x0, Buffer.from('mented'), true),
  ]);
  const reply = await rawExchange(server.port, fragments, (text) => text.includes('fragmented'));
  t.regex(reply, /^HTTP\/1\.1 101 /);
  t.regex(reply, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  t.true(reply.endsWith('\x81\x0afragmented'));

  const unmasked = Buffer.concat([Buffer.from(handshake), Buffer.from([0x81, 0x02, 0x68, 0x69])]);
  const closed = await rawExchange(server.port, unmasked);
  t.true(closed.includes('\x88'), 'a close frame');
  t.true(closed.includes('\x03\xea'), 'status 1002');
});

test('close() lets an in-flight request finish', async (t) => {
  const server = await startTestServer({ host: '127.0.0.1', port: 0 });
  const pending = request(`http://127.0.0.1:${server.port}/delay/2000`);
  // Close only once the request has arrived (was: after a guessed 50 ms, which a loaded
  // machine overran: the connection was refused as the listener closed).
  for (;;) {
    const counts = (await (await request(`http://127.0.0.1:${server.port}/__requests`)).body.json()) as { paths: Record<string, number> };
    if (counts.paths['/delay/2000'] === 1) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const closing = server.close(10_000);
  const res = await pending;
  t.is(res.statusCode, 200);
  await res.body.text();
  await closing;
});

test('/response-headers sets the requested headers', async (t) => {
  const { server } = await withServer(t);
  const raw = await rawExchange(server.port, 'GET /response-headers?x-a=1&x-a=2&Connection=x-b&x-b=3 HTTP/1.1\r\nHost: x\r\n\r\n', (s) => s.includes('headers set'));
  t.regex(raw, /\r\nx-a: 1\r\nx-a: 2\r\n/);
  t.regex(raw, /\r\nConnection: x-b\r\n/);
  t.regex(raw, /\r\nx-b: 3\r\n/);
});
