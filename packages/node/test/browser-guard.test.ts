import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { browserGuard, browserRefusal, type BrowserGuardOptions } from '../src/runtime/browser-guard.js';

const open: BrowserGuardOptions = { authenticated: false, scheme: 'http', openPaths: new Set(['/health', '/ready']) };
const withToken: BrowserGuardOptions = { ...open, authenticated: true };

function req(method: string, headers: Record<string, string>, url = '/servers'): Pick<IncomingMessage, 'method' | 'url' | 'headers'> {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  return { method, url, headers: lower };
}

test('command-line clients (no Origin, no Sec-Fetch-Site) pass, whatever the method', (t) => {
  for (const method of ['GET', 'POST', 'PATCH', 'DELETE', 'PUT']) {
    t.is(browserRefusal(req(method, { host: '127.0.0.1:8687' }), open), undefined, method);
  }
  t.is(browserRefusal(req('POST', {}), open), undefined, 'no Host at all (HTTP/1.0): not a browser');
});

test('cross-site writes are refused (403 CROSS_SITE_REQUEST): Sec-Fetch-Site other than same-origin/none, or a foreign Origin', (t) => {
  const host = { host: '127.0.0.1:8687' };
  for (const [headers, why] of [
    [{ 'sec-fetch-site': 'cross-site' }, 'cross-site'],
    [{ 'sec-fetch-site': 'same-site' }, 'same-site: another port of the same host is another origin'],
    [{ origin: 'http://evil.example' }, 'another origin'],
    [{ origin: 'null' }, 'an opaque origin (sandboxed frame, file:)'],
    [{ origin: 'http://127.0.0.1:8080' }, 'the same address, another port'],
    [{ origin: 'https://127.0.0.1:8687' }, 'another scheme'],
    [{ origin: 'not a url' }, 'garbage'],
  ] as const) {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const r = browserRefusal(req(method, { ...host, ...headers }), open);
      t.is(r?.status, 403, `${why} ${method}`);
      t.is(r?.code, 'CROSS_SITE_REQUEST', why);
    }
    // Also with a token: the token is the page's to lack, but the check costs nothing.
    t.is(browserRefusal(req('POST', { ...host, ...headers }), withToken)?.code, 'CROSS_SITE_REQUEST', `${why} (token)`);
    // A read is not a forgery: the page cannot read the answer.
    t.is(browserRefusal(req('GET', { ...host, ...headers }), open), undefined, `${why} GET`);
  }
});

test("the API's own origin (the status page) and typed-in requests may write", (t) => {
  t.is(browserRefusal(req('POST', { host: '127.0.0.1:8687', origin: 'http://127.0.0.1:8687', 'sec-fetch-site': 'same-origin' }), open), undefined);
  t.is(browserRefusal(req('POST', { host: 'LOCALHOST:8687', origin: 'http://localhost:8687' }), open), undefined, 'host names compare without case');
  t.is(browserRefusal(req('POST', { host: '[::1]:8687', origin: 'http://[::1]:8687' }), open), undefined);
  t.is(browserRefusal(req('POST', { host: 'localhost:80', origin: 'http://localhost' }), open), undefined, 'the default port may be left out');
  t.is(browserRefusal(req('POST', { host: '127.0.0.1:8687', 'sec-fetch-site': 'none' }), open), undefined);
  const tls = { ...withToken, scheme: 'https' as const };
  t.is(browserRefusal(req('POST', { host: 'admin.example:8687', origin: 'https://admin.example:8687' }), tls), undefined);
  t.is(browserRefusal(req('POST', { host: 'admin.example:8687', origin: 'http://admin.example:8687' }), tls)?.code, 'CROSS_SITE_REQUEST');
});

test('without a token, a Host that is not an address or localhost is refused (421 MISDIRECTED_REQUEST: DNS rebinding), reads too; probes answer any Host', (t) => {
  for (const host of ['127.0.0.1:8687', '127.0.0.1', '[::1]:8687', '[::1]', 'localhost:8687', 'localhost', 'LocalHost.:8687', 'weldr.localhost:8687', '10.0.0.5:8687', '0.0.0.0:8687']) {
    t.is(browserRefusal(req('GET', { host }), open), undefined, host);
  }
  for (const host of ['evil.example:8687', 'evil.example', 'localhost.evil.example', '127.0.0.1.nip.io:8687', '[::1', '[::1]x', '127.0.0.1:80a', 'a:b:c', '']) {
    for (const method of ['GET', 'POST', 'DELETE']) {
      const r = browserRefusal(req(method, { host }), open);
      t.is(r?.status, 421, `${host} ${method}`);
      t.is(r?.code, 'MISDIRECTED_REQUEST');
    }
    t.is(browserRefusal(req('GET', { host }, '/health'), open), undefined, `${host}: /health is open`);
    t.is(browserRefusal(req('GET', { host }, '/ready?x=1'), open), undefined, `${host}: /ready is open`);
    t.is(browserRefusal(req('GET', { host }), withToken), undefined, `${host}: any name with a token`);
    t.is(browserRefusal(req('GET', { host }), { ...open, scheme: 'https' }), undefined, `${host}: any name over HTTPS (a rebound name fails the certificate)`);
  }
});

test('browserGuard answers a refusal with the JSON error, closes the connection, does not call the handler, and logs at most one line per 10 s with the count', async (t) => {
  let now = 0;
  const lines: object[] = [];
  let handled = 0;
  const server: Server = createServer(
    browserGuard(
      (_req, res) => {
        handled++;
        res.end('ok');
      },
      { ...open, log: { warn: (o) => lines.push(o) }, now: () => now },
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const send = (headers: Record<string, string>): Promise<{ status: number; body: string; connection: string | undefined }> =>
    new Promise((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port, method: 'POST', path: '/servers', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
      });
      r.on('error', reject);
      r.end('{"ip":"127.0.0.9","port":80}');
    });
  const refused = await send({ origin: 'http://evil.example' });
  t.is(refused.status, 403);
  t.is(JSON.parse(refused.body).error.code, 'CROSS_SITE_REQUEST');
  t.is(refused.connection, 'close');
  t.is(handled, 0);
  t.is((await send({ host: 'evil.example' })).status, 421);
  t.is((await send({ 'sec-fetch-site': 'cross-site' })).status, 403);
  t.is(lines.length, 1, 'one line for the first refusal, the next two wait');
  now = 10_000;
  t.is((await send({ origin: 'null' })).status, 403);
  t.is(lines.length, 2);
  t.like(lines[1], { event: 'admin_browser_refused', code: 'CROSS_SITE_REQUEST', refused: 3 });
  const ok = await send({});
  t.is(ok.status, 200);
  t.is(handled, 1);
});
