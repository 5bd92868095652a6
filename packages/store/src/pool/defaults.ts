import type { HealthCheckSpec, PassiveHealthSpec, PoolSettings, ServerRecord } from './types.js';

// Seed-compatible defaults (DESIGN.md "Defaults"): GET / every 2 s, timeout 1 s,
// healthy after 2 passes, unhealthy after 3 failures. No jitter by default so the
// documented interval is the observed one; operators with many origins can add it.
export const DEFAULT_HEALTH_CHECK: HealthCheckSpec = Object.freeze({
  enabled: true,
  method: 'GET',
  path: '/',
  intervalMs: 2_000,
  timeoutMs: 1_000,
  // 2xx and 3xx pass, as in HAProxy's default httpchk.
  expectedStatus: Object.freeze({ min: 200, max: 399 }),
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  jitterMs: 0,
});

// Envoy's outlier-detection defaults: 5 consecutive failures, 30 s base ejection, 300 s cap.
export const DEFAULT_PASSIVE_HEALTH: PassiveHealthSpec = Object.freeze({
  enabled: true,
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
});

export const DEFAULT_SETTINGS: PoolSettings = Object.freeze({
  balancer: 'round-robin',
  healthCheck: DEFAULT_HEALTH_CHECK,
  passiveHealth: DEFAULT_PASSIVE_HEALTH,
});

/** Default weight of a server added without one. */
export const DEFAULT_WEIGHT = 1;

/**
 * The health check that actually applies to a server: the pool defaults with the
 * server's overrides laid over them. The proxy calls this when a snapshot arrives.
 */
export function effectiveHealthCheck(settings: PoolSettings, server: Pick<ServerRecord, 'healthCheck'>): HealthCheckSpec {
  const o = server.healthCheck;
  return {
    ...settings.healthCheck,
    ...o,
    expectedStatus: o.expectedStatus ?? settings.healthCheck.expectedStatus,
  };
}
