// Origins over HTTPS (originTls): the certificate is always verified — against the
// given CA (or the system's roots) and the origin's IP address or a configured name.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { hasOpenssl, makeCa, type TestCa } from '../src/testing/index.js';
import type { OriginTlsOptions } from '../src/index.js';
import { record, snapshot, startProxy } from './helpers.js';

if (!hasOpenssl()) {
  test('origin TLS tests need the openssl CLI', (t) => {
    t.log('skipped: openssl is not installed');
    t.pass();
  });
} else {
  let ca: TestCa;
  let port: number;
  let server: https.Server;
  const seen: string[] = [];

  test.before(async () => {
    ca = makeCa();
    const cert = ca.issue(['origin.test']); // also carries IP 127.0.0.1
    server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      seen.push(`${req.url} ${String(req.headers['x-forwarded-proto'])}`);
      res.end(`tls origin:${req.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  test.after.always(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    ca?.remove();
  });

  async function through(originTls: OriginTlsOptions | undefined, path: string): Promise<{ status: number; code: unknown; body: string }> {
    const p = await startProxy(snapshot([record(port)]), originTls === undefined ? {} : { originTls });
    try {
      const res = await request(`http://127.0.0.1:${p.port}${path}`);
      return { status: res.statusCode, code: res.headers['x-weldr-error'], body: await res.body.text() };
    } finally {
      await p.proxy.close({ deadlineMs: 100 });
    }
  }

  test.serial('verified against the CA and the origin\'s IP address: proxied', async (t) => {
    const r = await through({ ca: ca.ca }, '/by-ip');
    t.is(r.status, 200);
    t.is(r.body, 'tls origin:/by-ip');
    t.true(seen.includes('/by-ip http'), 'X-Forwarded-Proto says what the client used, not the origin hop');
  });

  test.serial('verified against a configured name: proxied; a name the certificate does not carry: 502, nothing sent', async (t) => {
    t.is((await through({ ca: ca.ca, servername: 'origin.test' }, '/by-name')).status, 200);
    const wrong = await through({ ca: ca.ca, servername: 'other.test' }, '/wrong-name');
    t.is(wrong.status, 502);
    t.is(wrong.code, 'ORIGIN_REFUSED');
    t.false(seen.some((s) => s.startsWith('/wrong-name')));
  });

  test.serial('an origin certificate from a CA that is not trusted (system roots): 502, nothing sent', async (t) => {
    const r = await through({}, '/untrusted');
    t.is(r.status, 502);
    t.false(seen.some((s) => s.startsWith('/untrusted')));
  });

  test.serial('without originTls the proxy speaks cleartext: an HTTPS origin answers it with an error', async (t) => {
    const r = await through(undefined, '/cleartext');
    t.true(r.status >= 400);
    t.false(seen.some((s) => s.startsWith('/cleartext')));
  });
}
