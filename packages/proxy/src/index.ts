// @weldr/proxy — the data plane. See README.md for phases, errors and health semantics.
export const PACKAGE = '@weldr/proxy';

export { createProxy } from './proxy.js';
export { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, ORIGIN_CLIENTS } from './types.js';
export type { OriginClientKind } from './types.js';
export type { OriginTlsOptions } from './types.js';
export type { Logger, LimitStats, Proxy, ProxyLimits, ProxyOptions, ProxyStats, ProxyTimeouts, ServerStats, CounterPair } from './types.js';
export type { Health, CheckResult } from './health/health-state.js';
export { TLS_MIN_VERSION, TLS12_CIPHERS } from './tls.js';
export type { ProxyTlsOptions, TlsCertificate } from './tls.js';
export { ERRORS, statusOf } from './errors.js';
export type { ProxyErrorCode, OriginFailure } from './errors.js';
export { mergeCounters, sumTotals, zeroCounters, DURATION_BUCKETS } from './stats.js';
export type { DataPlaneCounters, DataPlaneTotals, OriginCounters, CounterValues, HistogramData } from './stats.js';
export type { AccessLogSink } from './access-log.js';
export type { CounterSource } from './metrics.js';
export { MetricsRegistry } from './metrics.js';
