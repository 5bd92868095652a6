// Proof that a relayed admin write really was relayed by a member (admin-forward.ts), for
// the audit log's "arrived at node X from client Y". Without it, those two headers are
// the word of whoever sent the request — and an admin client holding only the write
// token could put any node and address into the audit log.
//
// The relaying node signs (HMAC-SHA256 keyed by the cluster token, which admin clients
// do not hold) the node id, the client address, the method, the target and a timestamp;
// the leader accepts the headers only with a valid signature less than RELAY_PROOF_MAX_AGE
// old (a wide window: members' wall clocks may differ, and a captured proof only lets an
// eavesdropper on member traffic repeat an attribution, not a write). Without a cluster
// token (peer TLS only) there is no shared secret: relayed headers are then not trusted,
// and the audit log records the address the request came from (the relaying node).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const RELAY_PROOF_HEADER = 'x-weldr-relay-proof';
const CONTEXT = 'weldr-relay/1';
/** Seconds either side of the receiver's clock that a proof stays valid. */
export const RELAY_PROOF_MAX_AGE_S = 300;

export interface RelayClaim {
  readonly via: string;
  readonly client: string;
  readonly method: string;
  readonly target: string;
}

function mac(key: string, at: number, claim: RelayClaim): Buffer {
  return createHmac('sha256', key)
    .update([CONTEXT, String(at), claim.via, claim.client, claim.method.toUpperCase(), claim.target].join('\n'))
    .digest();
}

/** The header value: `t=<unix seconds>,sig=<base64url HMAC>`. */
export function signRelay(key: string, claim: RelayClaim, nowMs: number = Date.now()): string {
  const at = Math.floor(nowMs / 1000);
  return `t=${at},sig=${mac(key, at, claim).toString('base64url')}`;
}

/** True only for a well-formed, fresh proof of exactly this claim under `key`. */
export function verifyRelay(key: string, claim: RelayClaim, header: string | undefined, nowMs: number = Date.now()): boolean {
  if (header === undefined || header.length > 128) return false;
  const m = /^t=(\d{1,12}),sig=([A-Za-z0-9_-]{43})$/.exec(header);
  if (m === null) return false;
  const at = Number(m[1]);
  if (Math.abs(at - nowMs / 1000) > RELAY_PROOF_MAX_AGE_S) return false;
  const given = Buffer.from(m[2]!, 'base64url');
  const want = mac(key, at, claim);
  return given.length === want.length && timingSafeEqual(given, want);
}
