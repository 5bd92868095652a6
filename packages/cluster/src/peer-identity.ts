// A member's id, bound to its certificate: a URI subject alternative name
// `weldr://node/<id>` (RFC 5280 §4.2.1.6). A URI rather than a DNS name because a node id
// is not a host name (it may hold '_', and a member keeps its id when it moves host),
// and because the DNS and IP names of the same certificate stay free for the host it runs
// on. A certificate naming no member, or more than one, identifies nobody.
import type { PeerCertificate } from 'node:tls';
import type { X509Certificate } from 'node:crypto';

export const NODE_URI_PREFIX = 'weldr://node/';

/** The URI SAN that binds `id` to a certificate. */
export function nodeUri(id: string): string {
  return `${NODE_URI_PREFIX}${id}`;
}

// Node ids: 1-63 of [A-Za-z0-9_.-], starting with a letter or digit (packages/node checks
// the same at configuration). Node spells SAN entries as `URI:value`, quoting values that
// hold a ',' or other separators as JSON strings: such a value is never a valid node URI,
// so splitting on ", " and matching whole entries cannot be fooled by them.
const NODE_URI = /^URI:weldr:\/\/node\/([A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/;

/** Every node id a certificate names. */
export function certificateNodeIds(cert: Pick<X509Certificate, 'subjectAltName'> | PeerCertificate | undefined | null): string[] {
  // X509Certificate spells it subjectAltName; the legacy PeerCertificate object that
  // checkServerIdentity receives, subjectaltname. Both hold the same string.
  const san = cert === undefined || cert === null ? undefined : 'subjectAltName' in cert ? cert.subjectAltName : cert.subjectaltname;
  if (typeof san !== 'string' || san === '') return [];
  const ids: string[] = [];
  for (const entry of san.split(', ')) {
    const id = NODE_URI.exec(entry)?.[1];
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/** The one node id a certificate names, or why it names none. */
export function certificateNodeId(cert: Pick<X509Certificate, 'subjectAltName'> | PeerCertificate | undefined | null): { id: string } | { why: string } {
  const ids = certificateNodeIds(cert);
  if (ids.length === 1) return { id: ids[0]! };
  if (ids.length === 0) return { why: `the certificate names no node (no subject alternative name ${NODE_URI_PREFIX}<id>)` };
  return { why: `the certificate names ${ids.length} nodes (${ids.join(', ')}); a member's certificate names exactly one` };
}
