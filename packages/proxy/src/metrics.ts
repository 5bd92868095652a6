import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import type { OriginFailure } from './errors.js';
import { DURATION_BUCKETS, type Counters } from './stats.js';
import type { Upstream } from './upstream.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const FAILURES: readonly OriginFailure[] = ['refused', 'reset', 'timeout', 'bad_response'];
const HEALTH = ['healthy', 'unhealthy', 'unknown'] as const;
const NAMES = [
  'weldr_proxy_requests_total',
  'weldr_proxy_origin_failures_total',
  'weldr_proxy_active_requests',
  'weldr_proxy_origin_health',
  'weldr_proxy_origin_ejected',
  'weldr_proxy_fail_open',
  'weldr_proxy_request_duration_seconds',
  'weldr_proxy_client_connections',
  'weldr_proxy_limit_refusals_total',
  'weldr_proxy_pipeline_paused_total',
  'weldr_proxy_origin_connections',
  'weldr_proxy_origin_queued',
  'weldr_proxy_tls_handshake_errors_total',
  'weldr_health_checks_total',
];

/** Label values of weldr_proxy_limit_refusals_total, one per limit (docs/operations.md). */
const LIMITS = ['max_connections', 'max_connections_per_source', 'accept_error', 'pipeline_depth', 'body_min_rate'] as const;

function refusals(c: Counters, limit: (typeof LIMITS)[number]): number {
  switch (limit) {
    case 'max_connections':
      return c.refusedConnections;
    case 'max_connections_per_source':
      return c.refusedPerSource;
    case 'accept_error':
      return c.acceptErrors;
    case 'pipeline_depth':
      return c.pipelineRefused;
    case 'body_min_rate':
      return c.refusedBodyRate;
  }
}

/**
 * A histogram whose buckets live in `Counters` (bumped with a plain array increment per
 * request — about 25× cheaper than prom-client's observe()) and are only turned into
 * prom-client's export shape when scraped.
 */
class ScrapedHistogram extends Histogram<string> {
  readonly #counters: Counters;
  readonly #name: string;
  readonly #help: string;

  constructor(name: string, help: string, counters: Counters) {
    super({ name, help, buckets: [...DURATION_BUCKETS], registers: [] });
    this.#counters = counters;
    this.#name = name;
    this.#help = help;
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    const c = this.#counters;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let acc = 0;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      acc += c.durationBuckets[i]!;
      values.push({ labels: { le: DURATION_BUCKETS[i]! }, value: acc, metricName: `${this.#name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: c.durationCount, metricName: `${this.#name}_bucket` });
    values.push({ labels: {}, value: c.durationSum, metricName: `${this.#name}_sum` });
    values.push({ labels: {}, value: c.durationCount, metricName: `${this.#name}_count` });
    return { name: this.#name, help: this.#help, type: HISTOGRAM, values, aggregator: 'sum', collect: discard };
  }

  /** The registry prefers this (untyped) method when present; keep both in step. */
  async getForPromString(): ReturnType<Histogram<string>['get']> {
    return this.get();
  }
}

/** Register the proxy's metrics; returns a function that unregisters them. */
export function registerMetrics(registry: Registry, counters: Counters, upstream: Upstream, now: () => number): () => void {
  const metrics = [
    new Counter({
      name: 'weldr_proxy_requests_total',
      help: 'Client requests answered, by status class (proxy-generated errors included)',
      labelNames: ['code_class'],
      registers: [],
      collect() {
        this.reset();
        for (let i = 1; i <= 5; i++) this.inc({ code_class: CLASSES[i - 1]! }, counters.byClass[i]!);
      },
    }),
    new Counter({
      name: 'weldr_proxy_origin_failures_total',
      help: 'Failed origin attempts, by reason',
      labelNames: ['reason'],
      registers: [],
      collect() {
        this.reset();
        for (const r of FAILURES) this.inc({ reason: r }, counters.failures[r]);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_active_requests',
      help: 'Client requests and tunnels in flight',
      registers: [],
      collect() {
        this.set(counters.active);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_health',
      help: 'Health of each origin: 1 for its current state label, 0 otherwise',
      labelNames: ['server', 'state'],
      registers: [],
      collect() {
        this.reset();
        for (const o of upstream.origins) {
          for (const h of HEALTH) this.set({ server: o.id, state: h }, o.health.health === h ? 1 : 0);
        }
      },
    }),
    new Counter({
      name: 'weldr_health_checks_total',
      help: 'Active health checks finished, by result (pass: the expected status in time; fail: anything else)',
      labelNames: ['result'],
      registers: [],
      collect() {
        this.reset();
        this.inc({ result: 'pass' }, upstream.checksPassed);
        this.inc({ result: 'fail' }, upstream.checksFailed);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_ejected',
      help: 'Whether each origin is currently ejected by passive health checking',
      labelNames: ['server'],
      registers: [],
      collect() {
        this.reset();
        const t = now();
        for (const o of upstream.origins) this.set({ server: o.id }, o.passive.isEjected(t) ? 1 : 0);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_fail_open',
      help: '1 while every origin is unhealthy and the proxy routes to all of them anyway',
      registers: [],
      collect() {
        this.set(upstream.failOpen ? 1 : 0);
      },
    }),
    new ScrapedHistogram('weldr_proxy_request_duration_seconds', 'Time from request received to response ended', counters),
    new Gauge({
      name: 'weldr_proxy_client_connections',
      help: 'Client connections open',
      registers: [],
      collect() {
        this.set(counters.connections);
      },
    }),
    new Counter({
      name: 'weldr_proxy_limit_refusals_total',
      help: 'Connections and requests refused by a resource limit, by limit',
      labelNames: ['limit'],
      registers: [],
      collect() {
        this.reset();
        for (const l of LIMITS) this.inc({ limit: l }, refusals(counters, l));
      },
    }),
    new Counter({
      name: 'weldr_proxy_pipeline_paused_total',
      help: 'Times a client connection stopped being read because maxPipelineDepth requests were held',
      registers: [],
      collect() {
        this.reset();
        this.inc(counters.pipelinePaused);
      },
    }),
    new Counter({
      name: 'weldr_proxy_tls_handshake_errors_total',
      help: 'TLS handshakes on the HTTPS listener that failed (protocol, cipher or ALPN mismatch, bad client hello, timeout)',
      registers: [],
      collect() {
        this.reset();
        this.inc(counters.tlsHandshakeFailed);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_connections',
      help: 'Open connections to each origin (at most originMaxConnections)',
      labelNames: ['server'],
      registers: [],
      collect() {
        this.reset();
        for (const o of upstream.origins) this.set({ server: o.id }, o.pool.stats.connected);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_queued',
      help: 'Requests waiting for a connection to each origin (originMaxConnections reached)',
      labelNames: ['server'],
      registers: [],
      collect() {
        this.reset();
        for (const o of upstream.origins) this.set({ server: o.id }, o.pool.stats.queued);
      },
    }),
  ];
  for (const m of metrics) registry.registerMetric(m);
  return () => {
    for (const name of NAMES) registry.removeSingleMetric(name);
  };
}

function discard(): void {}

// prom-client's typings declare MetricType as a numeric enum that does not exist at run
// time; the registry actually prints `metric.type` as the string 'histogram'.
const HISTOGRAM = 'histogram' as unknown as MetricType;

