import type { OriginFailure } from './errors.js';
import type { Upstream } from './upstream.js';
import type { ProxyStats, ServerStats } from './types.js';

/** Upper bounds (seconds) of the request-duration histogram buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

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
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly durationBuckets: number[] = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  durationSum = 0;
  durationCount = 0;

  observeDuration(seconds: number): void {
    let i = 0;
    const n = DURATION_BUCKETS.length;
    while (i < n && seconds > DURATION_BUCKETS[i]!) i++;
    this.durationBuckets[i]!++;
    this.durationSum += seconds;
    this.durationCount++;
  }
}

export function buildStats(counters: Counters, upstream: Upstream, now: number): ProxyStats {
  const servers: ServerStats[] = upstream.origins.map((o) => {
    const ejected = o.passive.isEjected(now);
    const s: ServerStats = {
      id: o.id,
      ip: o.ip,
      port: o.port,
      weight: o.record.weight,
      success: o.success,
      failed: o.failed,
      health: o.health.health,
      ejected,
      draining: o.draining,
      active: o.active,
    };
    if (ejected) s.ejectedUntil = o.passive.ejectedUntil;
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
    failOpen: upstream.failOpen,
    servers,
  };
}
