// Test certificates, made once per test file: a cluster CA with member certificates, and
// the wrong ones an attacker might hold (another CA, another member's id, expired).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate, type KeyAndCert } from '../src/local-ca.js';

export interface TestPki {
  readonly ca: KeyAndCert;
  readonly otherCa: KeyAndCert;
  member(id: string): KeyAndCert;
  /** Writes cert, key and the CA to files; returns their paths. */
  files(name: string, pair: KeyAndCert, ca?: KeyAndCert): { cert: string; key: string; ca: string };
  readonly dir: string;
  cleanup(): void;
}

export function testPki(): TestPki {
  const ca = createCa({ commonName: 'test cluster CA' });
  const otherCa = createCa({ commonName: 'someone else\'s CA' });
  const members = new Map<string, KeyAndCert>();
  const dir = mkdtempSync(join(tmpdir(), 'weldr-pki-'));
  let n = 0;
  return {
    ca,
    otherCa,
    dir,
    member(id) {
      let m = members.get(id);
      if (m === undefined) {
        m = issueCertificate(ca, { commonName: id, nodeId: id, hosts: ['127.0.0.1', 'localhost'], usage: 'both' });
        members.set(id, m);
      }
      return m;
    },
    files(name, pair, withCa = ca) {
      const base = join(dir, `${name}-${n++}`);
      const paths = { cert: `${base}.pem`, key: `${base}-key.pem`, ca: `${base}-ca.pem` };
      writeFileSync(paths.cert, pair.cert);
      writeFileSync(paths.key, pair.key, { mode: 0o600 });
      writeFileSync(paths.ca, withCa.cert);
      return paths;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A fixed source of TLS material (what ReloadableTls gives the transport), reloadable by hand. */
export function staticTls(pair: KeyAndCert, ca: KeyAndCert) {
  const listeners = new Set<() => void>();
  const source = {
    current: { cert: pair.cert, key: pair.key, ca: ca.cert },
    onReload(l: () => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    replace(next: KeyAndCert, nextCa: KeyAndCert = ca) {
      source.current = { cert: next.cert, key: next.key, ca: nextCa.cert };
      for (const l of listeners) l();
    },
  };
  return source;
}
