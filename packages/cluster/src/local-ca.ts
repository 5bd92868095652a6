// A local certificate authority for peer and admin TLS: what `weldr certs init` uses to
// give a cluster (and the tests and drills) a CA and one certificate per member, without
// an outside PKI. Keys are made by node:crypto (OpenSSL); node-forge only lays out and
// signs the X.509 structures, which node:crypto cannot do. RSA-2048 keys, because
// node-forge signs with RSA only; SHA-256 signatures.
//
// For production, any CA will do as long as each member's certificate carries its
// weldr://node/<id> URI (peer-identity.ts) and both serverAuth and clientAuth.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type Forge from 'node-forge';
import { nodeUri } from './peer-identity.js';

// Loaded on first use: node-forge is large, and only `weldr certs init` and tests need it,
// not every start of a node.
const require = createRequire(import.meta.url);
let loaded: typeof Forge | undefined;
function forgeLib(): typeof Forge {
  loaded ??= require('node-forge') as typeof Forge;
  return loaded;
}

export interface KeyAndCert {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key (PKCS#8). */
  readonly key: string;
}

export interface Validity {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface CaOptions extends Validity {
  readonly commonName?: string;
}

export interface LeafOptions extends Validity {
  readonly commonName: string;
  /** Binds a member's id (URI SAN weldr://node/<id>). */
  readonly nodeId?: string;
  /** Host names and IP addresses the certificate is valid for (DNS and IP SANs). */
  readonly hosts?: readonly string[];
  /** TLS server (serverAuth), client (clientAuth), or both — a member is both to its peers. */
  readonly usage: 'server' | 'client' | 'both';
}

const DAY_MS = 86_400_000;

export function createCa(options: CaOptions = {}): KeyAndCert {
  const forge = forgeLib();
  const { publicKey, privateKey } = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serial();
  setValidity(cert, options, 10 * 365);
  const name = [{ name: 'commonName', value: options.commonName ?? 'weldr local CA' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

export function issueCertificate(ca: KeyAndCert, options: LeafOptions): KeyAndCert {
  const forge = forgeLib();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const { publicKey, privateKey } = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serial();
  setValidity(cert, options, 365);
  cert.setSubject([{ name: 'commonName', value: options.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames: { type: number; value?: string; ip?: string }[] = [];
  if (options.nodeId !== undefined) altNames.push({ type: 6, value: nodeUri(options.nodeId) });
  for (const host of options.hosts ?? []) altNames.push(isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host });
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: options.usage !== 'client', clientAuth: options.usage !== 'server' },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ...(altNames.length === 0 ? [] : [{ name: 'subjectAltName', altNames }]),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

function rsaKeys(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

/** 127 random bits, positive (RFC 5280 §4.1.2.2: at most 20 octets, unique per CA). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function setValidity(cert: Forge.pki.Certificate, v: Validity, defaultDays: number): void {
  // An hour of slack for clocks that are a little behind the issuer's.
  const notBefore = v.notBefore ?? new Date(Date.now() - 3_600_000);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = v.notAfter ?? new Date(notBefore.getTime() + defaultDays * DAY_MS);
}
