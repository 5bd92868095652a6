// `weldr drill` options: parsed and checked before anything is contacted (a mistake is
// exit 2, nothing sent). Durations as everywhere: 500ms, 10s, 2m.
import { isIP } from 'node:net';
import { ConfigError } from '../config/config-error.js';
import { parseDuration, ValueError } from '../config/values.js';
import { stringFlag, type FlagValues } from '../ctl/common-options.js';

export const DRILL_KINDS = ['transfer', 'step-down', 'isolate', 'kill', 'pause'] as const;
export type DrillKind = (typeof DRILL_KINDS)[number];

export interface Thresholds {
  /** Worst time from the fault to a new active node. */
  readonly maxFailoverMs?: number;
  /** Worst time from the fault to the first proxied request served through the new active node. */
  readonly maxServedMs?: number;
  /** Worst time from the fault to the first acknowledged write sent after it. */
  readonly maxWriteMs?: number;
  readonly maxFailedRequests?: number;
  readonly maxFailedWrites?: number;
}

export type TrafficTarget = { readonly kind: 'members' } | { readonly kind: 'urls'; readonly urls: readonly string[] } | { readonly kind: 'vip'; readonly url: string };

export interface DrillOptions {
  readonly kind: DrillKind;
  readonly rounds: number;
  /** Steady traffic between the end of one round and the next fault. */
  readonly intervalMs: number;
  readonly seed: number;
  /** pause and isolate: how long the fault lasts. */
  readonly faultMs: number;
  /** A round gives up waiting for a new active node, a served request and a write after this long. */
  readonly roundTimeoutMs: number;
  /** The cluster must be healthy again (a killed member back) within this long. */
  readonly healTimeoutMs: number;
  /** A request or write slower than this counts as slow. */
  readonly slowMs: number;
  readonly target: TrafficTarget;
  /** kill and pause: where the members' PIDs come from. */
  readonly pids: { readonly kind: 'file'; readonly path: string } | { readonly kind: 'list'; readonly pids: ReadonlyMap<string, number> } | undefined;
  readonly thresholds: Thresholds;
  /** Proxied requests per second. */
  readonly rate: number;
  readonly quiet: boolean;
}

export const DRILL_FLAGS = {
  kind: { type: 'string' },
  rounds: { type: 'string' },
  interval: { type: 'string' },
  seed: { type: 'string' },
  'fault-duration': { type: 'string' },
  'round-timeout': { type: 'string' },
  'heal-timeout': { type: 'string' },
  slow: { type: 'string' },
  target: { type: 'string', multiple: true },
  vip: { type: 'string' },
  pids: { type: 'string' },
  rate: { type: 'string' },
  'max-failover': { type: 'string' },
  'max-served': { type: 'string' },
  'max-write': { type: 'string' },
  'max-failed-requests': { type: 'string' },
  'max-failed-writes': { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

export const DRILL_FLAG_HELP = `  --kind KIND              transfer, step-down, isolate, kill or pause (required)
  --rounds N               faults to inject, one after another (default 3)
  --interval DURATION      steady traffic between rounds (default 2s)
  --seed N                 seeds the random choices (jitter, transfer targets) (default: random, printed)
  --fault-duration DUR     pause, isolate: how long the fault lasts (default 3s)
  --round-timeout DUR      give up on a round's failover after this long (default 20s)
  --heal-timeout DUR       the cluster must be healthy again within this long (default 60s)
  --slow DURATION          a request or write slower than this counts as slow (default 500ms)
  --target URL             send the steady traffic to URL (repeatable, in turn); default: the
                           proxy of the member answering /ready, as a load balancer would
  --vip ADDRESS[:PORT]     send the steady traffic to the virtual IP (port default 80)
  --pids FILE|ID=PID,…     kill, pause: the members' PIDs (default ./data/dev-cluster.pids, kept
                           current by 'weldr dev-cluster' when it restarts a member)
  --rate N                 proxied requests per second, sent on schedule (default 100)
  --max-failover DUR       fail (exit 6) when a round took longer to get a new active node
  --max-served DUR         … to serve a proxied request through the new active node
  --max-write DUR          … to acknowledge a write sent after the fault
  --max-failed-requests N  fail when more proxied requests failed in all
  --max-failed-writes N    fail when more writes failed in all
  --quiet                  no progress lines on stderr
`;

function duration(values: FlagValues, key: string, fallback: number): number {
  const raw = stringFlag(values, key);
  if (raw === undefined) return fallback;
  try {
    return parseDuration(raw);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(`invalid value for --${key}: ${err.message}`);
    throw err;
  }
}

function integer(values: FlagValues, key: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const raw = stringFlag(values, key);
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) throw new ConfigError(`invalid value for --${key}: "${raw}" is not a whole number in [${min}, ${max}]`);
  return Number(raw);
}

function targetUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new ConfigError(`--target: "${raw}" is not a URL (e.g. http://10.0.0.100/)`);
  }
  if (url.protocol !== 'http:') throw new ConfigError(`--target: "${raw}" must be an http:// URL`);
  return url.href;
}

/** `10.0.0.100`, `10.0.0.100:8080`, `[fd00::100]:8080` → the URL the traffic goes to. */
export function vipUrl(raw: string): string {
  const text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::([0-9]{1,5}))?$/.exec(text);
  let host: string;
  let port = '80';
  if (bracketed !== null) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = bracketed[2];
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const m = /^([^:]+)(?::([0-9]{1,5}))?$/.exec(text);
    if (m === null) throw new ConfigError(`--vip: "${raw}" is not ADDRESS[:PORT]`);
    host = m[1]!;
    if (m[2] !== undefined) port = m[2];
  }
  if (isIP(host) === 0) throw new ConfigError(`--vip: "${host}" is not an IP address`);
  if (Number(port) < 1 || Number(port) > 65535) throw new ConfigError(`--vip: port ${port} is out of range`);
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;
}

/** `ID=PID,ID=PID` */
function pidList(raw: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of raw.split(',')) {
    const m = /^\s*([A-Za-z0-9][A-Za-z0-9_.-]{0,62})=([0-9]{1,10})\s*$/.exec(part);
    if (m === null) throw new ConfigError(`--pids: "${part}" is not ID=PID`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

export function parseDrillOptions(values: FlagValues, random: () => number = Math.random): DrillOptions {
  const kindRaw = stringFlag(values, 'kind');
  if (kindRaw === undefined) throw new ConfigError(`needs --kind: one of ${DRILL_KINDS.join(', ')}`);
  if (!(DRILL_KINDS as readonly string[]).includes(kindRaw)) throw new ConfigError(`--kind: "${kindRaw}" is not one of ${DRILL_KINDS.join(', ')}`);
  const kind = kindRaw as DrillKind;
  const rawTargets = values['target'];
  const targets = (Array.isArray(rawTargets) ? rawTargets : rawTargets === undefined ? [] : [rawTargets]).filter((v): v is string => typeof v === 'string');
  const vip = stringFlag(values, 'vip');
  if (targets.length > 0 && vip !== undefined) throw new ConfigError('give either --target or --vip, not both');
  const target: TrafficTarget = vip !== undefined ? { kind: 'vip', url: vipUrl(vip) } : targets.length > 0 ? { kind: 'urls', urls: targets.map(targetUrl) } : { kind: 'members' };
  const pidsRaw = stringFlag(values, 'pids');
  let pids: DrillOptions['pids'];
  if (kind === 'kill' || kind === 'pause') {
    pids = pidsRaw === undefined ? { kind: 'file', path: './data/dev-cluster.pids' } : /^[^=,/]+=/.test(pidsRaw) ? { kind: 'list', pids: pidList(pidsRaw) } : { kind: 'file', path: pidsRaw };
  } else if (pidsRaw !== undefined) {
    throw new ConfigError(`--pids is for --kind kill and pause; ${kind} goes through the admin API`);
  }
  const seedRaw = stringFlag(values, 'seed');
  if (seedRaw !== undefined && !/^[0-9]{1,10}$/.test(seedRaw)) throw new ConfigError(`invalid value for --seed: "${seedRaw}" is not a whole number`);
  const thresholds: { -readonly [K in keyof Thresholds]: Thresholds[K] } = {};
  for (const [flag, key] of [['max-failover', 'maxFailoverMs'], ['max-served', 'maxServedMs'], ['max-write', 'maxWriteMs']] as const) {
    if (stringFlag(values, flag) !== undefined) thresholds[key] = duration(values, flag, 0);
  }
  const failedRequests = integer(values, 'max-failed-requests', undefined, 0, 1e9);
  if (failedRequests !== undefined) thresholds.maxFailedRequests = failedRequests;
  const failedWrites = integer(values, 'max-failed-writes', undefined, 0, 1e9);
  if (failedWrites !== undefined) thresholds.maxFailedWrites = failedWrites;
  const faultMs = duration(values, 'fault-duration', 3_000);
  if ((kind === 'isolate' || kind === 'pause') && faultMs > 600_000) throw new ConfigError('--fault-duration is at most 10m');
  return {
    kind,
    rounds: integer(values, 'rounds', 3, 1, 1000)!,
    intervalMs: stringFlag(values, 'interval') === undefined ? 2_000 : duration(values, 'interval', 2_000),
    seed: seedRaw === undefined ? Math.floor(random() * 2 ** 31) : Number(seedRaw),
    faultMs,
    roundTimeoutMs: duration(values, 'round-timeout', 20_000),
    healTimeoutMs: duration(values, 'heal-timeout', 60_000),
    slowMs: duration(values, 'slow', 500),
    target,
    pids,
    thresholds,
    rate: integer(values, 'rate', 100, 1, 10_000)!,
    quiet: values['quiet'] === true,
  };
}

/** A small seeded generator (mulberry32): the same seed gives the same drill choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
