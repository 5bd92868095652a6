// TLS files: checked when read (each problem one clear message naming the flag), and
// reloaded without ever leaving the node without a usable certificate.
import { writeFileSync } from 'node:fs';
import test from 'ava';
import { issueCertificate } from '../src/local-ca.js';
import { readPeerTls } from '../src/peer-tls.js';
import { readTlsMaterial, ReloadableTls, TlsFilesError } from '../src/tls-files.js';
import { certificateNodeId, certificateNodeIds } from '../src/peer-identity.js';
import { testPki } from './certs.js';

const pki = testPki();
test.after.always(() => pki.cleanup());
const NAMES = { cert: '--peer-cert', key: '--peer-key', ca: '--peer-ca' };

test('readPeerTls: a member certificate from the cluster CA naming this node is accepted', (t) => {
  const files = pki.files('n1', pki.member('n1'));
  const m = readPeerTls(files, 'n1');
  t.deepEqual(certificateNodeId(m.leaf), { id: 'n1' });
  t.deepEqual(certificateNodeIds(m.leaf), ['n1']);
});

test('each unusable file is refused with a message naming the flag and the file', (t) => {
  const n1 = pki.member('n1');
  const cases: [string, () => unknown, RegExp][] = [
    ['missing file', () => readPeerTls({ ...pki.files('x', n1), cert: '/nonexistent.pem' }, 'n1'), /cannot read --peer-cert \/nonexistent\.pem: ENOENT/],
    ['not PEM', () => {
      const f = pki.files('x', n1);
      writeFileSync(f.cert, 'hello');
      return readPeerTls(f, 'n1');
    }, /--peer-cert .* holds no PEM certificate/],
    ['key of another certificate', () => readPeerTls({ ...pki.files('x', n1), key: pki.files('y', pki.member('n2')).key }, 'n1'), /the key in --peer-key .* does not belong to the certificate in --peer-cert/],
    ['expired', () => readPeerTls(pki.files('x', issueCertificate(pki.ca, { commonName: 'n1', nodeId: 'n1', usage: 'both', notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })), 'n1'), /expired on/],
    ['not yet valid', () => readPeerTls(pki.files('x', issueCertificate(pki.ca, { commonName: 'n1', nodeId: 'n1', usage: 'both', notBefore: new Date(Date.now() + 86_400_000) })), 'n1'), /is not valid before .* check this host's clock/],
    ['another CA', () => readPeerTls(pki.files('x', issueCertificate(pki.otherCa, { commonName: 'n1', nodeId: 'n1', usage: 'both' })), 'n1'), /was not issued by a CA in --peer-ca/],
    ['another member', () => readPeerTls(pki.files('x', pki.member('n2')), 'n1'), /is the certificate of node n2, this node is n1/],
    ['no node id', () => readPeerTls(pki.files('x', issueCertificate(pki.ca, { commonName: 'n1', hosts: ['127.0.0.1'], usage: 'both' })), 'n1'), /names no node .* must name weldr:\/\/node\/n1/],
  ];
  for (const [name, fn, message] of cases) t.throws(fn, { instanceOf: TlsFilesError, message }, name);
});

test('certificateNodeIds reads only whole weldr://node/<id> URIs', (t) => {
  t.deepEqual(certificateNodeIds({ subjectAltName: 'URI:weldr://node/n1, DNS:localhost, IP Address:127.0.0.1' }), ['n1']);
  t.deepEqual(certificateNodeIds({ subjectAltName: 'URI:weldr://node/n1/x, URI:"weldr://node/n2, URI:weldr://node/n3", URI:https://node/n4' }), []);
  const two = certificateNodeId({ subjectAltName: 'URI:weldr://node/a, URI:weldr://node/b' });
  t.regex('why' in two ? two.why : '', /names 2 nodes/);
  t.deepEqual(certificateNodeIds({ subjectAltName: '' }), []);
});

test('ReloadableTls: a reload that fails keeps the current material; a good one replaces it and tells the listeners', (t) => {
  const files = pki.files('r', pki.member('n1'));
  const lines: string[] = [];
  const log = { info: (_o: object, m: string) => void lines.push(`info ${m}`), error: (_o: object, m: string) => void lines.push(`error ${m}`) };
  const tlsFiles = new ReloadableTls({ name: 'peer TLS', paths: [files.cert, files.key, files.ca], load: () => readTlsMaterial(files, NAMES), log });
  const first = tlsFiles.current;
  let told = 0;
  tlsFiles.onReload(() => told++);
  writeFileSync(files.key, pki.member('n2').key);
  t.false(tlsFiles.reload('SIGHUP'));
  t.is(tlsFiles.current, first);
  t.regex(lines.at(-1)!, /^error peer TLS: keeping the current certificate: the key in --peer-key/);
  const renewed = issueCertificate(pki.ca, { commonName: 'n1', nodeId: 'n1', usage: 'both' });
  writeFileSync(files.key, renewed.key);
  writeFileSync(files.cert, renewed.cert);
  t.true(tlsFiles.reload('SIGHUP'));
  t.is(tlsFiles.current.cert, renewed.cert);
  t.is(told, 1);
});

test('ReloadableTls: a changed file is picked up by itself', async (t) => {
  const files = pki.files('w', pki.member('n1'));
  const log = { info() {}, error() {} };
  const tlsFiles = new ReloadableTls({ name: 'peer TLS', paths: [files.cert, files.key], load: () => readTlsMaterial(files, NAMES), log, watchIntervalMs: 50 });
  tlsFiles.watch();
  t.teardown(() => tlsFiles.close());
  let done = false;
  const reloaded = new Promise<void>((resolve) => tlsFiles.onReload(() => resolve()));
  void reloaded.then(() => (done = true));
  const renewed = issueCertificate(pki.ca, { commonName: 'n1', nodeId: 'n1', usage: 'both' });
  // The poller's first look may come after a write: write again until it sees a change (bounded by the test timeout).
  for (let i = 0; !done && i < 100; i++) {
    writeFileSync(files.key, renewed.key);
    writeFileSync(files.cert, `${renewed.cert}${'\n'.repeat(i % 2)}`);
    await Promise.race([reloaded, new Promise((r) => setTimeout(r, 200))]);
  }
  await reloaded;
  t.is(tlsFiles.current.cert.trim(), renewed.cert.trim());
});
