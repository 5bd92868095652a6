import type { OriginFailure } from './errors.js';
import type { Upstream } from './upstream.js';
import type { ProxyStats, ServerStats } from './types.js';

/** Upper bounds (seconds) of the request-duration histogram buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Non-cumulative bucket counts (the last slot is +Inf), sum and count: a histogram as plain numbers. */
export interface HistogramData {
  readonly buckets: number[];
  sum: number;
  count: number;
}

export function newHistogram(): HistogramData {
  return { buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
}

/** A plain array increment per observation — about 25× cheaper than prom-client's observe(). */
export function observe(h: HistogramData, seconds: number): void {
  let i = 0;
  const n = DURATION_BUCKETS.length;
  while (i < n && seconds > DURATION_BUCKETS[i]!) i++;
  h.buckets[i]!++;
  h.sum += seconds;
  h.count++;
}

function addHistogram(into: HistogramData, h: HistogramData): void {
  for (let i = 0; i < into.buckets.length; i++) into.buckets[i]! += h.buckets[i] ?? 0;
  into.sum += h.sum;
  into.count += h.count;
}

/**
 * Plain counters bumped on the hot path and read by `stats()` and by the metrics
 * collectors at scrape time — no prom-client call per request.
 */
export class Counters {
  clientSuccess = 0;
  clientFailed = 0;
  serverSuccess = 0;
  serverFailed = 0;
  /** Exchanges in flight (requests and tunnels). */
  active = 0;
  /** Responses sent to clients by status class: index 1..5 = 1xx..5xx. */
  readonly byClass: number[] = [0, 0, 0, 0, 0, 0];
  readonly failures: Record<OriginFailure, number> = { refused: 0, reset: 0, timeout: 0, bad_response: 0 };
  /** Limits (ProxyLimits): connections and requests refused, times reading was paused. */
  refusedConnections = 0;
  refusedPerSource = 0;
  acceptErrors = 0;
  pipelineRefused = 0;
  pipelinePaused = 0;
  refusedBodyRate = 0;
  /** TLS handshakes that failed (bad client hello, no shared protocol or cipher, timeout). */
  tlsHandshakeFailed = 0;
  /** Client connections open now (set by the listener). */
  connections = 0;
  /** Access-log lines dropped because the destination could not keep up. */
  accessLogDropped = 0;
  readonly duration: HistogramData = newHistogram();

  observeDuration(seconds: number): void {
    observe(this.duration, seconds);
  }
}

/** What Counters holds, as plain data (sent between processes, summed over workers). */
export type CounterValues = { -readonly [K in keyof Counters as Counters[K] extends (...a: never[]) => unknown ? never : K]: Counters[K] };

/** One origin's request figures in one process (see Origin). */
export interface OriginCounters {
  readonly id: string;
  success: number;
  failed: number;
  /** Requests in flight to it. */
  active: number;
  /** Origin responses by status class: index 1..5 = 1xx..5xx. */
  readonly byClass: number[];
  readonly failures: Record<OriginFailure, number>;
  /** Attempt durations: from dispatch to the end of the response (or the failure). */
  readonly duration: HistogramData;
  /** Passive ejection (epoch ms) in this process; 0 when not ejected. */
  ejectedUntil: number;
  /** Connections open to it, and requests waiting for one (originMaxConnections reached). */
  connected: number;
  queued: number;
}

/**
 * The data plane's figures in one process, or summed over the worker processes of a
 * node: what stats(), /stats/detail and /metrics are built from.
 */
export interface DataPlaneCounters {
  readonly counters: CounterValues;
  /** Origins of the process's current snapshot only: removed origins drop out (bounded label cardinality). */
  readonly origins: OriginCounters[];
  failOpen: boolean;
}

export function zeroCounters(): CounterValues {
  const c = new Counters();
  return copyCounters(c);
}

function copyCounters(c: CounterValues): CounterValues {
  return {
    clientSuccess: c.clientSuccess,
    clientFailed: c.clientFailed,
    serverSuccess: c.serverSuccess,
    serverFailed: c.serverFailed,
    active: c.active,
    byClass: [...c.byClass],
    failures: { ...c.failures },
    refusedConnections: c.refusedConnections,
    refusedPerSource: c.refusedPerSource,
    acceptErrors: c.acceptErrors,
    pipelineRefused: c.pipelineRefused,
    pipelinePaused: c.pipelinePaused,
    refusedBodyRate: c.refusedBodyRate,
    tlsHandshakeFailed: c.tlsHandshakeFailed,
    connections: c.connections,
    accessLogDropped: c.accessLogDropped,
    duration: { buckets: [...c.duration.buckets], sum: c.duration.sum, count: c.duration.count },
  };
}

/** This process's figures, copied (safe to send to another process). */
/**
 * This process's figures as plain data. `omitIdle` leaves out the origins with no figure
 * at all (never answered or failed here, not ejected, no connection): what a worker
 * reports, summed with the node process's own figures, which list every origin of the
 * snapshot. With 10,000 origins and traffic to a few, a report is kilobytes, not
 * megabytes of JSON parsed by the node's event loop, which also runs Raft.
 */
export function snapshotCounters(counters: Counters, upstream: Upstream, now: number, omitIdle = false): DataPlaneCounters {
  const list = omitIdle ? upstream.origins.filter((o) => !isIdle(o, now)) : upstream.origins;
  return {
    counters: copyCounters(counters),
    origins: list.map((o) => ({
      id: o.id,
      success: o.success,
      failed: o.failed,
      active: o.active,
      byClass: [...o.byClass],
      failures: { ...o.failures },
      duration: { buckets: [...o.duration.buckets], sum: o.duration.sum, count: o.duration.count },
      ejectedUntil: o.passive.isEjected(now) ? o.passive.ejectedUntil : 0,
      connected: o.openPool?.stats.connected ?? 0,
      queued: o.openPool?.stats.queued ?? 0,
    })),
    failOpen: upstream.failOpen,
  };
}

function isIdle(o: Upstream['origins'][number], now: number): boolean {
  if (o.success !== 0 || o.failed !== 0 || o.active !== 0 || o.duration.count !== 0 || o.passive.isEjected(now)) return false;
  if ((o.openPool?.stats.connected ?? 0) !== 0 || (o.openPool?.stats.queued ?? 0) !== 0) return false;
  for (const n of o.byClass) if (n !== 0) return false;
  for (const k in o.failures) if (o.failures[k as keyof typeof o.failures] !== 0) return false;
  return true;
}

/**
 * Sum the figures of several processes (a node's workers). Origins are matched by id;
 * an origin is ejected when any worker has it ejected (until the latest end), and the
 * node fails open when any worker does.
 */
const FAILURE_KEYS: readonly OriginFailure[] = ['refused', 'reset', 'timeout', 'bad_response'];

export function mergeCounters(parts: readonly DataPlaneCounters[]): DataPlaneCounters {
  const total = zeroCounters();
  const origins = new Map<string, OriginCounters>();
  let failOpen = false;
  for (const p of parts) {
    const c = p.counters;
    total.clientSuccess += c.clientSuccess;
    total.clientFailed += c.clientFailed;
    total.serverSuccess += c.serverSuccess;
    total.serverFailed += c.serverFailed;
    total.active += c.active;
    for (let i = 0; i < total.byClass.length; i++) total.byClass[i]! += c.byClass[i] ?? 0;
    for (const k of Object.keys(total.failures) as OriginFailure[]) total.failures[k] += c.failures[k] ?? 0;
    total.refusedConnections += c.refusedConnections;
    total.refusedPerSource += c.refusedPerSource;
    total.acceptErrors += c.acceptErrors;
    total.pipelineRefused += c.pipelineRefused;
    total.pipelinePaused += c.pipelinePaused;
    total.refusedBodyRate += c.refusedBodyRate;
    total.tlsHandshakeFailed += c.tlsHandshakeFailed;
    total.connections += c.connections;
    total.accessLogDropped += c.accessLogDropped;
    addHistogram(total.duration, c.duration);
    failOpen ||= p.failOpen;
    for (const o of p.origins) {
      let into = origins.get(o.id);
      if (into === undefined) {
        // The first process to list an origin: a copy of its figures (the others add to it).
        into = {
          id: o.id,
          success: o.success,
          failed: o.failed,
          active: o.active,
          byClass: o.byClass.slice(),
          failures: { refused: o.failures.refused ?? 0, reset: o.failures.reset ?? 0, timeout: o.failures.timeout ?? 0, bad_response: o.failures.bad_response ?? 0 },
          duration: { buckets: o.duration.buckets.slice(), sum: o.duration.sum, count: o.duration.count },
          ejectedUntil: o.ejectedUntil,
          connected: o.connected,
          queued: o.queued,
        };
        origins.set(o.id, into);
        continue;
      }
      into.success += o.success;
      into.failed += o.failed;
      into.active += o.active;
      for (let i = 0; i < into.byClass.length; i++) into.byClass[i]! += o.byClass[i] ?? 0;
      for (const k of FAILURE_KEYS) into.failures[k] += o.failures[k] ?? 0;
      addHistogram(into.duration, o.duration);
      into.ejectedUntil = Math.max(into.ejectedUntil, o.ejectedUntil);
      into.connected += o.connected;
      into.queued += o.queued;
    }
  }
  return { counters: total, origins: [...origins.values()], failOpen };
}

/** Request totals of one node, without the per-server list (what GET /stats shows). */
export interface DataPlaneTotals {
  readonly client: { readonly success: number; readonly failed: number };
  readonly server: { readonly success: number; readonly failed: number };
  readonly failOpen: boolean;
  /** Requests in flight to origins, summed over every origin listed (draining ones too). */
  readonly originActive: number;
}

/**
 * The totals of several processes' figures, summed without matching origins up: a cost
 * in the number of origins listed, with no allocation per origin (mergeCounters builds
 * a merged record for each).
 */
export function sumTotals(parts: readonly DataPlaneCounters[]): DataPlaneTotals {
  let clientSuccess = 0;
  let clientFailed = 0;
  let serverSuccess = 0;
  let serverFailed = 0;
  let failOpen = false;
  let originActive = 0;
  for (const p of parts) {
    clientSuccess += p.counters.clientSuccess;
    clientFailed += p.counters.clientFailed;
    serverSuccess += p.counters.serverSuccess;
    serverFailed += p.counters.serverFailed;
    failOpen ||= p.failOpen;
    for (const o of p.origins) originActive += o.active;
  }
  return { client: { success: clientSuccess, failed: clientFailed }, server: { success: serverSuccess, failed: serverFailed }, failOpen, originActive };
}

/**
 * ProxyStats from figures (this process's, or a node's workers' summed) and the
 * upstream that knows the servers of the current snapshot and their health. Only the
 * snapshot's servers are listed; figures of an origin no process knows are zero.
 */
export function buildStats(data: DataPlaneCounters, upstream: Upstream, now: number): ProxyStats {
  const byId = new Map<string, OriginCounters>();
  for (const o of data.origins) byId.set(o.id, o);
  const counters = data.counters;
  const servers: ServerStats[] = upstream.origins.map((o) => {
    const figures = byId.get(o.id);
    const ejectedUntil = Math.max(figures?.ejectedUntil ?? 0, o.passive.isEjected(now) ? o.passive.ejectedUntil : 0);
    const ejected = ejectedUntil > now;
    const s: ServerStats = {
      id: o.id,
      ip: o.ip,
      port: o.port,
      weight: o.record.weight,
      success: figures?.success ?? 0,
      failed: figures?.failed ?? 0,
      health: o.health.health,
      ejected,
      draining: o.draining,
      active: figures?.active ?? 0,
    };
    if (ejected) s.ejectedUntil = ejectedUntil;
    if (o.health.lastCheck !== undefined) {
      s.lastCheck = { ...o.health.lastCheck };
      s.recentChecks = o.health.recentChecks();
    }
    return s;
  });
  return {
    active: counters.active,
    connections: counters.connections,
    limits: {
      connectionsRefused: counters.refusedConnections,
      perSourceRefused: counters.refusedPerSource,
      acceptErrors: counters.acceptErrors,
      pipelineRefused: counters.pipelineRefused,
      pipelinePaused: counters.pipelinePaused,
      bodyRateRefused: counters.refusedBodyRate,
      tlsHandshakeFailed: counters.tlsHandshakeFailed,
    },
    client: { success: counters.clientSuccess, failed: counters.clientFailed },
    server: { success: counters.serverSuccess, failed: counters.serverFailed },
    failOpen: data.failOpen,
    servers,
  };
}
