// TLS termination on a real node: --listen-tls with several certificates (SNI), reload
// on SIGHUP without dropping connections, and bad TLS configuration refused at start.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import test from 'ava';
import { Agent, request } from 'undici';
import { hasOpenssl, makeCa, type TestCa } from '@weldr/proxy/testing';
import { addOrigin } from './helpers/admin.js';
import { makeTempDir, startNode } from './helpers/node.js';
import { startOrigin } from './helpers/origins.js';
import { runWeldr } from './helpers/process.js';
import { waitForRouting } from './helpers/routing.js';

const skip = !hasOpenssl();

function withCa(t: { teardown(fn: () => void): void }): TestCa {
  const ca = makeCa();
  t.teardown(() => ca.remove());
  return ca;
}

/** The serial number and CN of the certificate the node serves for `servername`. */
function peer(port: number, ca: string, servername: string): Promise<{ serial: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca, servername }, () => {
      const cert = s.getPeerCertificate();
      resolve({ serial: cert.serialNumber, cn: String(cert.subject.CN) });
      s.destroy();
    });
    s.on('error', reject);
  });
}

test('--listen-tls serves HTTPS with SNI; SIGHUP reloads the certificate files without dropping connections; a bad file changes nothing', async (t) => {
  if (skip) return void t.pass('skipped: openssl is not installed');
  const ca = withCa(t);
  const dir = makeTempDir(t);
  const first = ca.issue(['e2e.test', 'localhost']);
  const other = ca.issue(['other.e2e.test']);
  // The node reads these paths; the test replaces their contents to rotate.
  const certFile = join(dir, 'default.crt');
  const keyFile = join(dir, 'default.key');
  copyFileSync(first.certFile, certFile);
  copyFileSync(first.keyFile, keyFile);
  const node = await startNode(t, {
    store: 'memory',
    args: ['--listen-tls', '127.0.0.1:0', '--tls-cert', `${certFile},${other.certFile}`, '--tls-key', `${keyFile},${other.keyFile}`],
  });
  t.truthy(node.proxyTlsPort);
  const origin = await startOrigin(t, 'tls-a');
  await addOrigin(node, origin);
  await waitForRouting(node, ['tls-a']);

  const agent = new Agent({ connect: { ca: ca.ca, servername: 'e2e.test' }, connections: 1 });
  t.teardown(() => agent.close());
  const res = await request(`https://127.0.0.1:${node.proxyTlsPort}/echo/x`, { dispatcher: agent });
  t.is(res.statusCode, 200);
  const seen = (await res.body.json()) as { headers: [string, string][] };
  t.deepEqual(seen.headers.filter(([n]) => n.toLowerCase() === 'x-forwarded-proto').map(([, v]) => v), ['https']);
  t.is((await peer(node.proxyTlsPort!, ca.ca, 'other.e2e.test')).cn, 'other.e2e.test');
  const before = await peer(node.proxyTlsPort!, ca.ca, 'e2e.test');

  // A connection open across the reload (the agent keeps its one connection alive).
  const socketBefore = await new Promise<TLSSocket>((resolve) => {
    const s = tls.connect({ port: node.proxyTlsPort!, host: '127.0.0.1', ca: ca.ca, servername: 'e2e.test' }, () => resolve(s));
  });
  t.teardown(() => socketBefore.destroy());

  const renewed = ca.issue(['e2e.test', 'localhost']);
  copyFileSync(renewed.certFile, certFile);
  copyFileSync(renewed.keyFile, keyFile);
  node.proc.signal('SIGHUP');
  await node.proc.waitForLine('TLS reload', (l) => l.event === 'tls_reloaded');
  const after = await peer(node.proxyTlsPort!, ca.ca, 'e2e.test');
  t.not(after.serial, before.serial, 'new handshakes get the renewed certificate');
  // The old connection still carries requests.
  const reply = await new Promise<string>((resolve) => {
    let text = '';
    socketBefore.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socketBefore.write('GET /echo/old HTTP/1.1\r\nHost: e2e\r\n\r\n');
  });
  t.regex(reply, /^HTTP\/1\.1 200 /);
  t.true(node.proc.running);

  // A broken key file: the reload is refused and logged, the certificates in use stay.
  writeFileSync(keyFile, 'not a key\n');
  node.proc.signal('SIGHUP');
  const failed = await node.proc.waitForLine('TLS reload failure', (l) => l.event === 'tls_reload_failed');
  t.regex(JSON.stringify(failed), /tls-key|key|certificate/i);
  t.is((await peer(node.proxyTlsPort!, ca.ca, 'e2e.test')).serial, after.serial);
  t.true(node.proc.running);
});

test('TLS configuration problems are refused at start with exit 2 and the flag named', async (t) => {
  if (skip) return void t.pass('skipped: openssl is not installed');
  const ca = withCa(t);
  const dir = makeTempDir(t);
  const cert = ca.issue(['e2e.test']);
  const other = ca.issue(['other.e2e.test']);
  const base = ['start', '--store', 'memory', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data', join(dir, 'd')];
  const cases: [string[], RegExp][] = [
    [['--listen-tls', '127.0.0.1:0'], /--listen-tls needs --tls-cert and --tls-key/],
    [['--tls-cert', cert.certFile, '--tls-key', cert.keyFile], /--tls-cert and --tls-key are for --listen-tls/],
    [['--listen-tls', '127.0.0.1:0', '--tls-cert', `${cert.certFile},${other.certFile}`, '--tls-key', cert.keyFile], /one key per certificate/],
    [['--listen-tls', '127.0.0.1:0', '--tls-cert', join(dir, 'missing.crt'), '--tls-key', cert.keyFile], /cannot read --tls-cert file .*missing\.crt/],
    [['--listen-tls', '127.0.0.1:0', '--tls-cert', cert.certFile, '--tls-key', other.keyFile], /--tls-cert\/--tls-key: certificate 1/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runWeldr(t, [...base, ...args])));
  cases.forEach(([args, message], i) => {
    t.is(runs[i]!.code, 2, `${args.join(' ')}: ${runs[i]!.stderr}`);
    t.regex(runs[i]!.stderr, message);
  });
});
