// The files `weldr servers export` writes and `weldr servers import` reads.
//
// 1. The export format (JSON), which reproduces the pool and the settings exactly:
//      {"format":"weldr-pool/v1","index":42,"settings":{…complete PoolSettings…},
//       "servers":[{"ip":"10.0.0.1","port":80,"weight":1,"healthCheck":{},"draining":false},…]}
//    `index` (the applied index the export reflects) is informational; `settings` may be
//    left out, and in a server only ip and port are required.
// 2. A plain server list, to move from HAProxy, nginx or a hand-written list: one server
//    per line, `#` comments and blank lines ignored —
//      10.0.0.1:80                      plain
//      10.0.0.2:80 weight=5             plain with a weight
//      server web1 10.0.0.3:80 weight 3 check inter 2s disabled     (HAProxy backend line)
//      server 10.0.0.4:80 weight=2 max_fails=3 down;                (nginx upstream line)
//    `weight` is kept; HAProxy `disabled` / nginx `down` become draining; other
//    parameters are reported and ignored (weldr's health checks are pool settings).
//    Host names are refused: weldr's pool holds IP addresses.
import { duplicateJsonKey, type HealthCheckOverrides, type PoolSettings } from '@weldr/store';
import { BOUNDS, parseIp } from '@weldr/store';
import { ConfigError } from '../config/config-error.js';
import { parseServerAddress } from './address.js';

export const POOL_FORMAT = 'weldr-pool/v1';

export interface PoolFileServer {
  readonly ip: string;
  readonly port: number;
  readonly weight?: number;
  readonly healthCheck?: HealthCheckOverrides;
  readonly draining?: boolean;
}

export interface PoolFile {
  readonly format: typeof POOL_FORMAT;
  readonly index?: number;
  readonly settings?: PoolSettings;
  readonly servers: readonly PoolFileServer[];
}

export interface ParsedPoolFile {
  readonly kind: 'export' | 'list';
  readonly settings: PoolSettings | undefined;
  readonly servers: readonly PoolFileServer[];
  /** Parameters of a server list that weldr does not carry over, per line. */
  readonly ignored: readonly string[];
}

const SERVER_KEYS = new Set(['ip', 'port', 'weight', 'healthCheck', 'draining']);
const FILE_KEYS = new Set(['format', 'index', 'exportedAt', 'settings', 'servers']);

/** Parses either format; every problem is a ConfigError naming the file and place. */
export function parsePoolFile(text: string, name: string): ParsedPoolFile {
  const body = text.replace(/^\uFEFF/, '');
  return body.trimStart().startsWith('{') ? parseExport(body, name) : parseServerList(body, name);
}

function parseExport(text: string, name: string): ParsedPoolFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${name} is not valid JSON: ${(err as Error).message}`);
  }
  const duplicate = duplicateJsonKey(text);
  if (duplicate !== undefined) throw new ConfigError(`${name}: the key ${JSON.stringify(duplicate)} appears more than once in one object`);
  const doc = value as Record<string, unknown>;
  if (doc['format'] !== POOL_FORMAT) throw new ConfigError(`${name}: "format" must be "${POOL_FORMAT}" (a file written by 'weldr servers export'), or give a plain list of IP:PORT lines`);
  for (const key of Object.keys(doc)) if (!FILE_KEYS.has(key)) throw new ConfigError(`${name}: unknown key "${key}"`);
  const servers = doc['servers'];
  if (!Array.isArray(servers)) throw new ConfigError(`${name}: "servers" must be an array`);
  const out: PoolFileServer[] = servers.map((s: unknown, i) => {
    const where = `${name}: servers[${i}]`;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new ConfigError(`${where} must be an object with ip and port`);
    const rec = s as Record<string, unknown>;
    for (const key of Object.keys(rec)) if (!SERVER_KEYS.has(key)) throw new ConfigError(`${where}: unknown key "${key}"`);
    if (typeof rec['ip'] !== 'string') throw new ConfigError(`${where}.ip must be a string`);
    if (typeof rec['port'] !== 'number' && typeof rec['port'] !== 'string') throw new ConfigError(`${where}.port must be a number`);
    if (rec['draining'] !== undefined && typeof rec['draining'] !== 'boolean') throw new ConfigError(`${where}.draining must be true or false`);
    // Weight, port and health-check values are checked by the admin API, which names the field.
    return rec as unknown as PoolFileServer;
  });
  const settings = doc['settings'];
  if (settings !== undefined && (settings === null || typeof settings !== 'object' || Array.isArray(settings))) throw new ConfigError(`${name}: "settings" must be an object`);
  return { kind: 'export', settings: settings as PoolSettings | undefined, servers: out, ignored: [] };
}

const HOST_PORT_LIKE = /^(\[[0-9a-fA-F:.]+\]|[^\s:]+):[0-9]+$/;

function parseServerList(text: string, name: string): ParsedPoolFile {
  const servers: PoolFileServer[] = [];
  const ignored: string[] = [];
  for (const [i, rawLine] of text.split(/\r?\n/).entries()) {
    const where = `${name} line ${i + 1}`;
    const line = rawLine.replace(/#.*$/, '').trim().replace(/;$/, '').trim();
    if (line === '') continue;
    let tokens = line.split(/\s+/);
    if (tokens[0] === 'server') {
      // nginx: server ADDR [params]; HAProxy: server NAME ADDR [params].
      tokens = HOST_PORT_LIKE.test(tokens[1] ?? '') || tokens.length === 2 ? tokens.slice(1) : tokens.slice(2);
    }
    const [addressText, ...params] = tokens;
    if (addressText === undefined) throw new ConfigError(`${where}: expected IP:PORT`);
    const address = parseServerAddress(addressText, where);
    const ip = parseIp(address.ip);
    if (!ip.ok) {
      if (/[a-z]/i.test(address.ip) && !address.ip.includes(':')) throw new ConfigError(`${where}: "${address.ip}" is a host name; weldr's pool holds IP addresses — resolve it and list the address`);
      throw new ConfigError(`${where}: "${address.ip}" ${ip.reason}`);
    }
    let weight: number | undefined;
    let draining = false;
    const skipped: string[] = [];
    for (let p = 0; p < params.length; p++) {
      const param = params[p]!;
      const inline = /^weight=(.*)$/.exec(param);
      if (inline !== null || param === 'weight') {
        const raw = inline !== null ? inline[1]! : params[++p];
        const n = Number(raw);
        const { min, max } = BOUNDS.weight;
        if (raw === undefined || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${where}: weight must be an integer ${min}-${max}, got ${raw ?? 'nothing'}`);
        weight = n;
      } else if (param === 'disabled' || param === 'down') {
        draining = true;
      } else {
        skipped.push(param);
      }
    }
    if (skipped.length > 0) ignored.push(`${where}: ignored ${skipped.join(' ')}`);
    servers.push({ ...address, ...(weight === undefined ? {} : { weight }), ...(draining ? { draining } : {}) });
  }
  if (servers.length === 0) throw new ConfigError(`${name} lists no servers (expected IP:PORT lines or a 'weldr servers export' file)`);
  return { kind: 'list', settings: undefined, servers, ignored };
}
