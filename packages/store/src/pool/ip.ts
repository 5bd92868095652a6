// Canonical IP literals. A server's identity is "ip:port", so two spellings of the same
// address (1.2.3.4 vs ::ffff:1.2.3.4 aside, which are different sockets) must collapse
// to one string before the command enters the log; otherwise "::1" and "0:0::1" would
// be two servers.

/** A parsed, canonical address. */
export interface CanonicalIp {
  readonly ip: string;
  readonly family: 4 | 6;
}

/** Either the canonical address or the reason the input is not acceptable. */
export type IpParse = { readonly ok: true; readonly value: CanonicalIp } | { readonly ok: false; readonly reason: string };

// Longest valid literal is 45 chars ("ffff:...:255.255.255.255") plus brackets.
const MAX_INPUT_LENGTH = 47;
const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

const NOT_AN_IP = 'must be an IPv4 or IPv6 address literal (hostnames are not accepted)';
// Four decimal parts, one with a leading zero: what a client means by "010.0.0.1" is unclear.
const LEADING_ZERO = /^(?=(?:.*\.)?0[0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}$/;
const LEADING_ZERO_REASON = 'must not have leading zeros in an IPv4 octet (inet_aton would read "010" as octal 8)';

/**
 * Parses an IPv4 dotted quad or an IPv6 literal (optionally in brackets) and returns it
 * in canonical form: IPv4 without leading zeros, IPv6 per RFC 5952 (lower case, longest
 * zero run compressed, IPv4-mapped addresses as ::ffff:a.b.c.d).
 *
 * Rejected on purpose:
 * - hostnames: a replicated pool must mean the same origin on every node, and DNS
 *   answers differ by node and over time;
 * - leading zeros in IPv4 octets ("010.0.0.1"): inet_aton reads them as octal;
 * - IPv6 zone ids ("fe80::1%eth0"): interface names are local to one host, so the
 *   record would not be portable across the cluster;
 * - addresses that can never be a TCP destination: unspecified / "this network"
 *   (0.0.0.0/8, ::), multicast (224.0.0.0/4, ff00::/8) and 255.255.255.255.
 */
export function parseIp(input: string): IpParse {
  if (input.length === 0) return { ok: false, reason: 'must not be empty' };
  if (input.length > MAX_INPUT_LENGTH) return { ok: false, reason: NOT_AN_IP };
  let text = input;
  const bracketed = text.startsWith('[') && text.endsWith(']');
  if (bracketed) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone >= 0) {
    // Only "address%zone" is a zone id; anything else with a '%' (a broken escape such
    // as "%ZZ" left in a URL) is just not an address.
    if (parseIpv6(text.slice(0, zone)) === undefined) return { ok: false, reason: NOT_AN_IP };
    return { ok: false, reason: 'must not carry an IPv6 zone identifier (zones are local to one host)' };
  }
  if (!bracketed && !text.includes(':')) {
    const octets = parseIpv4(text);
    if (octets === undefined) return { ok: false, reason: LEADING_ZERO.test(text) ? LEADING_ZERO_REASON : NOT_AN_IP };
    const unroutable = ipv4Unroutable(octets);
    if (unroutable !== undefined) return { ok: false, reason: unroutable };
    return { ok: true, value: { ip: octets.join('.'), family: 4 } };
  }
  const groups = parseIpv6(text);
  if (groups === undefined) return { ok: false, reason: NOT_AN_IP };
  const unroutable = ipv6Unroutable(groups);
  if (unroutable !== undefined) return { ok: false, reason: unroutable };
  return { ok: true, value: { ip: formatIpv6(groups), family: 6 } };
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    octets.push(n);
  }
  return octets;
}

/** Returns 8 16-bit groups, or undefined when the text is not an IPv6 literal. */
function parseIpv6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? '', halves.length === 1);
  if (head === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const tail = parseGroups(halves[1] ?? '', true);
  if (tail === undefined) return undefined;
  // "::" stands for at least one zero group (RFC 4291 §2.2).
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/**
 * Parses colon-separated hex groups; an embedded dotted quad is allowed as the last
 * element of the address only (allowIpv4Tail), where it stands for two groups.
 */
function parseGroups(text: string, allowIpv4Tail: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (i === parts.length - 1 && allowIpv4Tail && part.includes('.')) {
      const octets = parseIpv4(part);
      if (octets === undefined) return undefined;
      groups.push(((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0));
      continue;
    }
    if (!HEX_GROUP.test(part)) return undefined;
    groups.push(Number.parseInt(part, 16));
  }
  return groups;
}

function isIpv4Mapped(groups: readonly number[]): boolean {
  return groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
}

function formatIpv6(groups: readonly number[]): string {
  if (isIpv4Mapped(groups)) {
    // RFC 5952 §5: IPv4-mapped addresses keep the dotted tail.
    const hi = groups[6] ?? 0;
    const lo = groups[7] ?? 0;
    return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function ipv4Unroutable(octets: readonly number[]): string | undefined {
  const first = octets[0] ?? 0;
  if (first === 0) return 'the unspecified / "this network" range 0.0.0.0/8 is not a valid destination';
  if (first >= 224 && first <= 239) return 'multicast addresses are not valid origins';
  if (octets.every((o) => o === 255)) return 'the broadcast address is not a valid origin';
  return undefined;
}

function ipv6Unroutable(groups: readonly number[]): string | undefined {
  if (groups.every((g) => g === 0)) return 'the unspecified address :: is not a valid destination';
  if (((groups[0] ?? 0) & 0xff00) === 0xff00) return 'multicast addresses are not valid origins';
  if (isIpv4Mapped(groups)) {
    const hi = groups[6] ?? 0;
    const lo = groups[7] ?? 0;
    return ipv4Unroutable([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  }
  return undefined;
}
