import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';

/** One certificate (chain) and its private key, PEM. */
export interface TlsCertificate {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** TLS termination on the client side. */
export interface ProxyTlsOptions {
  /**
   * The certificates to serve. The first is the default (a client without SNI, or with
   * a name no certificate covers). SNI picks by the names each certificate carries
   * (its subjectAltName DNS entries, or its subject CN when it has none): an exact name
   * first, then a wildcard one label deep (`*.example.com`), as HAProxy does with a
   * certificate directory — there is no separate name-to-file mapping to keep in step.
   */
  readonly certificates: readonly TlsCertificate[];
}

/**
 * TLS 1.2 and 1.3 only. TLS 1.3 suites are OpenSSL's defaults (all AEAD); for TLS 1.2,
 * ECDHE key exchange with AEAD ciphers only (Mozilla's "intermediate" profile without
 * finite-field DHE): no CBC, no RSA key exchange, no SHA-1 MACs.
 */
export const TLS_MIN_VERSION = 'TLSv1.2';
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Options every secure context of the listener shares (the server's default one included). */
export function contextOptions(c: TlsCertificate): SecureContextOptions {
  return { cert: c.cert, key: c.key, minVersion: TLS_MIN_VERSION, ciphers: TLS12_CIPHERS, honorCipherOrder: true };
}

/** The certificates as secure contexts, looked up by server name. Immutable: a reload builds a new one. */
export class TlsContexts {
  readonly default: TlsCertificate;
  readonly #exact = new Map<string, SecureContext>();
  readonly #wildcard = new Map<string, SecureContext>();
  readonly #fallback: SecureContext;
  /** The names each certificate answers for, in order (for logs). */
  readonly names: readonly (readonly string[])[];

  /** Throws (with the certificate's position) when a certificate or key is unusable. */
  constructor(options: ProxyTlsOptions) {
    if (options.certificates.length === 0) throw new Error('TLS needs at least one certificate');
    this.default = options.certificates[0]!;
    const names: string[][] = [];
    options.certificates.forEach((c, i) => {
      let context: SecureContext;
      let certNames: string[];
      try {
        context = createSecureContext(contextOptions(c));
        certNames = certificateNames(c.cert);
      } catch (err) {
        throw new Error(`certificate ${i + 1}: ${(err as Error).message}`, { cause: err });
      }
      names.push(certNames);
      for (const name of certNames) {
        const map = name.startsWith('*.') ? this.#wildcard : this.#exact;
        const key = name.startsWith('*.') ? name.slice(2) : name;
        // The first certificate that names a host wins (the order given is the priority).
        if (!map.has(key)) map.set(key, context);
      }
    });
    this.#fallback = createSecureContext(contextOptions(this.default));
    this.names = names;
  }

  /** The context for an SNI server name (case-insensitive; DNS names only). */
  lookup(servername: string): SecureContext {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.#wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.#fallback;
  }
}

/** DNS names of a certificate: its subjectAltName DNS entries, else its subject CN. */
export function certificateNames(pem: string | Buffer): string[] {
  const x509 = new X509Certificate(pem);
  const san = x509.subjectAltName;
  if (san !== undefined && san !== '') {
    const dns = san
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase());
    if (dns.length !== 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}
