// Proof of the cluster token without sending it: a challenge–response over HMAC-SHA256
// (the shape of RFC 2104 keyed digests used as in SCRAM, RFC 5802 §3, reduced to what
// two holders of one shared secret need).
//
//   server → client   challenge: a fresh random nonce Ns
//   client → server   hello: from, to, a fresh nonce Nc, proof HMAC(K, "client" Ns Nc from to)
//   server → client   welcome: proof HMAC(K, "server" Ns Nc from to)
//
// The token never travels, so a captured handshake is useless later: a replayed hello
// answers a challenge the server no longer has. Both sides prove the token (a stranger at
// a member's address cannot pose as that member either), and the proof binds the ids it
// was made for. Proofs are fixed-size digests compared with timingSafeEqual: neither the
// token's content nor its length shows in the time a comparison takes.
//
// What it does not do: protect the connection after the handshake. Someone on the path
// between two members can still read, drop or alter frames; peer TLS (--peer-cert) is the
// answer to that, and then also binds each member's id to its certificate.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
const PROOF_BYTES = 32;

export type ProofRole = 'client' | 'server';

export interface ProofInput {
  readonly serverNonce: string;
  readonly clientNonce: string;
  readonly from: string;
  readonly to: string;
}

/** A fresh nonce, base64. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64');
}

/** Whether `v` is a base64 nonce of the expected size (anything else is refused before any HMAC). */
export function isNonce(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 64 && Buffer.from(v, 'base64').length === NONCE_BYTES;
}

/** HMAC-SHA256 over the role and the inputs, NUL-separated (ids never contain NUL), base64. */
export function makeProof(token: string, role: ProofRole, input: ProofInput): string {
  return digest(token, role, input).toString('base64');
}

/** Constant-time check of a received proof; anything but a well-formed digest is false. */
export function proofMatches(token: string, role: ProofRole, input: ProofInput, got: unknown): boolean {
  if (typeof got !== 'string' || got.length > 64) return false;
  const received = Buffer.from(got, 'base64');
  if (received.length !== PROOF_BYTES) return false;
  return timingSafeEqual(received, digest(token, role, input));
}

function digest(token: string, role: ProofRole, { serverNonce, clientNonce, from, to }: ProofInput): Buffer {
  return createHmac('sha256', token).update(['weldr-raft/2', role, serverNonce, clientNonce, from, to].join('\0')).digest();
}
