// The proxy's TLS certificates, read from the files --tls-cert / --tls-key name. Read at
// start (a problem is a configuration error, exit 2) and again on SIGHUP (a problem is
// logged and the certificates in use stay).
import { readFileSync } from 'node:fs';
import type { ProxyTlsOptions } from '@weldr/proxy';
import { ConfigError } from '../config/config-error.js';

/** Reads each certificate/key pair (PEM), in order; the first pair is the default certificate. */
export function readTlsFiles(certFiles: readonly string[], keyFiles: readonly string[], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ProxyTlsOptions {
  if (certFiles.length === 0) throw new ConfigError('--listen-tls needs --tls-cert and --tls-key');
  if (certFiles.length !== keyFiles.length) {
    throw new ConfigError(`--tls-cert names ${certFiles.length} file(s) and --tls-key ${keyFiles.length}: give one key per certificate, in the same order`);
  }
  const load = (path: string, flag: string): string => {
    try {
      return read(path);
    } catch (err) {
      throw new ConfigError(`cannot read ${flag} file ${path}: ${(err as Error).message}`);
    }
  };
  return { certificates: certFiles.map((cert, i) => ({ cert: load(cert, '--tls-cert'), key: load(keyFiles[i]!, '--tls-key') })) };
}
