// The node's data plane: its proxy served by the node process itself (--workers 0), or
// by N worker processes (--workers N|auto). Either way the node process holds one proxy
// of its own: the one that runs the active health checks and knows the servers of the
// current snapshot; with workers it never listens, and the figures for /stats and
// /metrics are the workers' summed.
import { Counter, Gauge, type Registry } from 'prom-client';
import { createProxy, mergeCounters, sumTotals, type DataPlaneCounters, type DataPlaneTotals, type Proxy, type ProxyOptions, type ProxyStats, type ProxyTlsOptions } from '@weldr/proxy';
import type { PoolSnapshot } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import { ConfigError } from '../config/config-error.js';
import { openAccessLog, type AccessLogDestination } from './access-log-sink.js';
import { stdoutWriter, type Logger } from './logger.js';
import { WorkerPool } from '../workers/worker-pool.js';

export interface DataPlane {
  /** The node process's own proxy (health checks; the listener too without workers). */
  readonly proxy: Proxy;
  readonly workers: number;
  /** Start serving; resolves with the bound ports. */
  listen(): Promise<{ proxy: number; tls: number | null }>;
  update(snapshot: PoolSnapshot): void;
  /** Resolves once whatever serves the proxy listener routes with the last update() (workers confirm it). */
  synced(): Promise<void>;
  /**
   * Whether pool changes reach the workers in the same turn (the leader, a single node:
   * the node that answers pool writes and is active) or gathered every
   * LAZY_POOL_FLUSH_MS (a follower). Becoming eager sends what is pending at once.
   */
  setEager(eager: boolean): void;
  /** The node's figures: its own, or its workers' summed. */
  stats(): ProxyStats | Promise<ProxyStats>;
  /** The same totals without the per-server list (GET /stats, the status page's history). */
  totals(): DataPlaneTotals | Promise<DataPlaneTotals>;
  /** New certificates for the TLS listener (validated here first: throws and keeps the old). */
  setTls(tls: ProxyTlsOptions): void;
  /** SIGHUP: reopen the access-log file. */
  reopenAccessLog(): void;
  close(deadlineMs: number): Promise<void>;
}

export interface DataPlaneOptions {
  readonly config: NodeConfig;
  readonly proxyOptions: Omit<ProxyOptions, 'metrics' | 'counterSource' | 'onHealthChange' | 'accessLog' | 'tls'>;
  readonly tls: ProxyTlsOptions | undefined;
  readonly metrics: Registry;
  readonly log: Logger;
}

export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const { config, log, metrics } = options;
  const access: AccessLogDestination | null = config.accessLog === undefined ? null : openAccessLogChecked(config.accessLog, log);
  if (config.workers === 0) {
    const proxy = createTlsProxy(options.tls, { ...options.proxyOptions, metrics, ...(access === null ? {} : { accessLog: access.sink }) });
    return {
      proxy,
      workers: 0,
      async listen() {
        const bound = await proxy.listen(config.listen.port, config.listen.host);
        let tls: number | null = null;
        if (config.listenTls !== undefined) tls = (await proxy.listenTls(config.listenTls.port, config.listenTls.host)).port;
        return { proxy: bound.port, tls };
      },
      update: (snapshot) => proxy.update(snapshot),
      // The node process's own proxy swapped it in within update().
      synced: () => Promise.resolve(),
      setEager: () => undefined,
      stats: () => proxy.stats(),
      totals: () => sumTotals([proxy.counters({ omitIdle: true })]),
      setTls: (tls) => proxy.setTls(tls),
      reopenAccessLog: () => access?.reopen(),
      async close(deadlineMs) {
        await proxy.close({ deadlineMs });
        access?.close();
      },
    };
  }

  // Workers: the node process's proxy runs the health checks and tells the workers.
  let pool: WorkerPool | null = null;
  const gather = async (own: DataPlaneCounters): Promise<DataPlaneCounters> => (pool === null ? own : mergeCounters([own, ...(await pool.collectParts())]));
  // The node's own access log is not used (it serves nothing): each worker opens its own.
  access?.close();
  const proxy = createTlsProxy(options.tls, {
    ...options.proxyOptions,
    metrics,
    counterSource: () => gather(proxy.counters()),
    onHealthChange: (id, health) => pool?.health(id, health),
  });
  const n = config.workers;
  let eager = true;
  const p = new WorkerPool({
    eager: () => eager,
    count: n,
    log,
    stdout: stdoutWriter(log),
    snapshot: () => currentSnapshot,
    health: () => proxy.healthTable(),
    init: {
      nodeId: config.id,
      logLevel: config.logLevel,
      timeouts: withDefaults(options.proxyOptions.timeouts),
      limits: perWorker(options.proxyOptions.limits, n),
      maxHeaderSize: config.maxHeaderSize,
      maxRetries: config.maxRetries,
      originTls: (options.proxyOptions.originTls as { ca?: string; servername?: string } | undefined) ?? null,
      originClient: options.proxyOptions.originClient ?? 'native',
      tls: options.tls === undefined ? null : { certificates: [...options.tls.certificates] },
      listen: config.listen,
      listenTls: config.listenTls ?? null,
      accessLog: config.accessLog ?? null,
    },
  });
  pool = p;
  let currentSnapshot = options.proxyOptions.snapshot;
  registerWorkerMetrics(metrics, p);
  return {
    proxy,
    workers: n,
    listen: () => p.start(),
    update(snapshot) {
      currentSnapshot = snapshot;
      proxy.update(snapshot);
      p.update(snapshot);
    },
    synced: () => p.synced(),
    setEager(value) {
      eager = value;
      if (value) p.flush();
    },
    async stats() {
      return proxy.statsFrom(await gather(proxy.counters()));
    },
    async totals() {
      return sumTotals([proxy.counters({ omitIdle: true }), ...(await p.collectParts())]);
    },
    setTls(tls) {
      proxy.setTls(tls);
      p.setTls([...tls.certificates]);
    },
    reopenAccessLog: () => p.reopenAccessLog(),
    async close(deadlineMs) {
      await p.close(deadlineMs);
      await proxy.close({ deadlineMs: 0 });
    },
  };
}

/** Each worker counts its own connections: the node's limits are split between them. */
function perWorker(limits: ProxyOptions['limits'], n: number): import('@weldr/proxy').ProxyLimits {
  const l = { ...DEFAULTS.limits, ...limits };
  const share = (v: number): number => (v <= 0 ? v : Math.max(1, Math.ceil(v / n)));
  return { ...l, maxConnections: share(l.maxConnections), maxConnectionsPerSource: share(l.maxConnectionsPerSource) };
}

function withDefaults(t: ProxyOptions['timeouts']): import('@weldr/proxy').ProxyTimeouts {
  return { ...DEFAULTS.timeouts, ...t };
}

import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS } from '@weldr/proxy';
const DEFAULTS = { limits: DEFAULT_LIMITS, timeouts: DEFAULT_TIMEOUTS };

function registerWorkerMetrics(registry: Registry, pool: WorkerPool): void {
  registry.registerMetric(
    new Gauge({
      name: 'weldr_proxy_workers',
      help: 'Proxy worker processes: configured (--workers) and ready (serving)',
      labelNames: ['state'],
      registers: [],
      collect() {
        const s = pool.stats();
        this.set({ state: 'configured' }, s.workers);
        this.set({ state: 'ready' }, s.ready);
      },
    }),
  );
  registry.registerMetric(
    new Counter({
      name: 'weldr_proxy_worker_restarts_total',
      help: 'Proxy worker processes that died and were restarted',
      registers: [],
      collect() {
        this.reset();
        this.inc(pool.stats().restarts);
      },
    }),
  );
}

function openAccessLogChecked(destination: string, log: Logger): AccessLogDestination {
  try {
    return openAccessLog(destination, stdoutWriter(log), log);
  } catch (err) {
    throw new ConfigError(`cannot open --access-log ${destination}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** createProxy, with a certificate problem reported as a configuration error (exit 2). */
function createTlsProxy(tls: ProxyTlsOptions | undefined, options: ProxyOptions): Proxy {
  try {
    return createProxy(tls === undefined ? options : { ...options, tls });
  } catch (err) {
    if (tls === undefined) throw err;
    throw new ConfigError(`--tls-cert/--tls-key: ${(err as Error).message}`);
  }
}
