// TLS material read from files — a certificate (chain), its private key, and optionally
// the CA bundle that peers' or clients' certificates must chain to — checked when read,
// so that a wrong file is one clear line at start, not a failing handshake later.
// ReloadableTls re-reads the files on demand (SIGHUP) and when they change, keeping the
// previous material when the new files are unusable: rotation never leaves a node
// without a certificate, and new connections use the new one.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';

export class TlsFilesError extends Error {
  override readonly name = 'TlsFilesError';
}

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** CA bundle (PEM) for verifying the other side; undefined: none. */
  readonly ca?: string | undefined;
}

/** How the files are named to people (the flags that gave them). */
export interface TlsFileNames {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  /** The end-entity certificate (the first of the chain). */
  readonly leaf: X509Certificate;
  readonly caCerts: readonly X509Certificate[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the files: parsable, key matching the certificate, valid now, issued by the CA bundle. */
export function readTlsMaterial(files: TlsFiles, names: TlsFileNames, now: Date = new Date()): TlsMaterial {
  const cert = readText(files.cert, names.cert);
  const key = readText(files.key, names.key);
  const chain = parseCertificates(cert, files.cert, names.cert);
  const leaf = chain[0]!;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsFilesError(`${names.key} ${files.key} holds no usable private key: ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new TlsFilesError(`the key in ${names.key} ${files.key} does not belong to the certificate in ${names.cert} ${files.cert}`);
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (to.getTime() <= now.getTime()) throw new TlsFilesError(`the certificate in ${names.cert} ${files.cert} expired on ${to.toISOString()}; issue a new one (weldr certs init makes a local CA and certificates)`);
  if (from.getTime() > now.getTime()) throw new TlsFilesError(`the certificate in ${names.cert} ${files.cert} is not valid before ${from.toISOString()}; check this host's clock`);
  let ca: string | undefined;
  let caCerts: X509Certificate[] = [];
  if (files.ca !== undefined) {
    ca = readText(files.ca, names.ca);
    caCerts = parseCertificates(ca, files.ca, names.ca);
    // The chain's last certificate must be issued by one in the bundle (or be in it).
    const top = chain[chain.length - 1]!;
    const trusted = caCerts.some((c) => c.fingerprint256 === top.fingerprint256 || (top.checkIssued(c) && top.verify(c.publicKey)));
    if (!trusted) throw new TlsFilesError(`the certificate in ${names.cert} ${files.cert} was not issued by a CA in ${names.ca} ${files.ca}`);
  }
  return { cert, key, ca, leaf, caCerts };
}

/** A CA bundle on its own (e.g. the CAs admin clients' certificates must chain to). */
export function readCaBundle(path: string, name: string): { ca: string; caCerts: X509Certificate[] } {
  const ca = readText(path, name);
  return { ca, caCerts: parseCertificates(ca, path, name) };
}

function readText(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TlsFilesError(`cannot read ${name} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parseCertificates(pem: string, path: string, name: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new TlsFilesError(`${name} ${path} holds no PEM certificate`);
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new TlsFilesError(`${name} ${path} holds a certificate that cannot be read: ${(err as Error).message}`);
    }
  });
}

export interface ReloadLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ReloadableTlsOptions<T> {
  /** For the log lines: "peer TLS", "admin TLS". */
  readonly name: string;
  /** The files to watch. */
  readonly paths: readonly string[];
  /** Reads and checks the files; throws TlsFilesError when they are unusable. */
  readonly load: () => T;
  readonly log: ReloadLogger;
  /** How often the files' status is polled, ms. Default 2000. */
  readonly watchIntervalMs?: number;
}

/**
 * TLS material that can be re-read while the node runs. Polling (fs.watchFile) rather
 * than inotify: it follows the symbolic-link swap by which Kubernetes updates a mounted
 * Secret, and files replaced by rename, where a watch on the old inode would go quiet.
 */
export class ReloadableTls<T> {
  private material: T;
  private readonly listeners = new Set<(m: T) => void>();
  private watching = false;
  private pending: NodeJS.Timeout | null = null;
  private readonly onFileChange = (): void => this.scheduleReload();

  constructor(private readonly opts: ReloadableTlsOptions<T>) {
    this.material = opts.load();
  }

  get current(): T {
    return this.material;
  }

  /** Called with the new material after each successful reload. */
  onReload(listener: (m: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the files now; on failure keeps the current material and says why. */
  reload(trigger: string): boolean {
    let next: T;
    try {
      next = this.opts.load();
    } catch (err) {
      this.opts.log.error({ event: 'tls_reload_failed', tls: this.opts.name, trigger, err: (err as Error).message }, `${this.opts.name}: keeping the current certificate: ${(err as Error).message}`);
      return false;
    }
    this.material = next;
    for (const l of this.listeners) l(next);
    this.opts.log.info({ event: 'tls_reloaded', tls: this.opts.name, trigger }, `${this.opts.name}: certificate reloaded (${trigger}); new connections use it`);
    return true;
  }

  /** Reloads when a file changes. */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    const interval = this.opts.watchIntervalMs ?? 2000;
    for (const p of this.opts.paths) watchFile(p, { interval, persistent: false }, this.onFileChange);
  }

  close(): void {
    if (this.pending !== null) clearTimeout(this.pending);
    this.pending = null;
    if (!this.watching) return;
    this.watching = false;
    for (const p of this.opts.paths) unwatchFile(p, this.onFileChange);
  }

  // A certificate and its key are usually written one after the other: wait a moment so
  // both are new before reading them (a half-written pair fails the check and is retried
  // at the next change).
  private scheduleReload(): void {
    if (this.pending !== null) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.reload('file change');
    }, 250);
    this.pending.unref();
  }
}
