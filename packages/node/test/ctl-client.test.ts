// The operator CLI's HTTP client against small fake admin APIs: failover past members it
// cannot reach, retries while there is no leader (one Idempotency-Key for all of them),
// and the exit code each kind of failure gets.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { AdminClient, type ClientDeps } from '../src/ctl/client.js';
import { CtlError, EXIT_REFUSED, EXIT_SERVER_ERROR, EXIT_UNREACHABLE } from '../src/ctl/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function fake(t: ExecutionContext, handler: Handler, server: Server = createServer(), scheme = 'http'): Promise<string> {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

function client(t: ExecutionContext, endpoints: string[], extra: { token?: string; timeoutMs?: number; cacert?: string; attemptLimitMs?: number; deps?: ClientDeps } = {}): AdminClient {
  const c = new AdminClient({ endpoints, token: extra.token, cacert: extra.cacert, timeoutMs: extra.timeoutMs ?? 10_000 }, { attemptLimitMs: extra.attemptLimitMs ?? 3_000, ...extra.deps });
  t.teardown(() => c.close());
  return c;
}

async function ctlError(t: ExecutionContext, work: Promise<unknown>): Promise<CtlError> {
  const err = await t.throwsAsync(work);
  if (!(err instanceof CtlError)) throw new Error(`expected a CtlError, got ${String(err)}`);
  return err;
}

test('an endpoint that refuses connections is skipped; the next one answers and is tried first from then on', async (t) => {
  const seen: string[] = [];
  const good = await fake(t, (req, res) => {
    seen.push(req.url!);
    reply(res, 200, { ok: true });
  });
  const c = client(t, [await closedPort(), good]);
  const first = await c.get<{ ok: boolean }>('/servers');
  t.is(first.endpoint, good);
  t.deepEqual(first.body, { ok: true });
  t.is((await c.get('/settings')).endpoint, good);
  t.deepEqual(seen, ['/servers', '/settings']);
});

test('a member that accepts but never answers is given up after the attempt limit', async (t) => {
  const hung = await fake(t, () => undefined);
  const good = await fake(t, (_req, res) => reply(res, 200, []));
  const c = client(t, [hung, good], { attemptLimitMs: 300 });
  t.is((await c.get('/servers')).endpoint, good);
});

test('503 NOT_LEADER: retried (on the same and other members) with one Idempotency-Key until a leader answers', async (t) => {
  const keys: (string | undefined)[] = [];
  let calls = 0;
  const flaky = await fake(t, (req, res) => {
    keys.push(req.headers['idempotency-key'] as string | undefined);
    if (++calls < 4) reply(res, 503, { error: { code: 'NOT_LEADER', message: 'no leader yet' } }, { 'retry-after': '0' });
    else reply(res, 200, { results: [] }, { 'x-weldr-index': '9' });
  });
  const c = client(t, [await closedPort(), flaky]);
  const answer = await c.call('POST', '/servers/batch', { body: { commands: [] } });
  t.is(answer.status, 200);
  t.is(keys.length, 4);
  t.true(keys.every((k) => k !== undefined && k === keys[0]), JSON.stringify(keys));
});

test('no leader until --timeout: exit 5 with what to check next', async (t) => {
  let calls = 0;
  const noLeader = await fake(t, (_req, res) => {
    calls++;
    reply(res, 503, { error: { code: 'NO_QUORUM', message: 'cannot commit' } }, { 'retry-after': '1' });
  });
  // A clock that moves only while the client sleeps: it waits Retry-After (1 s) between
  // rounds, so a 10 s --timeout allows 10 rounds, however slow the machine.
  let now = 0;
  const deps: ClientDeps = { now: () => now, sleep: async (ms) => void (now += ms) };
  const err = await ctlError(t, client(t, [noLeader], { deps }).call('POST', '/servers/batch', { body: {} }));
  t.is(calls, 10);
  t.is(err.exitCode, EXIT_SERVER_ERROR);
  t.regex(err.message, /503 NO_QUORUM: cannot commit/);
  t.regex(err.hint ?? '', /weldr cluster status/);
});

test('nobody reachable: exit 3, every endpoint with its reason, and what to do', async (t) => {
  const a = await closedPort();
  const b = await closedPort();
  const err = await ctlError(t, client(t, [a, b]).get('/servers'));
  t.is(err.exitCode, EXIT_UNREACHABLE);
  t.regex(err.message, new RegExp(`${a}: connection refused; ${b}: connection refused`));
  t.regex(err.hint ?? '', /--endpoints/);
});

test('something that is not a weldr admin API (the proxy port) counts as unreachable, with a hint', async (t) => {
  const notAdmin = await fake(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello from origin-1');
  });
  const err = await ctlError(t, client(t, [notAdmin]).get('/servers'));
  t.is(err.exitCode, EXIT_UNREACHABLE);
  t.regex(err.message, /not a weldr admin API \(the proxy port\?/);
});

test('refusals are exit 4 and keep the API error; 401 says how to pass a token; the token is sent as Bearer', async (t) => {
  const auth: (string | undefined)[] = [];
  const api = await fake(t, (req, res) => {
    auth.push(req.headers.authorization);
    if (req.url === '/servers/batch') reply(res, 404, { error: { code: 'NOT_FOUND', message: 'commands[0]: server 10.0.0.9:80 is not in the pool', field: 'commands[0]' } });
    else reply(res, 401, { error: { code: 'UNAUTHORIZED', message: 'a token is required' } });
  });
  const notFound = await ctlError(t, client(t, [api], { token: 's3cret' }).call('POST', '/servers/batch', { body: {} }));
  t.is(notFound.exitCode, EXIT_REFUSED);
  t.is(notFound.status, 404);
  t.like(notFound.body, { code: 'NOT_FOUND', field: 'commands[0]' });
  t.is(auth[0], 'Bearer s3cret');
  const unauthorized = await ctlError(t, client(t, [api]).call('PATCH', '/settings', { body: {} }));
  t.is(unauthorized.exitCode, EXIT_REFUSED);
  t.regex(unauthorized.hint ?? '', /--token TOKEN or set WELDR_ADMIN_TOKEN/);
});

test('504 on a write: exit 5, and the hint says the change may still be applied', async (t) => {
  const slow = await fake(t, (_req, res) => reply(res, 504, { error: { code: 'TIMEOUT', message: 'the write was not confirmed in time' } }));
  const err = await ctlError(t, client(t, [slow]).call('DELETE', '/cluster/members/n3'));
  t.is(err.exitCode, EXIT_SERVER_ERROR);
  t.regex(err.hint ?? '', /may still be applied/);
});

// A throw-away certificate for 127.0.0.1, made with openssl when it is installed.
const tlsDir = mkdtempSync(join(tmpdir(), 'weldr-ctl-tls-'));
test.after.always(() => rmSync(tlsDir, { recursive: true, force: true }));
const haveCert = ((): boolean => {
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(tlsDir, 'key.pem'), '-out', join(tlsDir, 'cert.pem')], { stdio: 'ignore' });
    return true;
  } catch {
    process.stderr.write('ctl-client: the https test is skipped: openssl is not available to make a test certificate\n');
    return false;
  }
})();

(haveCert ? test : test.skip)('https endpoints: verified against --cacert; without it, a TLS error that says to pass it', async (t) => {
  const dir = tlsDir;
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
  const url = await fake(t, (_req, res) => reply(res, 200, { tls: true }), server as unknown as Server, 'https');
  t.true(url.startsWith('https://'));
  t.deepEqual((await client(t, [url], { cacert: join(dir, 'cert.pem') }).get('/cluster')).body, { tls: true });
  const err = await ctlError(t, client(t, [url]).get('/cluster'));
  t.is(err.exitCode, EXIT_UNREACHABLE);
  t.regex(err.message, /TLS failed/);
  t.regex(err.hint ?? '', /--cacert/);
  // http:// to the https listener: the connection closes, and the message says why that may be.
  const plain = await ctlError(t, client(t, [url.replace('https:', 'http:')]).get('/cluster'));
  t.is(plain.exitCode, EXIT_UNREACHABLE);
});
