// Header rewriting for both directions. Pure functions over flat raw header arrays
// ([name, value, name, value, …], the shape node's `req.rawHeaders` and undici's
// `onHeaders` use), so the hot path never builds header objects.
//
// RFC 9110 §7.6.1: a proxy MUST remove the hop-by-hop fields it receives — Connection,
// the fields named in Connection, and the classic set (Keep-Alive, Proxy-Connection,
// TE, Transfer-Encoding, Upgrade, Trailer, Proxy-Authenticate/-Authorization) — before
// forwarding. Transfer-Encoding and Content-Length framing is re-derived by each hop.

/** Forwarding facts for one request, appended to what is forwarded to the origin. */
export interface ForwardInfo {
  /** Value of the Host header to send (the authority, from absolute-form or Host). */
  readonly host: string;
  /** Peer address of the client connection. */
  readonly clientIp: string;
  /** The `Via` entry this proxy adds, e.g. "1.1 weldr". */
  readonly via: string;
  /** Forwarded Max-Forwards value (already decremented), or null to pass through. */
  readonly maxForwards?: string | null;
  /** The scheme the client used (X-Forwarded-Proto): https on the TLS listener. */
  readonly proto: 'http' | 'https';
}

/**
 * ASCII case-insensitive equality of a header name with a lower-case literal of the same
 * length, without allocating a lower-cased copy (names are tokens: ASCII only).
 */
export function sameName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c |= 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

// Lower-cased names that never cross this proxy, request or response side.
// Checked by length first so that most header names cost one switch and no allocation.
function hopByHopKind(name: string): number {
  switch (name.length) {
    case 2:
      return sameName(name, 'te') ? HOP : 0;
    case 4:
      return sameName(name, 'host') ? HOST : 0;
    case 6:
      return sameName(name, 'expect') ? EXPECT : 0;
    case 7:
      return sameName(name, 'upgrade') ? UPGRADE : sameName(name, 'trailer') ? HOP : 0;
    case 10:
      return sameName(name, 'connection') ? CONNECTION : sameName(name, 'keep-alive') ? HOP : 0;
    case 12:
      return sameName(name, 'max-forwards') ? MAX_FORWARDS : 0;
    case 15:
      return sameName(name, 'x-forwarded-for') ? XFF : 0;
    case 16:
      return sameName(name, 'proxy-connection') ? HOP : sameName(name, 'x-forwarded-host') ? XFH : 0;
    case 17:
      return sameName(name, 'transfer-encoding') ? TRANSFER_ENCODING : sameName(name, 'x-forwarded-proto') ? XFP : 0;
    case 18:
      return sameName(name, 'proxy-authenticate') ? HOP : 0;
    case 19:
      return sameName(name, 'proxy-authorization') ? HOP : 0;
    default:
      return 0;
  }
}

const HOP = 1;
const CONNECTION = 2;
const UPGRADE = 3;
const HOST = 4;
const EXPECT = 5;
const XFF = 6;
const XFH = 7;
const XFP = 8;
const MAX_FORWARDS = 9;
const TRANSFER_ENCODING = 10;

/**
 * Extra field names listed in Connection header values (RFC 9110 §7.6.1), lower-cased,
 * or null when the values name nothing but `close` / `keep-alive` / `upgrade` (the
 * common case, which then costs no allocation).
 */
export function connectionTokens(values: readonly string[]): string[] | null {
  let out: string[] | null = null;
  for (const value of values) {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close' || lower === 'upgrade') continue;
    for (const part of lower.split(',')) {
      const token = part.trim();
      if (token === '' || token === 'keep-alive' || token === 'close' || token === 'upgrade') continue;
      (out ??= []).push(token);
    }
  }
  return out;
}

function collectConnection(raw: readonly string[]): string[] | null {
  let values: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && hopByHopKind(name) === CONNECTION) (values ??= []).push(raw[i + 1]!);
  }
  return values === null ? null : connectionTokens(values);
}

/**
 * Headers to send to the origin: the client's fields minus hop-by-hop ones, Host set to
 * the routed authority, X-Forwarded-For appended to, X-Forwarded-Proto/-Host replaced
 * (this proxy is the edge: a client-supplied value is not trusted), Via appended.
 * `Expect` is dropped because this proxy answers `100-continue` itself (node does, before
 * emitting 'request') and streams the body on; undici refuses to send it anyway.
 * Upgrade and Connection for a tunnel are re-added by undici from its `upgrade` option.
 */
export function requestHeaders(raw: readonly string[], info: ForwardInfo): string[] {
  const tokens = collectConnection(raw);
  const out: string[] = [];
  let xff: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const kind = hopByHopKind(name);
    if (kind !== 0) {
      if (kind === XFF) xff = xff === null ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
      else if (kind === MAX_FORWARDS && info.maxForwards == null) out.push(name, raw[i + 1]!);
      continue;
    }
    if (tokens !== null && tokens.includes(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!);
  }
  if (info.maxForwards != null) out.push('max-forwards', info.maxForwards);
  // RFC 9110 §7.6.1: a field the client named in Connection is this hop's only; an
  // X-Forwarded-For so named is dropped, and the origin sees the client's address alone.
  if (xff !== null && tokens !== null && tokens.includes('x-forwarded-for')) xff = null;
  out.push(
    'host', info.host,
    'x-forwarded-for', xff === null ? info.clientIp : `${xff}, ${info.clientIp}`,
    'x-forwarded-proto', info.proto,
    'x-forwarded-host', info.host,
    'via', info.via,
  );
  return out;
}

// Latin-1 strings for the raw header Buffers of origin responses. Origins repeat the same
// names and mostly the same values ("Server: nginx", "Content-Type: text/plain", the Date
// of the current second…), so the string made for a byte sequence is kept in a small
// direct-mapped table and reused when the same bytes come again (compared in full):
// no native call and no allocation for a repeated field, where toString('latin1') costs
// both for each of the ~10 Buffers of a response.
const LATIN1_SLOTS = 512;
const LATIN1_MAX = 64;
const latin1Cache: (string | undefined)[] = new Array<string | undefined>(LATIN1_SLOTS).fill(undefined);

export function latin1(buf: Buffer | string): string {
  // node's parser (the native origin client) already makes latin1 strings.
  if (typeof buf === 'string') return buf;
  const n = buf.length;
  if (n === 0) return '';
  if (n > LATIN1_MAX) return buf.toString('latin1');
  const slot = (n * 31 + buf[0]! * 7 + buf[n >> 1]! * 13 + buf[n - 1]!) & (LATIN1_SLOTS - 1);
  const hit = latin1Cache[slot];
  if (hit !== undefined && hit.length === n) {
    let i = 0;
    while (i < n && hit.charCodeAt(i) === buf[i]) i++;
    if (i === n) return hit;
  }
  const str = buf.toString('latin1');
  latin1Cache[slot] = str;
  return str;
}

/**
 * Response headers for the client from the origin client's raw pairs (undici's Buffers,
 * or the native client's latin1 strings): hop-by-hop fields removed, Via appended. With `keepUpgrade` (a 101 answer to an Upgrade) the Upgrade
 * field is kept and `Connection: upgrade` restored, as the handshake needs both.
 */
export function responseHeaders(raw: readonly (Buffer | string)[], via: string, keepUpgrade = false): string[] {
  const out: string[] = [];
  let tokens: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const kind = hopByHopKind(name);
    if (kind === 0 || kind === HOST || kind === EXPECT || kind === XFF || kind === XFH || kind === XFP || kind === MAX_FORWARDS) {
      out.push(name, latin1(raw[i + 1]!));
    } else if (kind === CONNECTION) {
      const t = connectionTokens([latin1(raw[i + 1]!)]);
      if (t !== null) tokens = tokens === null ? t : tokens.concat(t);
    } else if (kind === UPGRADE && keepUpgrade) {
      out.push(name, latin1(raw[i + 1]!));
    } else if (kind === TRANSFER_ENCODING && !isChunked(raw[i + 1]!)) {
      // undici removes only the chunked framing: a body still in another transfer
      // coding (gzip, …) would reach the client undecodable once this hop-by-hop field
      // is dropped (RFC 9112 §6.1). Not relayed: the response is refused.
      throw Object.assign(new Error('origin response in an unsupported transfer coding'), { code: 'WELDR_BAD_RESPONSE' });
    }
  }
  if (tokens !== null) {
    const filtered: string[] = [];
    for (let i = 0; i < out.length; i += 2) {
      if (!tokens.includes(out[i]!.toLowerCase())) filtered.push(out[i]!, out[i + 1]!);
    }
    out.length = 0;
    out.push(...filtered);
  }
  if (keepUpgrade) out.push('connection', 'upgrade');
  out.push('via', via);
  return out;
}

const CHUNKED = Buffer.from('chunked');

/** Whether a Transfer-Encoding value is exactly `chunked` (any case, surrounding OWS). */
function isChunked(value: Buffer | string): boolean {
  const str = typeof value === 'string';
  const at = (i: number): number => (str ? value.charCodeAt(i) : value[i]!);
  let start = 0;
  let end = value.length;
  while (start < end && (at(start) === 0x20 || at(start) === 0x09)) start++;
  while (end > start && (at(end - 1) === 0x20 || at(end - 1) === 0x09)) end--;
  if (end - start !== CHUNKED.length) return false;
  for (let i = 0; i < CHUNKED.length; i++) if ((at(start + i) | 0x20) !== CHUNKED[i]) return false;
  return true;
}

/** A flat header array without the fields named `lowerName` (case-insensitive). */
export function withoutField(headers: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== lowerName.length || !sameName(name, lowerName)) out.push(name, headers[i + 1]!);
  }
  return out;
}

/** All values of one header (case-insensitive) in a raw array. */
export function rawValues(raw: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && sameName(name, lowerName)) out.push(raw[i + 1]!);
  }
  return out;
}

/** Serialise a status line and raw headers for a socket that no ServerResponse owns. */
export function serializeHead(status: number, reason: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
  return `${head}\r\n`;
}
