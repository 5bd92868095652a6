import test from 'ava';
import { connectionTokens, latin1, requestHeaders, responseHeaders, serializeHead } from '../src/headers.js';

const info = { host: 'example.test', clientIp: '192.0.2.7', via: '1.1 weldr', proto: 'http' as const };
const pairs = (raw: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};

test('request: hop-by-hop fields and fields named in Connection are removed', (t) => {
  const out = requestHeaders(
    [
      'Host', 'client.test',
      'Connection', 'keep-alive, X-Secret, Upgrade',
      'Keep-Alive', 'timeout=5',
      'X-Secret', 'hunter2',
      'TE', 'trailers',
      'Trailer', 'x',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'websocket',
      'Proxy-Connection', 'keep-alive',
      'Proxy-Authorization', 'Basic abc',
      'Expect', '100-continue',
      'Accept', '*/*',
      'Content-Length', '5',
    ],
    info,
  );
  t.deepEqual(pairs(out), [
    ['Accept', '*/*'],
    ['Content-Length', '5'],
    ['host', 'example.test'],
    ['x-forwarded-for', '192.0.2.7'],
    ['x-forwarded-proto', 'http'],
    ['x-forwarded-host', 'example.test'],
    ['via', '1.1 weldr'],
  ]);
});

test('request: X-Forwarded-For is appended to, -Proto and -Host are replaced, Via added', (t) => {
  const out = pairs(
    requestHeaders(
      [
        'X-Forwarded-For', '10.0.0.1',
        'x-forwarded-for', '10.0.0.2',
        'X-Forwarded-Proto', 'https',
        'X-Forwarded-Host', 'spoofed',
        'Via', '1.0 fred',
      ],
      info,
    ),
  );
  t.deepEqual(out.filter(([n]) => n.toLowerCase() === 'x-forwarded-for'), [['x-forwarded-for', '10.0.0.1, 10.0.0.2, 192.0.2.7']]);
  t.deepEqual(out.filter(([n]) => n === 'x-forwarded-proto'), [['x-forwarded-proto', 'http']]);
  t.deepEqual(out.filter(([n]) => n === 'x-forwarded-host'), [['x-forwarded-host', 'example.test']]);
  t.false(out.some(([n]) => n === 'X-Forwarded-Proto' || n === 'X-Forwarded-Host'));
  // Over TLS the scheme is https, whatever the client claimed.
  const overTls = pairs(requestHeaders(['X-Forwarded-Proto', 'http'], { ...info, proto: 'https' }));
  t.deepEqual(overTls.filter(([n]) => n.toLowerCase() === 'x-forwarded-proto'), [['x-forwarded-proto', 'https']]);
  // Via is a list: the client's entry stays, ours is added.
  t.deepEqual(out.filter(([n]) => n.toLowerCase() === 'via'), [['Via', '1.0 fred'], ['via', '1.1 weldr']]);
});

test('request: an X-Forwarded-For the client named in Connection is hop-by-hop (RFC 9110 §7.6.1): dropped, the origin sees only the client address', (t) => {
  const out = pairs(requestHeaders(['Connection', 'keep-alive, X-Forwarded-For', 'X-Forwarded-For', '6.6.6.6'], info));
  t.deepEqual(out.filter(([n]) => n.toLowerCase() === 'x-forwarded-for'), [['x-forwarded-for', '192.0.2.7']]);
  t.false(out.some(([n]) => n.toLowerCase() === 'connection'));
});

test('request: Max-Forwards is replaced only when a decremented value is given', (t) => {
  t.deepEqual(pairs(requestHeaders(['Max-Forwards', '5'], info)).filter(([n]) => /max-forwards/i.test(n)), [['Max-Forwards', '5']]);
  t.deepEqual(
    pairs(requestHeaders(['Max-Forwards', '5'], { ...info, maxForwards: '4' })).filter(([n]) => /max-forwards/i.test(n)),
    [['max-forwards', '4']],
  );
});

const buf = (raw: string[]): Buffer[] => raw.map((s) => Buffer.from(s, 'latin1'));

test('response: hop-by-hop removed, Connection-named removed, end-to-end kept, Via added', (t) => {
  const out = responseHeaders(
    buf([
      'Content-Type', 'text/plain',
      'Connection', 'close, X-Internal',
      'X-Internal', '1',
      'Keep-Alive', 'timeout=4',
      'Transfer-Encoding', 'chunked',
      'Trailer', 'X-Checksum',
      'Upgrade', 'h2c',
      'Set-Cookie', 'a=1',
      'Set-Cookie', 'b=2',
      'Content-Length', '3',
    ]),
    '1.1 weldr',
  );
  t.deepEqual(pairs(out), [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['Content-Length', '3'],
    ['via', '1.1 weldr'],
  ]);
});

test('response: a 101 keeps Upgrade and restores Connection: upgrade', (t) => {
  const out = pairs(responseHeaders(buf(['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Accept', 'x']), '1.1 weldr', true));
  t.deepEqual(out, [
    ['Upgrade', 'websocket'],
    ['Sec-WebSocket-Accept', 'x'],
    ['connection', 'upgrade'],
    ['via', '1.1 weldr'],
  ]);
});

test('connectionTokens ignores the usual options and lower-cases the rest', (t) => {
  t.is(connectionTokens(['keep-alive']), null);
  t.is(connectionTokens(['close']), null);
  t.deepEqual(connectionTokens(['Keep-Alive, X-Foo , ,x-bar']), ['x-foo', 'x-bar']);
});

test('serializeHead', (t) => {
  t.is(serializeHead(101, 'Switching Protocols', ['a', '1']), 'HTTP/1.1 101 Switching Protocols\r\na: 1\r\n\r\n');
});

test('latin1: cached strings always equal the bytes they stand for', (t) => {
  // Many short values over a small alphabet, so slots collide and entries are replaced.
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let k = 0; k < 20_000; k++) {
    const len = rnd(70);
    const buf = Buffer.alloc(len);
    for (let i = 0; i < len; i++) buf[i] = rnd(4) === 0 ? 0x80 + rnd(128) : 0x41 + rnd(3);
    if (latin1(buf) !== buf.toString('latin1')) {
      t.fail(`mismatch for ${buf.toString('hex')}`);
      return;
    }
  }
  t.is(latin1(Buffer.from('Content-Length')), 'Content-Length');
  t.is(latin1(Buffer.alloc(0)), '');
});

test('response: Proxy-Authenticate and Proxy-Authorization are hop-by-hop; WWW-Authenticate is not', (t) => {
  const out = pairs(
    responseHeaders(
      buf(['Proxy-Authenticate', 'Basic realm="proxy"', 'proxy-authorization', 'Basic abc', 'WWW-Authenticate', 'Basic realm="site"', 'Content-Length', '0']),
      '1.1 weldr',
    ),
  );
  t.deepEqual(out, [
    ['WWW-Authenticate', 'Basic realm="site"'],
    ['Content-Length', '0'],
    ['via', '1.1 weldr'],
  ]);
  // And a client's Proxy-Authenticate is not forwarded to the origin either.
  t.false(pairs(requestHeaders(['PROXY-AUTHENTICATE', 'x', 'Accept', '*/*'], info)).some(([n]) => n.toLowerCase() === 'proxy-authenticate'));
});
