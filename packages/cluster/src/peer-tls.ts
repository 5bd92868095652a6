// Peer TLS: every member holds a certificate naming its id (weldr://node/<id>), issued
// by the cluster's CA; connections between members are TLS 1.3 with both certificates
// verified against that CA, and each side checks that the other's certificate names the
// member it claims to be (the server: the hello's sender; the client: the member it
// dialled). The files are re-read on SIGHUP and when they change.
import { nodeUri, certificateNodeId } from './peer-identity.js';
import { readTlsMaterial, ReloadableTls, TlsFilesError, type ReloadLogger, type TlsMaterial } from './tls-files.js';

export interface PeerTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

const NAMES = { cert: '--peer-cert', key: '--peer-key', ca: '--peer-ca' } as const;

/** Reads the peer TLS files and checks that the certificate is this member's. */
export function readPeerTls(files: PeerTlsFiles, id: string, now?: Date): TlsMaterial {
  const material = readTlsMaterial(files, NAMES, now);
  const named = certificateNodeId(material.leaf);
  if ('why' in named) throw new TlsFilesError(`${NAMES.cert} ${files.cert}: ${named.why}; this node's certificate must name ${nodeUri(id)}`);
  if (named.id !== id) throw new TlsFilesError(`${NAMES.cert} ${files.cert} is the certificate of node ${named.id}, this node is ${id}`);
  return material;
}

/** The peer TLS material of this node, reloadable (SIGHUP, file change). */
export type PeerTls = ReloadableTls<TlsMaterial>;

export function openPeerTls(files: PeerTlsFiles, id: string, log: ReloadLogger, watchIntervalMs?: number): PeerTls {
  return new ReloadableTls({
    name: 'peer TLS',
    paths: [files.cert, files.key, files.ca],
    load: () => readPeerTls(files, id),
    log,
    ...(watchIntervalMs === undefined ? {} : { watchIntervalMs }),
  });
}
