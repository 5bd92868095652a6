import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import test from 'ava';
import { answerClientError } from '../src/index.js';

/** Sends raw bytes to a server using answerClientError and returns everything it answers. */
async function rawExchange(t: { teardown(fn: () => void): void }, bytes: string, maxHeaderSize = 1024): Promise<string> {
  const server = createServer({ maxHeaderSize }, (_req, res) => res.end('ok'));
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.write(bytes);
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  await new Promise((resolve) => socket.on('close', resolve));
  return answer;
}

function parse(answer: string): { status: string; headers: string; body: unknown } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: head.split('\r\n')[0] ?? '', headers: head, body: JSON.parse(body) };
}

test('a request line over the header limit is 431 in the error shape, not a bare status line', async (t) => {
  const r = parse(await rawExchange(t, `GET /${'a'.repeat(4000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
  t.is(r.status, 'HTTP/1.1 431 Request Header Fields Too Large');
  t.regex(r.headers, /Content-Type: application\/json; charset=utf-8/);
  t.deepEqual(r.body, { error: { code: 'HEADERS_TOO_LARGE', message: 'the request line or headers exceed the size limit' } });
});

test('a malformed request is 400 BAD_REQUEST in the error shape', async (t) => {
  const r = parse(await rawExchange(t, 'BREW /servers HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.is(r.status, 'HTTP/1.1 400 Bad Request');
  t.like(r.body, { error: { code: 'BAD_REQUEST' } });
});
