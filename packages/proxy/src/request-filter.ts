import type { IncomingMessage } from 'node:http';
import type { ProxyErrorCode } from './errors.js';
import { sameName } from './headers.js';

/** What the request filter learns about a request and the forward phase needs. */
export interface RequestTarget {
  /** Authority to forward as Host (from absolute-form, else the Host header). */
  host: string;
  /** origin-form request-target sent to the origin. */
  path: string;
  /** True when the request has a body to stream (chunked or Content-Length > 0). */
  hasBody: boolean;
  /** Decremented Max-Forwards for OPTIONS (RFC 9110 §7.6.2), else null. */
  maxForwards: string | null;
  /** This proxy's own Via entry: a request that already carries it went round a loop. */
  readonly via: string;
}

/** The proxy answers this request itself (OPTIONS * or OPTIONS with Max-Forwards: 0). */
export const LOCAL_OPTIONS = 'LOCAL_OPTIONS';
export type Verdict = null | ProxyErrorCode | typeof LOCAL_OPTIONS;

// RFC 3986 §3.2: authority = host [ ":" port ], host = IP-literal / IPv4 / reg-name.
// Userinfo is not allowed in a Host header (RFC 9110 §7.2). The host is not empty: an
// http(s) URI with an empty host is invalid and MUST be rejected (RFC 9110 §4.2.1), so
// ":80" is no authority; an empty Host field (no authority at all) is checked apart.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?$/;
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;
const DIGITS = /^[0-9]+$/;
/** The largest Max-Forwards value this proxy supports (RFC 9110 §7.6.2). */
const MAX_FORWARDS = 2 ** 31 - 1;

/**
 * Header fields node keeps per request (server.maxHeadersCount, set by the Listener).
 * node silently drops the fields beyond it; a request reaching the limit is refused
 * with 431 instead, so no field is ever lost between the client and the origin.
 */
export const MAX_HEADER_FIELDS = 2000;

/**
 * The request-filter phase: everything that makes a request unforwardable, checked on
 * node's already-parsed message (llhttp has rejected what it can: bad tokens, bare CR,
 * obs-fold, CL+TE conflicts it sees, duplicate Content-Length). This is the second,
 * proxy-specific line of defence against request smuggling: any framing ambiguity is
 * a 400 and nothing reaches an origin. Fills `out` and returns null to forward.
 */
export function filterRequest(req: IncomingMessage, out: RequestTarget): Verdict {
  if (req.httpVersionMajor !== 1) return 'VERSION_NOT_SUPPORTED';
  const method = req.method!;
  // TRACE reflects request headers (cookies, auth) back: Cross-Site Tracing. Refused.
  if (method === 'TRACE') return 'METHOD_NOT_ALLOWED';
  if (method === 'CONNECT') return 'NOT_IMPLEMENTED';

  const raw = req.rawHeaders;
  if (raw.length >= 2 * MAX_HEADER_FIELDS) return 'HEADERS_TOO_LARGE';
  let host: string | null = null;
  let hosts = 0;
  let contentLength: string | null = null;
  let lengths = 0;
  let te: string | null = null;
  let maxForwards: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (sameName(name, 'host')) {
          hosts++;
          host = raw[i + 1]!;
        }
        break;
      case 12:
        // Joined like a list: two fields are as invalid as one with two values.
        if (sameName(name, 'max-forwards')) maxForwards = maxForwards === null ? raw[i + 1]! : `${maxForwards},${raw[i + 1]!}`;
        break;
      case 14:
        if (sameName(name, 'content-length')) {
          lengths++;
          contentLength = raw[i + 1]!;
        }
        break;
      case 17:
        if (sameName(name, 'transfer-encoding')) te = te === null ? raw[i + 1]! : `${te},${raw[i + 1]!}`;
        break;
      case 3:
        // RFC 9110 §7.6.3: Via lets a proxy detect a forwarding loop. Our entry carries
        // this process's instance id, so only a request that passed through this very
        // proxy matches — not one from another weldr that happens to share a node id.
        if (sameName(name, 'via') && raw[i + 1]!.includes(out.via)) return 'LOOP_DETECTED';
        break;
    }
  }

  // RFC 9112 §3.2: exactly one Host in HTTP/1.1; node keeps only the first, so count raw.
  if (hosts > 1) return 'BAD_REQUEST';
  if (hosts === 0 && req.httpVersionMinor !== 0) return 'BAD_REQUEST';
  if (host !== null && host !== '' && !AUTHORITY.test(host)) return 'BAD_REQUEST';

  if (te !== null) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing cannot be trusted.
    if (req.httpVersionMinor === 0) return 'BAD_REQUEST';
    // RFC 9112 §6.3 (3): CL with TE is a smuggling attempt; reject rather than pick one.
    if (lengths !== 0) return 'BAD_REQUEST';
    const codings = te.toLowerCase();
    if (codings.trim() !== 'chunked') {
      const list = codings.split(',').map((c) => c.trim()).filter((c) => c !== '');
      // §6.3: chunked not final (or repeated) → length undeterminable → 400.
      if (list.at(-1) !== 'chunked' || list.indexOf('chunked') !== list.length - 1) return 'BAD_REQUEST';
      // Only chunked once, around empty list elements (`Transfer-Encoding: chunked` plus
      // an empty Transfer-Encoding field): no coding to implement, just a malformed field.
      if (list.length === 1) return 'BAD_REQUEST';
      // Other codings before chunked: not implemented here, and TE is hop-by-hop, so
      // they could not be forwarded as they are (§6.1: 501 for codings not understood).
      return 'NOT_IMPLEMENTED';
    }
    out.hasBody = true;
  } else if (contentLength !== null) {
    // §6.3 (5): a list or repeated Content-Length is rejected, not reconciled.
    if (lengths !== 1 || !DIGITS.test(contentLength)) return 'BAD_REQUEST';
    out.hasBody = contentLength !== '0' && !/^0+$/.test(contentLength);
  } else {
    out.hasBody = false;
  }

  const url = req.url!;
  // RFC 9112 §3.2: no request-target form has a fragment. Forwarding one would leave
  // the origin to decide what `/a#b` names (the path `/a`, or `/a#b`); refused instead.
  if (url.includes('#')) return 'BAD_REQUEST';
  if (url.charCodeAt(0) === 47 /* '/' */) {
    out.path = url;
    out.host = host ?? '';
  } else if (url === '*') {
    // RFC 9112 §3.2.4: asterisk-form is only for server-wide OPTIONS, answered here.
    return method === 'OPTIONS' ? LOCAL_OPTIONS : 'BAD_REQUEST';
  } else {
    // §3.2.2: absolute-form; its authority replaces Host, the origin gets origin-form.
    const m = ABSOLUTE_FORM.exec(url);
    if (m === null) return 'BAD_REQUEST';
    const authority = m[1]!;
    if (authority === '' || !AUTHORITY.test(authority)) return 'BAD_REQUEST';
    const rest = m[2]!;
    out.host = authority;
    out.path = rest === '' ? '/' : rest.charCodeAt(0) === 63 /* '?' */ ? `/${rest}` : rest;
  }

  out.maxForwards = null;
  if (maxForwards !== null && method === 'OPTIONS') {
    // RFC 9110 §7.6.2: an intermediary answers OPTIONS itself at Max-Forwards 0.
    const value = maxForwards.trim();
    if (!DIGITS.test(value)) return 'BAD_REQUEST';
    // The lesser of the value decremented and the largest this proxy supports: a value
    // beyond 2^53 would otherwise be forwarded as "1e+23", which is no Max-Forwards.
    const n = Math.min(Number(value), MAX_FORWARDS);
    if (n === 0) return LOCAL_OPTIONS;
    out.maxForwards = String(n - 1);
  }
  return null;
}
