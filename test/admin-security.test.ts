// The admin listener, closed (issue 9): connection limits with /health answering,
// HTTPS with certificates re-read on SIGHUP and on file change, reads behind the token.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import test from 'ava';
import { Agent, request } from 'undici';
import { issueCertificate } from '@weldr/cluster';
import { startCluster } from './helpers/cluster.js';
import { makeTempDir, startNode } from './helpers/node.js';
import { runWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

async function metric(url: string, name: string, dispatcher?: Agent): Promise<number> {
  const r = await request(`${url}/metrics`, dispatcher === undefined ? {} : { dispatcher });
  const text = await r.body.text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Opens a connection from `localAddress`; resolves whether the node kept it open for a moment. */
async function idle(port: number, localAddress: string): Promise<{ socket: net.Socket; kept: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  socket.resume(); // read (and drop) a refusal's answer, so its end is seen
  await new Promise((r) => socket.once('connect', r));
  const kept = await new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(false));
    // The node closes a refused connection at once; a kept one sees no close.
    setTimeout(() => resolve(!socket.destroyed), 500);
  });
  return { socket, kept };
}

test('admin connection limits: per source and in total; refused connections are answered 503 and closed, and counted; /health answers others', async (t) => {
  const node = await startNode(t, { store: 'memory', args: ['--admin-max-connections', '12', '--admin-max-connections-per-source', '4'] });
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const fromOne = await Promise.all([1, 2, 3, 4, 5, 6].map(() => idle(node.adminPort, '127.0.3.1')));
  sockets.push(...fromOne.map((c) => c.socket));
  t.is(fromOne.filter((c) => c.kept).length, 4, 'four kept from one source');
  const health = await request(`${node.adminUrl}/health`);
  t.is(health.statusCode, 200, '/health answers another client');
  await health.body.dump();
  // A refused client that sends a request gets an answer, not just a closed socket.
  const refusedAnswer = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: node.adminPort, localAddress: '127.0.3.1' }, () => s.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n'));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
  t.regex(refusedAnswer, /^HTTP\/1\.1 503 [\s\S]*"code":"TOO_MANY_CONNECTIONS"/);
  t.is(await metric(node.adminUrl, 'weldr_admin_connections_refused_total{reason="per_source"'), 3);
  // Fill the total from other sources: the next one is refused too.
  const more = await Promise.all([2, 3, 4, 5, 6, 7, 8, 9].map((i) => idle(node.adminPort, `127.0.3.${i}`)));
  sockets.push(...more.map((c) => c.socket));
  t.true(more.some((c) => !c.kept), 'past the total, connections are refused');
  sockets.forEach((s) => s.destroy());
  await eventually('places free again', async () => {
    const r = await request(`${node.adminUrl}/health`);
    await r.body.dump();
    return r.statusCode === 200 ? true : undefined;
  });
  t.true((await metric(node.adminUrl, 'weldr_admin_connections_refused_total{reason="total"')) >= 1);
});

test('--admin-auth-reads with the token from a file: reads need it, probes do not', async (t) => {
  const dir = makeTempDir(t);
  const token = 'admin-token-from-a-file-0123456789';
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const node = await startNode(t, { store: 'memory', args: ['--admin-auth-reads', '--admin-token-file', join(dir, 'token')] });
  const servers = await request(`${node.adminUrl}/servers`);
  t.is(servers.statusCode, 401);
  t.like(await servers.body.json(), { error: { code: 'UNAUTHORIZED' } });
  const ok = await request(`${node.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  t.is(ok.statusCode, 200);
  await ok.body.dump();
  for (const path of ['/health', '/ready']) {
    const r = await request(`${node.adminUrl}${path}`);
    t.is(r.statusCode, 200, path);
    await r.body.dump();
  }
  t.false(node.proc.stdout.includes(token), 'the token is not in the log');
});

test("web pages: a cross-site write (Origin, Sec-Fetch-Site) is refused 403 and a rebound Host name 421, nothing is written; the CLI-style client and the API's own origin write", async (t) => {
  const node = await startNode(t, { store: 'memory' });
  const post = (port: number, headers: Record<string, string>, body: object) =>
    request(`http://127.0.0.1:${port}/servers`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: JSON.stringify(body) });
  // What a page's fetch(…, {mode: 'no-cors'}) sends: a simple request, no preflight.
  const forged = await post(node.adminPort, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }, { ip: '127.0.0.66', port: 80 });
  t.is(forged.statusCode, 403);
  t.like(await forged.body.json(), { error: { code: 'CROSS_SITE_REQUEST' } });
  const rebound = await post(node.adminPort, { host: `rebind.example:${node.adminPort}` }, { ip: '127.0.0.66', port: 81 });
  t.is(rebound.statusCode, 421);
  t.like(await rebound.body.json(), { error: { code: 'MISDIRECTED_REQUEST' } });
  const read = await request(`${node.adminUrl}/servers`, { headers: { host: 'rebind.example' } });
  t.is(read.statusCode, 421, 'a rebound page cannot read the pool either');
  await read.body.dump();
  const ready = await request(`${node.adminUrl}/ready`, { headers: { host: 'lb.example' } });
  t.is(ready.statusCode, 200, 'probes answer any Host');
  await ready.body.dump();
  const plain = await post(node.adminPort, {}, { ip: '127.0.0.66', port: 82 });
  t.is(plain.statusCode, 201);
  await plain.body.dump();
  const own = await post(node.adminPort, { origin: node.adminUrl, 'sec-fetch-site': 'same-origin' }, { ip: '127.0.0.66', port: 83 });
  t.is(own.statusCode, 201);
  await own.body.dump();
  const list = (await (await request(`${node.adminUrl}/servers`)).body.json()) as { id: string }[];
  t.deepEqual(list.map((x) => x.id).sort(), ['127.0.0.66:82', '127.0.0.66:83']);
  t.regex(node.proc.stdout, /"event":"admin_browser_refused"/);
});

test("web pages, cluster: a follower refuses a cross-site write itself (never relayed); a write with the follower's own Origin is relayed without it and taken by the leader", async (t) => {
  const members = await startCluster(t);
  const post = (m: (typeof members)[number], headers: Record<string, string>, port: number) =>
    request(`${m.adminUrl}/servers`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ip: '127.0.0.67', port }) });
  let port = 100;
  for (const m of members) {
    const forged = await post(m, { origin: 'http://evil.example' }, port++);
    t.is(forged.statusCode, 403, m.id);
    await forged.body.dump();
    // Every member but the leader relays this one: the leader sees no Origin naming another host.
    const own = await post(m, { origin: m.adminUrl, 'sec-fetch-site': 'same-origin' }, port++);
    t.true(own.statusCode === 201, `${m.id}: ${own.statusCode} ${await own.body.text()}`);
  }
  const list = (await (await request(`${members[0]!.adminUrl}/servers`)).body.json()) as { id: string }[];
  t.deepEqual(list.map((x) => x.id).sort(), ['127.0.0.67:101', '127.0.0.67:103', '127.0.0.67:105']);
});

test('admin HTTPS: a new certificate is used after SIGHUP and after the files change; a broken one is refused and the old one kept', async (t) => {
  const dir = makeTempDir(t, 'weldr-admin-tls-');
  const init = await runWeldr(t, ['certs', 'init', '--dir', dir, '--nodes', 'n1']);
  t.is(init.code, 0, init.stderr);
  const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live-key.pem') };
  copyFileSync(join(dir, 'n1', 'admin.pem'), live.cert);
  copyFileSync(join(dir, 'n1', 'admin-key.pem'), live.key);
  const node = await startNode(t, { store: 'memory', args: ['--admin-cert', live.cert, '--admin-key', live.key] });
  const caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const served = async (): Promise<string> => {
    const s = tls.connect({ host: '127.0.0.1', port: node.adminPort, ca: caPem });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('secureConnect', r));
    const serial = s.getPeerX509Certificate()!.serialNumber;
    s.destroy();
    return serial;
  };
  const first = await served();
  const agent = new Agent({ connect: { ca: caPem } });
  t.teardown(() => agent.close());
  const health = await request(`https://127.0.0.1:${node.adminPort}/health`, { dispatcher: agent });
  t.is(health.statusCode, 200);
  await health.body.dump();
  const ca = { cert: caPem, key: readFileSync(join(dir, 'ca-key.pem'), 'utf8') };
  const reissue = (): string => {
    const next = issueCertificate(ca, { commonName: 'n1 admin', nodeId: 'n1', hosts: ['127.0.0.1'], usage: 'server' });
    writeFileSync(live.key, next.key);
    writeFileSync(live.cert, next.cert);
    return new X509Certificate(next.cert).serialNumber;
  };
  // A file change.
  const second = reissue();
  await node.proc.waitForLine('reloaded after the file change', (l) => l.event === 'tls_reloaded' && l.trigger === 'file change');
  await eventually('the new certificate is served', async () => ((await served()) === second ? true : undefined));
  t.not(second, first);
  // A broken pair (the key of another certificate): refused, the current one stays.
  const other = issueCertificate(ca, { commonName: 'other', usage: 'server' });
  writeFileSync(live.key, other.key);
  await node.proc.waitForLine('the broken pair refused', (l) => l.event === 'tls_reload_failed');
  t.is(await served(), second);
  // SIGHUP.
  const third = reissue();
  const before = node.proc.lines.filter((l) => l.event === 'tls_reloaded').length;
  node.proc.signal('SIGHUP');
  await eventually('reloaded', () => (node.proc.lines.filter((l) => l.event === 'tls_reloaded').length > before ? true : undefined));
  await eventually('the third certificate is served', async () => ((await served()) === third ? true : undefined));
  t.true(node.proc.running, 'SIGHUP did not stop the node');
});
