import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import type { OriginFailure } from './errors.js';
import { DURATION_BUCKETS, type CounterValues, type DataPlaneCounters, type HistogramData } from './stats.js';
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
  'weldr_proxy_origin_requests_total',
  'weldr_proxy_origin_attempt_failures_total',
  'weldr_proxy_origin_active_requests',
  'weldr_proxy_origin_request_duration_seconds',
  'weldr_proxy_access_log_dropped_total',
  'weldr_health_checks_total',
];

/** Where the figures come from: this process, or a node's workers summed (read once per scrape). */
export type CounterSource = () => DataPlaneCounters | Promise<DataPlaneCounters>;

/** Label values of weldr_proxy_limit_refusals_total, one per limit (docs/operations.md). */
const LIMITS = ['max_connections', 'max_connections_per_source', 'accept_error', 'pipeline_depth', 'body_min_rate'] as const;

function refusals(c: CounterValues, limit: (typeof LIMITS)[number]): number {
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
 * A histogram whose buckets are plain numbers (stats.ts `observe`, bumped with an array
 * increment per request — about 25× cheaper than prom-client's observe()), turned into
 * prom-client's export shape only when scraped; one series per label set.
 */
class ScrapedHistogram extends Histogram<string> {
  readonly #read: () => Promise<{ labels: Record<string, string>; h: HistogramData }[]>;
  readonly #name: string;
  readonly #help: string;

  constructor(name: string, help: string, labelNames: string[], read: () => Promise<{ labels: Record<string, string>; h: HistogramData }[]>) {
    super({ name, help, labelNames, buckets: [...DURATION_BUCKETS], registers: [] });
    this.#read = read;
    this.#name = name;
    this.#help = help;
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, h } of await this.#read()) {
      let acc = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        acc += h.buckets[i]!;
        values.push({ labels: { ...labels, le: DURATION_BUCKETS[i]! }, value: acc, metricName: `${this.#name}_bucket` });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.#name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${this.#name}_sum` });
      values.push({ labels, value: h.count, metricName: `${this.#name}_count` });
    }
    return { name: this.#name, help: this.#help, type: HISTOGRAM, values, aggregator: 'sum', collect: discard };
  }

  /** The registry prefers this (untyped) method when present; keep both in step. */
  async getForPromString(): ReturnType<Histogram<string>['get']> {
    return this.get();
  }
}

/**
 * One read of the figures per scrape: the registry collects every metric at once, and
 * with workers a read is a round trip to each of them.
 */
function coalesce(source: CounterSource): () => Promise<DataPlaneCounters> {
  let pending: Promise<DataPlaneCounters> | null = null;
  return () => {
    if (pending !== null) return pending;
    pending = Promise.resolve(source()).finally(() => {
      pending = null;
    });
    return pending;
  };
}

/** Register the proxy's metrics; returns a function that unregisters them. */
export function registerMetrics(registry: Registry, source: CounterSource, upstream: Upstream, now: () => number): () => void {
  const read = coalesce(source);
  /** Figures of the origins in the current snapshot only: a removed origin's series disappear. */
  const origins = async () => {
    const d = await read();
    const current = new Set(upstream.origins.map((o) => o.id));
    return d.origins.filter((o) => current.has(o.id));
  };
  const metrics = [
    new Counter({
      name: 'weldr_proxy_requests_total',
      help: 'Client requests answered, by status class (proxy-generated errors included)',
      labelNames: ['code_class'],
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        for (let i = 1; i <= 5; i++) this.inc({ code_class: CLASSES[i - 1]! }, counters.byClass[i]!);
      },
    }),
    new Counter({
      name: 'weldr_proxy_origin_failures_total',
      help: 'Failed origin attempts, by reason',
      labelNames: ['reason'],
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        for (const r of FAILURES) this.inc({ reason: r }, counters.failures[r]);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_active_requests',
      help: 'Client requests and tunnels in flight',
      registers: [],
      async collect() {
        this.set((await read()).counters.active);
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
      async collect() {
        const t = now();
        const ejected = new Map((await read()).origins.map((o) => [o.id, o.ejectedUntil > t]));
        this.reset();
        for (const o of upstream.origins) this.set({ server: o.id }, ejected.get(o.id) === true || o.passive.isEjected(t) ? 1 : 0);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_fail_open',
      help: '1 while every origin is unhealthy and the proxy routes to all of them anyway',
      registers: [],
      async collect() {
        this.set((await read()).failOpen ? 1 : 0);
      },
    }),
    new ScrapedHistogram('weldr_proxy_request_duration_seconds', 'Time from request received to response ended', [], async () => [{ labels: {}, h: (await read()).counters.duration }]),
    new Gauge({
      name: 'weldr_proxy_client_connections',
      help: 'Client connections open',
      registers: [],
      async collect() {
        this.set((await read()).counters.connections);
      },
    }),
    new Counter({
      name: 'weldr_proxy_limit_refusals_total',
      help: 'Connections and requests refused by a resource limit, by limit',
      labelNames: ['limit'],
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        for (const l of LIMITS) this.inc({ limit: l }, refusals(counters, l));
      },
    }),
    new Counter({
      name: 'weldr_proxy_pipeline_paused_total',
      help: 'Times a client connection stopped being read because maxPipelineDepth requests were held',
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        this.inc(counters.pipelinePaused);
      },
    }),
    new Counter({
      name: 'weldr_proxy_tls_handshake_errors_total',
      help: 'TLS handshakes on the HTTPS listener that failed (protocol, cipher or ALPN mismatch, bad client hello, timeout)',
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        this.inc(counters.tlsHandshakeFailed);
      },
    }),
    new Counter({
      name: 'weldr_proxy_access_log_dropped_total',
      help: 'Access-log lines dropped because the destination could not keep up',
      registers: [],
      async collect() {
        const { counters } = await read();
        this.reset();
        this.inc(counters.accessLogDropped);
      },
    }),
    new Counter({
      name: 'weldr_proxy_origin_requests_total',
      help: 'Responses from each origin, by status class (attempts that got no response are in weldr_proxy_origin_attempt_failures_total)',
      labelNames: ['server', 'code_class'],
      registers: [],
      async collect() {
        const list = await origins();
        this.reset();
        for (const o of list) for (let i = 1; i <= 5; i++) this.inc({ server: o.id, code_class: CLASSES[i - 1]! }, o.byClass[i]!);
      },
    }),
    new Counter({
      name: 'weldr_proxy_origin_attempt_failures_total',
      help: 'Attempts on each origin that got no usable response, by reason',
      labelNames: ['server', 'reason'],
      registers: [],
      async collect() {
        const list = await origins();
        this.reset();
        for (const o of list) for (const r of FAILURES) this.inc({ server: o.id, reason: r }, o.failures[r]);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_active_requests',
      help: 'Requests (and tunnels) in flight to each origin',
      labelNames: ['server'],
      registers: [],
      async collect() {
        const list = await origins();
        this.reset();
        for (const o of list) this.set({ server: o.id }, o.active);
      },
    }),
    new ScrapedHistogram('weldr_proxy_origin_request_duration_seconds', 'Time from dispatching a request to an origin to the end of its response (or the failure), per origin', ['server'], async () =>
      (await origins()).map((o) => ({ labels: { server: o.id }, h: o.duration })),
    ),
    new Gauge({
      name: 'weldr_proxy_origin_connections',
      help: 'Open connections to each origin (at most originMaxConnections)',
      labelNames: ['server'],
      registers: [],
      async collect() {
        const list = await origins();
        this.reset();
        for (const o of list) this.set({ server: o.id }, o.connected);
      },
    }),
    new Gauge({
      name: 'weldr_proxy_origin_queued',
      help: 'Requests waiting for a connection to each origin (originMaxConnections reached)',
      labelNames: ['server'],
      registers: [],
      async collect() {
        const list = await origins();
        this.reset();
        for (const o of list) this.set({ server: o.id }, o.queued);
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

