// Peer TLS on the Raft transport: certificates from the cluster CA that name each
// member's id, checked both ways; refused certificates; rotation without a restart.
import tls from 'node:tls';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { Message } from '@weldr/raft';
import { encodeFrame, FrameDecoder } from '../src/codec.js';
import { TcpTransport } from '../src/transport.js';
import { issueCertificate, type KeyAndCert } from '../src/local-ca.js';
import { staticTls, testPki } from './certs.js';

const pki = testPki();
test.after.always(() => pki.cleanup());

const silent = { debug() {}, info() {}, warn() {} };
const heartbeat = (from: string, to: string, term = 3): Message => ({ type: 'MsgHeartbeat', from, to, term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, tick: 0, lease: 0 });

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function server(t: import('ava').ExecutionContext, id = 'b', pair: KeyAndCert = pki.member(id)) {
  const got: Message[] = [];
  const tlsSource = staticTls(pair, pki.ca);
  const transport = new TcpTransport({ id, listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), tls: tlsSource, log: silent, onMessage: (m) => got.push(m) });
  await transport.start();
  t.teardown(() => transport.close());
  return { transport, got, tlsSource };
}

async function client(t: import('ava').ExecutionContext, id: string, port: number, pair: KeyAndCert = pki.member(id), peerId = 'b') {
  const lines: string[] = [];
  const log = { debug() {}, info() {}, warn: (_o: object, m: string) => void lines.push(m) };
  const transport = new TcpTransport({ id, listen: { host: '127.0.0.1', port: 0 }, peers: new Map([[peerId, { host: '127.0.0.1', port }]]), tls: staticTls(pair, pki.ca), log, onMessage: () => undefined, reconnectMinMs: 10, reconnectMaxMs: 50 });
  await transport.start();
  t.teardown(() => transport.close());
  return { transport, lines };
}

test('members with certificates from the cluster CA talk over TLS 1.3; nothing readable crosses the wire', async (t) => {
  const { transport: b, got } = await server(t);
  const wire: Buffer[] = [];
  const relay = net.createServer((c) => {
    const up = net.connect({ host: '127.0.0.1', port: b.port });
    c.on('data', (d: Buffer) => (wire.push(d), up.write(d)));
    up.on('data', (d: Buffer) => (wire.push(d), c.write(d)));
    for (const [x, y] of [[c, up], [up, c]] as const) {
      x.on('error', () => y.destroy());
      x.on('close', () => y.destroy());
    }
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.teardown(() => relay.close());
  const { transport: a } = await client(t, 'a', (relay.address() as net.AddressInfo).port);
  await until('delivery', () => {
    a.send([heartbeat('a', 'b')]);
    return got.length > 0;
  });
  t.like(got[0], { type: 'MsgHeartbeat', from: 'a', to: 'b' });
  const bytes = Buffer.concat(wire);
  for (const plain of ['MsgHeartbeat', 'weldr-raft', '"from"']) t.false(bytes.includes(Buffer.from(plain)), `${plain} is not on the wire in clear`);
});

/** A raw TLS client that says hello as `from`; resolves with what happened. */
async function rawTlsHello(port: number, pair: KeyAndCert | null, from: string, ca: KeyAndCert = pki.ca): Promise<{ challenged: boolean; welcomed: boolean }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, ...(pair === null ? {} : { cert: pair.cert, key: pair.key }), checkServerIdentity: () => undefined });
  const decoder = new FrameDecoder();
  let challenged = false;
  let welcomed = false;
  socket.on('data', (d: Buffer) => {
    for (const f of decoder.push(d) as Record<string, unknown>[]) {
      if (f.challenge !== undefined) {
        challenged = true;
        socket.write(encodeFrame({ hello: 'weldr-raft/2', from, to: 'b', nonce: randomBytes(32).toString('base64'), proof: '', info: {} }));
        socket.write(encodeFrame(heartbeat(from, 'b', 77)));
      }
      if (f.welcome !== undefined) welcomed = true;
    }
  });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.on('close', resolve));
  return { challenged, welcomed };
}

test('a member is refused when its certificate names another member, is expired, comes from another CA, or is missing', async (t) => {
  const { transport: b, got } = await server(t);
  // The certificate of c, saying hello as a.
  const asOther = await rawTlsHello(b.port, pki.member('c'), 'a');
  t.false(asOther.welcomed);
  t.is(b.stats().refused.get('certificate_id'), 1);
  const expired = issueCertificate(pki.ca, { commonName: 'a', nodeId: 'a', usage: 'both', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const stranger = issueCertificate(pki.otherCa, { commonName: 'a', nodeId: 'a', usage: 'both' });
  for (const [name, pair] of [['expired', expired], ['another CA', stranger], ['no certificate', null]] as const) {
    const r = await rawTlsHello(b.port, pair, 'a');
    t.false(r.challenged, `${name}: refused during the TLS handshake`);
  }
  await until("three TLS refusals counted", () => b.stats().refused.get("tls") === 3);
  // A transport holding c's certificate but calling itself a never gets through either.
  const { transport: a } = await client(t, 'a', b.port, pki.member('c'));
  a.send([heartbeat('a', 'b')]);
  await until('more refusals', () => (b.stats().refused.get('certificate_id') ?? 0) >= 2);
  t.false(got.some((m) => m.from === 'a'), 'nothing from a refused member was delivered');
  // The certificate of a, saying hello as a: welcomed.
  const right = await rawTlsHelloKeepOpen(b.port, pki.member('a'), 'a');
  t.true(right);
});

async function rawTlsHelloKeepOpen(port: number, pair: KeyAndCert, from: string): Promise<boolean> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, cert: pair.cert, key: pair.key, checkServerIdentity: () => undefined });
  const decoder = new FrameDecoder();
  const welcomed = await new Promise<boolean>((resolve) => {
    socket.on('data', (d: Buffer) => {
      for (const f of decoder.push(d) as Record<string, unknown>[]) {
        if (f.challenge !== undefined) socket.write(encodeFrame({ hello: 'weldr-raft/2', from, to: 'b', nonce: randomBytes(32).toString('base64'), proof: '', info: {} }));
        if (f.welcome !== undefined) resolve(true);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(false));
  });
  socket.destroy();
  return welcomed;
}

test('the dialling member checks that the certificate at the address names the member it dialled', async (t) => {
  // Someone at b's address with a valid certificate of the cluster CA, but c's.
  const { transport: impostor, got } = await server(t, 'b', pki.member('c'));
  const { transport: a, lines } = await client(t, 'a', impostor.port);
  await until('a says why', () => lines.some((l) => /certificate at b's address is c's/.test(l)));
  a.send([heartbeat('a', 'b')]);
  t.deepEqual(got, []);
});

test('rotation: after a reload, new connections use the new certificate; the old connections go on', async (t) => {
  const { transport: b, got, tlsSource } = await server(t);
  const { transport: a } = await client(t, 'a', b.port);
  await until('delivery', () => {
    a.send([heartbeat('a', 'b')]);
    return got.length > 0;
  });
  const served = async (): Promise<string> => {
    const s = tls.connect({ host: '127.0.0.1', port: b.port, ca: pki.ca.cert, cert: pki.member('a').cert, key: pki.member('a').key, checkServerIdentity: () => undefined });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('secureConnect', r));
    const serial = s.getPeerX509Certificate()!.serialNumber;
    s.destroy();
    return serial;
  };
  const before = await served();
  const renewed = issueCertificate(pki.ca, { commonName: 'b', nodeId: 'b', usage: 'both' });
  tlsSource.replace(renewed);
  const after = await served();
  t.not(after, before);
  t.is(after.toLowerCase(), new (await import('node:crypto')).X509Certificate(renewed.cert).serialNumber.toLowerCase());
  const n = got.length;
  await until('the existing connection still delivers', () => {
    a.send([heartbeat('a', 'b')]);
    return got.length > n;
  });
});
