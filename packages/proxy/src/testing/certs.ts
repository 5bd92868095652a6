// Test certificates made with the openssl CLI into a temporary directory: a CA and
// leaf certificates it signs (EC P-256 by default, RSA on request). For tests only: the
// proxy's own and, as `@weldr/proxy/testing`, the e2e tests in test/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM), for clients to trust. */
  readonly ca: string;
  /** A leaf certificate for these DNS names (the first is also the CN); 127.0.0.1 as an IP SAN. */
  issue(names: readonly string[], options?: { rsa?: boolean; file?: string }): TestCert;
  remove(): void;
}

let serial = 1000;

function keyArgs(rsa: boolean): string[] {
  return rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
}

export function makeCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'weldr-certs-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  run(['req', '-x509', ...keyArgs(false), '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=weldr-test-ca']);
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    issue(names, options = {}) {
      const base = options.file ?? `leaf-${++serial}`;
      run(['req', ...keyArgs(options.rsa ?? false), '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]!}`]);
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=${[...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',')}\n`);
      run(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(++serial), '-out', `${base}.crt`, '-days', '2', '-extfile', `${base}.ext`]);
      const certFile = join(dir, `${base}.crt`);
      const keyFile = join(dir, `${base}.key`);
      return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether the openssl CLI is available (the tests that need it say so and skip otherwise). */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
