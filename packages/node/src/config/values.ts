// Parsers for configuration values. Each takes the raw value (a string from a flag or
// an environment variable, any JSON value from the config file) and returns the typed
// value or throws a ConfigError-ready message (the caller adds where it came from).
import { isIP } from 'node:net';

/** Thrown by a value parser; the loader prefixes the flag, variable or key. */
export class ValueError extends Error {
  override readonly name = 'ValueError';
}

export interface HostPort {
  /** IP address or host name, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

export interface Peer {
  readonly id: string;
  readonly address: HostPort;
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function asString(raw: unknown, expected: string): string {
  if (typeof raw !== 'string') throw new ValueError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  return raw;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `host:port` or `[ipv6]:port`; port 0 (ephemeral) only when allowEphemeral. */
export function parseHostPort(raw: unknown, allowEphemeral = true): HostPort {
  const expected = 'host:port (e.g. 127.0.0.1:8080 or [::1]:8080)';
  const value = asString(raw, expected).trim();
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
    if (isIP(host) !== 6) throw new ValueError(`"${value}" is not a valid ${expected}`);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0 || value.indexOf(':') !== colon) throw new ValueError(`"${value}" is not a valid ${expected}`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    // "999.1.1.1" or "1.2.3.4.5" match the host name syntax but are mistyped addresses
    // (a top-level label is never numeric, RFC 3696 §2): refuse them here rather than
    // fail later with a DNS error.
    if (isIP(host) === 0 && /^[0-9.]+$/.test(host)) throw new ValueError(`"${host}" in "${value}" is not a valid IPv4 address`);
    if (isIP(host) === 0 && !HOSTNAME.test(host)) throw new ValueError(`"${host}" in "${value}" is not an IP address or host name`);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw new ValueError(`"${value}" is not a valid ${expected}`);
  const port = Number(portText);
  const min = allowEphemeral ? 0 : 1;
  if (port < min || port > 65535) throw new ValueError(`port ${port} in "${value}" is out of range [${min}, 65535]`);
  return { host, port };
}

/** What a node id may be (flags, peer lists, relay headers). */
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function parseNodeId(raw: unknown): string {
  const value = asString(raw, 'a node id');
  if (!NODE_ID.test(value)) {
    throw new ValueError(`"${value}" is not a valid node id (1-63 characters: letters, digits, '.', '_', '-'; starting with a letter or digit)`);
  }
  return value;
}

/** `id=host:port,id=host:port`, or in the config file an array of such strings. */
export function parsePeers(raw: unknown): Peer[] {
  let items: unknown[];
  if (typeof raw === 'string') items = raw.trim() === '' ? [] : raw.split(',');
  else if (Array.isArray(raw)) items = raw;
  else throw new ValueError(`expected "id=host:port,…" or an array of "id=host:port", got ${JSON.stringify(raw)}`);
  const peers: Peer[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const text = asString(item, '"id=host:port"').trim();
    const eq = text.indexOf('=');
    if (eq < 0) throw new ValueError(`"${text}" is not of the form id=host:port`);
    const id = parseNodeId(text.slice(0, eq));
    if (seen.has(id)) throw new ValueError(`peer id "${id}" appears twice`);
    seen.add(id);
    peers.push({ id, address: parseHostPort(text.slice(eq + 1), false) });
  }
  return peers;
}

const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;
/** One day: anything longer is surely a unit mistake. */
const MAX_DURATION_MS = 86_400_000;

/** The shortest exact spelling of a duration: 300000 → "5m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms > 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** `500ms`, `10s`, `2m`, or a plain number of milliseconds. 0 allowed only when allowZero. */
export function parseDuration(raw: unknown, allowZero = false): number {
  let ms: number;
  if (typeof raw === 'number') {
    ms = raw;
  } else {
    const text = asString(raw, 'a duration such as 500ms, 10s or 2m').trim();
    const m = DURATION.exec(text);
    if (!m) throw new ValueError(`"${text}" is not a duration (use e.g. 500ms, 10s, 2m or a number of milliseconds)`);
    ms = Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS];
  }
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms < 0) {
    throw new ValueError(`${JSON.stringify(raw)} is not a whole, non-negative number of milliseconds`);
  }
  if (ms === 0 && !allowZero) throw new ValueError('must be greater than 0');
  if (ms > MAX_DURATION_MS) throw new ValueError(`${JSON.stringify(raw)} is longer than one day`);
  return ms;
}

export function parseEnum<T extends string>(allowed: readonly T[]): (raw: unknown) => T {
  return (raw) => {
    const value = asString(raw, `one of ${allowed.join(', ')}`);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ValueError(`"${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  };
}

export function parsePath(raw: unknown): string {
  const value = asString(raw, 'a directory path');
  if (value.trim() === '' || value.includes('\0')) throw new ValueError(`"${value}" is not a usable path`);
  return value;
}

/** A DNS host name (no port), e.g. for TLS server-name verification. */
export function parseDnsName(raw: unknown): string {
  const value = asString(raw, 'a host name').trim();
  if (!HOSTNAME.test(value) || isIP(value) !== 0) throw new ValueError(`"${value}" is not a DNS host name`);
  return value.toLowerCase();
}

/** `a.pem,b.pem`, or in the config file an array of paths; no empty entries. */
export function parsePathList(raw: unknown): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : undefined;
  if (items === undefined) throw new ValueError(`expected "FILE,FILE…" or an array of paths, got ${JSON.stringify(raw)}`);
  return items.map((item) => parsePath(typeof item === 'string' ? item.trim() : item));
}

/** A whole number in [min, max], from a decimal string or a JSON number. */
export function parseInteger(min: number, max: number): (raw: unknown) => number {
  return (raw) => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*[0-9]+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new ValueError(`${JSON.stringify(raw)} is not a whole number in [${min}, ${max}]`);
    return n;
  };
}

/** A secret: printable ASCII without spaces (it travels in an Authorization header), 16+ characters. */
/** An admin URL: http(s)://host:port with no path (the admin API of a cluster member). */
export function parseAdminUrl(raw: unknown): string {
  const value = asString(raw, 'an admin URL such as http://10.0.0.1:8687').trim();
  const m = /^(https?):\/\/([^/]+?)\/?$/i.exec(value);
  if (m === null) throw new ValueError(`"${value}" is not an admin URL (http://host:port or https://host:port, no path)`);
  const address = parseHostPort(m[2]!, false);
  return `${m[1]!.toLowerCase()}://${formatHostPort(address)}`;
}

/** A shell command line for a hook: non-empty, one line, at most 4096 characters. */
export function parseCommand(raw: unknown): string {
  const value = asString(raw, 'a command').trim();
  if (value.length === 0 || value.length > 4096 || /[\r\n\0]/.test(value)) throw new ValueError('must be one non-empty line of at most 4096 characters');
  return value;
}

/** A file path (existence and contents are checked when the node starts). */
export function parseFile(raw: unknown): string {
  const value = asString(raw, 'a file path');
  if (value.trim() === '' || value.includes('\0')) throw new ValueError(`"${value}" is not a usable file path`);
  return value;
}

/** true/false (also 1/0, yes/no), or a JSON boolean in the config file. */
export function parseBoolean(raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const value = asString(raw, 'true or false').trim().toLowerCase();
  if (value === 'true' || value === '1' || value === 'yes') return true;
  if (value === 'false' || value === '0' || value === 'no') return false;
  throw new ValueError(`"${value}" is not true or false`);
}

export function parseToken(raw: unknown): string {
  const value = asString(raw, 'a token');
  if (!/^[\x21-\x7e]{16,4096}$/.test(value)) throw new ValueError('must be 16 to 4096 printable ASCII characters without spaces');
  return value;
}
