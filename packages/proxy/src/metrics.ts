import { Counter, Gauge, Histogram, Registry, type MetricType } from 'prom-client';
import type { OriginFailure } from './errors.js';
import { DURATION_BUCKETS, type CounterValues, type DataPlaneCounters, type HistogramData, type OriginCounters } from './stats.js';
import type { Origin } from './origin-pool.js';
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
  // One view of the origins per scrape, shared by the per-origin families (read() hands
  // every family of one scrape the same figures object).
  const views = new WeakMap<DataPlaneCounters, OriginScrape>();
  const scrape = async (): Promise<OriginScrape> => {
    const d = await read();
    let view = views.get(d);
    if (view === undefined) {
      const origins = upstream.origins;
      const current = new Set(origins.map((o) => o.id));
      // Figures of the origins in the current snapshot only: a removed origin's series disappear.
      view = { origins, figures: d.origins.filter((o) => current.has(o.id)), byId: new Map(d.origins.map((o) => [o.id, o])), now: now() };
      views.set(d, view);
    }
    return view;
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
    ...originFamilies(scrape),
  ];
  for (const m of metrics) registry.registerMetric(m);
  return () => {
    for (const name of NAMES) registry.removeSingleMetric(name);
  };
}

/** What one scrape knows about the origins. */
interface OriginScrape {
  /** The origins of the current snapshot (their health and passive state are read live). */
  readonly origins: readonly Origin[];
  /** Request figures (summed over workers) of those origins, in the figures' order. */
  readonly figures: readonly OriginCounters[];
  readonly byId: ReadonlyMap<string, OriginCounters>;
  readonly now: number;
}

/**
 * One sample of a family: what follows the family's name in the series' name ('' or a
 * histogram's `_bucket`, `_sum`, `_count`), its labels (in order) and its value.
 */
type Emit = (suffix: string, labels: readonly (readonly [string, string])[], value: number) => void;

/** Origins rendered between two yields to the event loop (a scrape of 10,000 origins is ~330,000 lines). */
const ORIGINS_PER_SLICE = 250;

/**
 * A per-origin metric family. With 10,000 origins the families are ~330,000 series, and
 * prom-client's way — a labelled set()/inc() per series at collect time, then its
 * formatter per series — took 4–5 s of the node's one thread per scrape (the admin
 * API, Raft's heartbeats and the health checks all waited). This family writes its
 * Prometheus text itself (renderText, used by MetricsRegistry), in slices of
 * ORIGINS_PER_SLICE origins with a yield between them; get() gives prom-client's object
 * form of the same samples (getMetricsAsJSON, and a plain Registry's formatter — the
 * test compares the two texts).
 */
class OriginFamily extends Gauge<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #type: 'counter' | 'gauge' | 'histogram';
  readonly #scrape: () => Promise<OriginScrape>;
  /** Samples of the origins[from, to) of the list this family walks. */
  readonly #samples: (view: OriginScrape, from: number, to: number, emit: Emit) => void;
  readonly #count: (view: OriginScrape) => number;

  constructor(
    name: string,
    help: string,
    type: 'counter' | 'gauge' | 'histogram',
    scrape: () => Promise<OriginScrape>,
    walk: 'origins' | 'figures',
    sample: (view: OriginScrape, i: number, emit: Emit) => void,
  ) {
    super({ name, help, registers: [] });
    this.#name = name;
    this.#help = help;
    this.#type = type;
    this.#scrape = scrape;
    this.#count = walk === 'origins' ? (v) => v.origins.length : (v) => v.figures.length;
    this.#samples = (view, from, to, emit) => {
      for (let i = from; i < to; i++) sample(view, i, emit);
    };
  }

  override async get(): ReturnType<Gauge<string>['get']> {
    const view = await this.#scrape();
    const values: { labels: Record<string, string>; value: number; metricName: string }[] = [];
    this.#samples(view, 0, this.#count(view), (suffix, labels, value) => {
      values.push({ labels: Object.fromEntries(labels), value, metricName: this.#name + suffix });
    });
    return { name: this.#name, help: this.#help, type: this.#type as unknown as MetricType, values, aggregator: 'sum', collect: discard };
  }

  /** The registry prefers this (untyped) method when present; keep both in step. */
  async getForPromString(): ReturnType<Gauge<string>['get']> {
    return this.get();
  }

  /**
   * Collects the scrape's figures; resolves with the family's Prometheus text as
   * prom-client's Registry formats it, in slices: the HELP and TYPE lines, then the
   * samples of ORIGINS_PER_SLICE origins per slice (the text is the slices joined by
   * newlines). `defaults` are the registry's default labels, written after a sample's
   * own labels as prom-client writes them (no family here has a label of that name).
   */
  async open(defaults: Readonly<Record<string, string>>): Promise<() => Generator<string>> {
    const view = await this.#scrape();
    return () => this.#slices(view, defaults);
  }

  *#slices(view: OriginScrape, defaults: Readonly<Record<string, string>>): Generator<string> {
    let tail = '';
    for (const [k, v] of Object.entries(defaults)) tail += `,${k}="${escapeLabelValue(String(v))}"`;
    yield `# HELP ${escapeString(this.#name)} ${escapeString(this.#help)}\n# TYPE ${escapeString(this.#name)} ${this.#type}`;
    let out: string[] = [];
    const name = this.#name;
    const emit: Emit = (suffix, labels, value) => {
      let line = `${name}${suffix}{`;
      for (let i = 0; i < labels.length; i++) {
        const [k, v] = labels[i]!;
        line += `${i === 0 ? '' : ','}${k}="${escapeLabelValue(v)}"`;
      }
      out.push(`${line}${tail}} ${valueText(value)}`);
    };
    const n = this.#count(view);
    for (let from = 0; from < n; from += ORIGINS_PER_SLICE) {
      this.#samples(view, from, Math.min(n, from + ORIGINS_PER_SLICE), emit);
      if (out.length > 0) yield out.join('\n');
      out = [];
    }
  }

  /** The whole family's text (Registry#metrics, through MetricsRegistry). */
  async renderText(defaults: Readonly<Record<string, string>>): Promise<string> {
    const slices = await this.open(defaults);
    return [...slices()].join('\n');
  }
}

/** The per-origin families (docs/operations.md, Metrics). */
function originFamilies(scrape: () => Promise<OriginScrape>): OriginFamily[] {
  const server = (id: string) => ['server', id] as const;
  return [
    new OriginFamily('weldr_proxy_origin_health', 'Health of each origin: 1 for its current state label, 0 otherwise', 'gauge', scrape, 'origins', (v, i, emit) => {
      const o = v.origins[i]!;
      for (const h of HEALTH) emit('', [server(o.id), ['state', h]], o.health.health === h ? 1 : 0);
    }),
    new OriginFamily('weldr_proxy_origin_ejected', 'Whether each origin is currently ejected by passive health checking', 'gauge', scrape, 'origins', (v, i, emit) => {
      const o = v.origins[i]!;
      const f = v.byId.get(o.id);
      emit('', [server(o.id)], (f !== undefined && f.ejectedUntil > v.now) || o.passive.isEjected(v.now) ? 1 : 0);
    }),
    new OriginFamily(
      'weldr_proxy_origin_requests_total',
      'Responses from each origin, by status class (attempts that got no response are in weldr_proxy_origin_attempt_failures_total)',
      'counter',
      scrape,
      'figures',
      (v, i, emit) => {
        const o = v.figures[i]!;
        for (let c = 1; c <= 5; c++) emit('', [server(o.id), ['code_class', CLASSES[c - 1]!]], o.byClass[c]!);
      },
    ),
    new OriginFamily('weldr_proxy_origin_attempt_failures_total', 'Attempts on each origin that got no usable response, by reason', 'counter', scrape, 'figures', (v, i, emit) => {
      const o = v.figures[i]!;
      for (const r of FAILURES) emit('', [server(o.id), ['reason', r]], o.failures[r]);
    }),
    new OriginFamily('weldr_proxy_origin_active_requests', 'Requests (and tunnels) in flight to each origin', 'gauge', scrape, 'figures', (v, i, emit) => {
      const o = v.figures[i]!;
      emit('', [server(o.id)], o.active);
    }),
    new OriginFamily(
      'weldr_proxy_origin_request_duration_seconds',
      'Time from dispatching a request to an origin to the end of its response (or the failure), per origin',
      'histogram',
      scrape,
      'figures',
      (v, i, emit) => {
        const o = v.figures[i]!;
        const h = o.duration;
        let acc = 0;
        for (let b = 0; b < DURATION_BUCKETS.length; b++) {
          acc += h.buckets[b]!;
          emit('_bucket', [server(o.id), ['le', String(DURATION_BUCKETS[b]!)]], acc);
        }
        emit('_bucket', [server(o.id), ['le', '+Inf']], h.count);
        emit('_sum', [server(o.id)], h.sum);
        emit('_count', [server(o.id)], h.count);
      },
    ),
    new OriginFamily('weldr_proxy_origin_connections', 'Open connections to each origin (at most originMaxConnections)', 'gauge', scrape, 'figures', (v, i, emit) => {
      const o = v.figures[i]!;
      emit('', [server(o.id)], o.connected);
    }),
    new OriginFamily('weldr_proxy_origin_queued', 'Requests waiting for a connection to each origin (originMaxConnections reached)', 'gauge', scrape, 'figures', (v, i, emit) => {
      const o = v.figures[i]!;
      emit('', [server(o.id)], o.queued);
    }),
  ];
}

/**
 * The registry /metrics is served from: prom-client's, except that the per-origin
 * families write their own text (OriginFamily) instead of going through prom-client's
 * formatter, which costs seconds with 10,000 origins, and that the text can be had in
 * pieces (textChunks) so that a scrape of a large pool neither holds the thread for
 * its whole length nor builds one string of tens of MB. Everything else — default
 * labels, the other metrics, the JSON form — is prom-client's.
 */
export class MetricsRegistry extends Registry {
  #defaults: Readonly<Record<string, string>> = {};

  override setDefaultLabels(labels: object): void {
    this.#defaults = { ...(labels as Record<string, string>) };
    super.setDefaultLabels(labels);
  }

  /** prom-client's formatter of one family (Registry#metrics calls it; not in its typings). */
  async getMetricsAsString(metric: unknown): Promise<string> {
    if (metric instanceof OriginFamily && this.contentType === Registry.PROMETHEUS_CONTENT_TYPE) return metric.renderText(this.#defaults);
    return (Registry.prototype as unknown as { getMetricsAsString(this: Registry, m: unknown): Promise<string> }).getMetricsAsString.call(this, metric);
  }

  /**
   * The text of metrics(), in pieces. Every family is collected first and at once, as
   * metrics() does (one read of the workers' figures per scrape; a failure rejects here,
   * before anything is sent); then the per-origin families are written a slice at a
   * time, with a turn of the event loop between two slices.
   */
  async textChunks(): Promise<AsyncIterable<string>> {
    if (this.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) {
      const text = await this.metrics();
      return (async function* () {
        yield text;
      })();
    }
    const parts: Promise<string | (() => Generator<string>)>[] = this.getMetricsAsArray().map((m) => (m instanceof OriginFamily ? m.open(this.#defaults) : this.getMetricsAsString(m)));
    const ready = await Promise.all(parts);
    return (async function* () {
      for (let i = 0; i < ready.length; i++) {
        const part = ready[i]!;
        const separator = i === 0 ? '' : '\n\n';
        if (typeof part === 'string') {
          yield separator + part;
          continue;
        }
        let first = true;
        for (const slice of part()) {
          yield (first ? separator : '\n') + slice;
          first = false;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      yield '\n';
    })();
  }
}

// prom-client's escaping and number format (lib/registry.js, lib/util.js), for renderText.
function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return escapeString(s).replace(/"/g, '\\"');
}

function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

function discard(): void {}

// prom-client's typings declare MetricType as a numeric enum that does not exist at run
// time; the registry actually prints `metric.type` as the string 'histogram'.
const HISTOGRAM = 'histogram' as unknown as MetricType;

