// Issue 9 item 4: TLS termination on the proxy listener — SNI, modern protocol and
// cipher defaults, ALPN http/1.1, reload without dropping connections,
// X-Forwarded-Proto: https — and the proxy's own HTTP/1.1 rules over TLS.
import net from 'node:net';
import tls, { type ConnectionOptions, type TLSSocket } from 'node:tls';
import test from 'ava';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { hasOpenssl, makeCa, type TestCa, type TestCert } from '../src/testing/index.js';
import { record, snapshot, startOrigin, startProxy, until, type Origin, type Running } from './helpers.js';

if (!hasOpenssl()) {
  test.serial('TLS tests need the openssl CLI', (t) => {
    t.log('skipped: openssl is not installed');
    t.pass();
  });
} else {
  let ca: TestCa;
  let def: TestCert;
  let a: TestCert;
  let wild: TestCert;
  let origin: Origin;
  let p: Running;
  let tlsPort: number;
  const metrics = new Registry();

  test.before(async () => {
    ca = makeCa();
    def = ca.issue(['default.test', 'localhost']);
    a = ca.issue(['a.example.test']);
    wild = ca.issue(['*.wild.test']);
    origin = await startOrigin((req, res) => {
      res.setHeader('x-seen-proto', String(req.headers['x-forwarded-proto']));
      res.end(`origin:${req.method} ${req.url}`);
    });
    p = await startProxy(snapshot([record(origin.port)]), { tls: { certificates: [def, a, wild] }, limits: { maxPipelineDepth: 4 }, metrics });
    tlsPort = (await p.proxy.listenTls(0, '127.0.0.1')).port;
  });

  test.after.always(async () => {
    await p?.proxy.close({ deadlineMs: 100 });
    await origin?.close();
    ca?.remove();
  });

  interface TlsReply {
    text: string;
    peerCn: string | undefined;
    alpn: string | false | null;
    protocol: string | null;
    cipher: string;
    closed: boolean;
  }

  /** Connect over TLS, write `data`, collect until `done` or the server closes. */
  function tlsExchange(data: string, options: ConnectionOptions = {}, done: (text: string) => boolean = () => false, ms = 3_000): Promise<TlsReply> {
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: ca.ca, servername: 'default.test', ...options }, () => socket.write(data));
      let text = '';
      let settled = false;
      const finish = (closed: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const cert = socket.getPeerCertificate();
        resolve({ text, peerCn: cert?.subject?.CN as string | undefined, alpn: socket.alpnProtocol, protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? '', closed });
        socket.destroy();
      };
      const timer = setTimeout(() => finish(false), ms);
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (done(text)) finish(false);
      });
      socket.on('end', () => finish(true));
      socket.on('close', () => finish(true));
      socket.on('error', (err) => {
        if (text === '' && !settled) {
          settled = true;
          clearTimeout(timer);
          reject(err);
        } else finish(true);
      });
    });
  }

  const oneResponse = (text: string): boolean => /\r\n\r\n/.test(text) && text.endsWith(text.includes('origin:') ? text.slice(text.lastIndexOf('origin:')) : '\u0000');
  const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

  test.serial('a request over TLS is proxied and the origin sees X-Forwarded-Proto: https; the plain listener still says http', async (t) => {
    const r = await tlsExchange('GET /hello HTTP/1.1\r\nHost: default.test\r\nX-Forwarded-Proto: http\r\n\r\n', {}, (s) => s.includes('origin:GET /hello'));
    t.is(statuses(r.text)[0], 200);
    t.regex(r.text, /x-seen-proto: https/);
    t.is(r.alpn, false, 'no ALPN offered: none selected');
    const plain = await request(`http://127.0.0.1:${p.port}/plain`);
    t.is(plain.headers['x-seen-proto'], 'http');
    await plain.body.text();
  });

  test.serial('TLS 1.2 and 1.3 only; TLS 1.2 with AEAD ciphers only', async (t) => {
    const v13 = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', {}, oneResponse);
    t.is(v13.protocol, 'TLSv1.3');
    const v12 = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { maxVersion: 'TLSv1.2' }, oneResponse);
    t.is(v12.protocol, 'TLSv1.2');
    t.regex(v12.cipher, /GCM|CHACHA20/);
    await t.throwsAsync(tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }));
    // A CBC suite with a SHA-1 MAC is not offered by the proxy.
    await t.throwsAsync(tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA' }));
    await until(() => p.proxy.stats().limits.tlsHandshakeFailed >= 2);
    t.regex(await metrics.metrics(), /weldr_proxy_tls_handshake_errors_total [1-9]/);
  });

  test.serial('ALPN: http/1.1 is selected; a client that offers only h2 is refused in the handshake', async (t) => {
    const both = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { ALPNProtocols: ['h2', 'http/1.1'] }, oneResponse);
    t.is(both.alpn, 'http/1.1');
    t.is(statuses(both.text)[0], 200);
    await t.throwsAsync(tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { ALPNProtocols: ['h2'] }));
  });

  test.serial('SNI picks the certificate by the names it carries: exact, wildcard, else the first', async (t) => {
    t.is((await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'a.example.test' }, oneResponse)).peerCn, 'a.example.test');
    t.is((await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'A.Example.Test' }, oneResponse)).peerCn, 'a.example.test');
    t.is((await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'x.wild.test' }, oneResponse)).peerCn, '*.wild.test');
    // A wildcard covers one label only.
    const deep = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'y.x.wild.test', checkServerIdentity: () => undefined }, oneResponse);
    t.is(deep.peerCn, 'default.test');
    const unknown = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'nobody.test', checkServerIdentity: () => undefined }, oneResponse);
    t.is(unknown.peerCn, 'default.test');
    // No SNI at all (an IP address): the default certificate, which has 127.0.0.1 as an IP SAN.
    const none = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: '' }, oneResponse);
    t.is(none.peerCn, 'default.test');
  });

  test.serial('smuggling shapes are refused over TLS as in cleartext: 400, nothing forwarded, connection closed', async (t) => {
    const before = origin.seen.length;
    for (const raw of [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX-Pad: a\r\n folded\r\n\r\n',
    ]) {
      const r = await tlsExchange(raw);
      t.is(statuses(r.text)[0], 400, r.text.slice(0, 120));
      t.true(r.closed);
    }
    t.is(origin.seen.length, before);
  });

  test.serial('pipelining over TLS: in order, one at a time, 429 beyond the depth', async (t) => {
    const reqs = Array.from({ length: 6 }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
    const r = await tlsExchange(reqs, {}, () => false);
    t.deepEqual(statuses(r.text), [200, 200, 200, 200, 429]);
    t.deepEqual([...r.text.matchAll(/origin:GET (\/p\d)/g)].map((m) => m[1]), ['/p0', '/p1', '/p2', '/p3']);
    t.true(r.closed);
  });

  test.serial('a client that half-closes over TLS (close_notify and FIN right after its request) still gets the response', async (t) => {
    // allowHalfOpen is a net.Socket option tls.connect passes on (not in its typings).
    const socket = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: ca.ca, servername: 'default.test', allowHalfOpen: true } as ConnectionOptions);
    await new Promise((r) => socket.once('secureConnect', r));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const ended = new Promise((r) => socket.once('end', r));
    socket.end('GET /half HTTP/1.1\r\nHost: a\r\n\r\n');
    await ended;
    socket.destroy();
    t.is(statuses(text)[0], 200);
    t.true(text.endsWith('origin:GET /half'));
  });

  test.serial('a 4 MiB upload and download through TLS arrive intact', async (t) => {
    const agent = new Agent({ connect: { ca: ca.ca, servername: 'default.test' } });
    t.teardown(() => agent.close());
    const body = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const echo = await startOrigin();
    echo.server.removeAllListeners('request');
    echo.server.on('request', (req, res) => req.pipe(res));
    p.proxy.update(snapshot([record(echo.port)]));
    t.teardown(async () => {
      p.proxy.update(snapshot([record(origin.port)]));
      await echo.close();
    });
    const res = await request(`https://127.0.0.1:${tlsPort}/echo`, { method: 'POST', body, dispatcher: agent });
    const got = Buffer.from(await res.body.arrayBuffer());
    t.is(res.statusCode, 200);
    t.true(got.equals(body));
  });

  test.serial('reload: new handshakes get the new certificate, an open connection keeps working, a bad certificate changes nothing', async (t) => {
    // A keep-alive connection made before the reload.
    const socket = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: ca.ca, servername: 'default.test' });
    await new Promise((r) => socket.once('secureConnect', r));
    const serialBefore = socket.getPeerCertificate().serialNumber;
    const ask = (path: string): Promise<string> =>
      new Promise((resolve) => {
        let text = '';
        const onData = (c: Buffer): void => {
          text += c.toString('latin1');
          if (text.includes(`origin:GET ${path}`)) {
            socket.off('data', onData);
            resolve(text);
          }
        };
        socket.on('data', onData);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
      });
    t.regex(await ask('/before'), /^HTTP\/1\.1 200/);
    const renewed = ca.issue(['default.test', 'localhost']);
    p.proxy.setTls({ certificates: [renewed, a, wild] });
    const fresh = await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', {}, oneResponse);
    t.not(fresh.peerCn, undefined);
    const freshSerial = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: ca.ca, servername: 'default.test' }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });
    t.not(freshSerial, serialBefore, 'a new handshake sees the renewed certificate');
    // SNI contexts were swapped too (the same names, new objects) and still work.
    t.is((await tlsExchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n', { servername: 'a.example.test' }, oneResponse)).peerCn, 'a.example.test');
    // The connection made before the reload was not dropped.
    t.regex(await ask('/after'), /^HTTP\/1\.1 200/);
    socket.destroy();
    // A broken key: refused, the certificates in use stay.
    t.throws(() => p.proxy.setTls({ certificates: [{ cert: renewed.cert, key: a.key }] }));
    t.throws(() => p.proxy.setTls({ certificates: [] }));
    const still = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: ca.ca, servername: 'default.test' }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });
    t.is(still, freshSerial);
  });

  test.serial('a TCP connection that never completes its handshake is closed after clientHeadersMs', async (t) => {
    const q = await startProxy(snapshot([record(origin.port)]), { tls: { certificates: [def] }, timeouts: { clientHeadersMs: 300 } });
    t.teardown(() => q.proxy.close({ deadlineMs: 100 }));
    const port = (await q.proxy.listenTls(0, '127.0.0.1')).port;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('close', r));
    t.pass('closed by the server');
    await until(() => q.proxy.stats().limits.tlsHandshakeFailed === 1);
    await until(() => q.proxy.stats().connections === 0);
  });

  test.serial('over TLS too: an idle keep-alive connection is closed after clientIdleMs, a trickled body gets 408', async (t) => {
    const q = await startProxy(snapshot([record(origin.port)]), {
      tls: { certificates: [def] },
      timeouts: { clientIdleMs: 300 },
      limits: { clientBodyMinRate: 1000, clientBodyRateGraceMs: 300 },
    });
    t.teardown(() => q.proxy.close({ deadlineMs: 100 }));
    const port = (await q.proxy.listenTls(0, '127.0.0.1')).port;
    const idle = tls.connect({ port, host: '127.0.0.1', ca: ca.ca, servername: 'default.test' });
    let text = '';
    idle.on('data', (c: Buffer) => (text += c.toString('latin1')));
    idle.write('GET /idle HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((r) => idle.once('close', r));
    t.is(statuses(text)[0], 200, 'answered, then closed for idleness');
    const slow = tls.connect({ port, host: '127.0.0.1', ca: ca.ca, servername: 'default.test' });
    let reply = '';
    slow.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    slow.on('error', () => undefined);
    slow.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
    const trickle = setInterval(() => slow.write('x'), 100);
    t.teardown(() => clearInterval(trickle));
    await new Promise((r) => slow.once('close', r));
    clearInterval(trickle);
    t.is(statuses(reply)[0], 408);
    t.is(q.proxy.stats().limits.bodyRateRefused, 1);
  });

  test.serial('connection limits count TLS connections before their handshake', async (t) => {
    const q = await startProxy(snapshot([record(origin.port)]), { tls: { certificates: [def] }, limits: { maxConnectionsPerSource: 1 } });
    t.teardown(() => q.proxy.close({ deadlineMs: 100 }));
    const port = (await q.proxy.listenTls(0, '127.0.0.1')).port;
    const first = net.connect(port, '127.0.0.1');
    first.on('error', () => undefined);
    t.teardown(() => first.destroy());
    await new Promise((r) => first.once('connect', r));
    await until(() => q.proxy.stats().connections === 1);
    // The plain listener shares the limit: the same address is now refused there too.
    const second = net.connect(q.port, '127.0.0.1');
    second.on('error', () => undefined);
    await new Promise((r) => second.once('close', r));
    t.is(q.proxy.stats().limits.perSourceRefused, 1);
  });
}
