import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PoolSnapshot } from '@weldr/store';
import { ConnectionTracker } from './connections.js';
import { handleExpect, handleRequest, refuseBrokenRequest, type ProxyContext } from './forward.js';
import { AccessLog } from './access-log.js';
import { raiseMallocThresholds } from './malloc.js';
import { registerMetrics } from './metrics.js';
import { Listener } from './server.js';
import { buildStats, Counters, snapshotCounters } from './stats.js';
import { TlsContexts } from './tls.js';
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Proxy, type ProxyLimits, type ProxyOptions, type ProxyStats, type ProxyTimeouts } from './types.js';
import { handleUpgrade } from './upgrade.js';
import { Upstream } from './upstream.js';

const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
const DEFAULT_MAX_RETRIES = 2;
const DEFAULT_CLOSE_DEADLINE_MS = 10_000;

/** Compose the phases into a proxy. Nothing listens until `listen()` / `listenTls()`. */
export function createProxy(options: ProxyOptions): Proxy {
  // Keeps the heap that body buffers are freed into (see malloc.ts): 2–3× less CPU per MiB.
  raiseMallocThresholds();
  const timeouts: ProxyTimeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const limits: ProxyLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log.child?.({ component: 'proxy' }) ?? options.log;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const counters = new Counters();
  const upstream = new Upstream(options.snapshot, {
    log,
    now,
    random,
    timeouts,
    maxHeaderSize,
    originMaxConnections: limits.originMaxConnections,
    originTls: options.originTls ?? null,
    originClient: options.originClient ?? 'native',
    healthChecks: options.healthChecks ?? true,
    poolLog: options.poolLog ?? 'info',
    ...(options.balancerPhase === undefined ? {} : { balancerPhase: options.balancerPhase }),
    ...(options.onHealthChange === undefined ? {} : { onHealthChange: options.onHealthChange }),
  });
  // Names this process: in Via (loop detection) and in access-log request ids.
  const instance = randomBytes(4).toString('hex');
  const accessLog = options.accessLog === undefined ? null : new AccessLog(options.accessLog, options.nodeId ?? 'weldr', instance, counters);

  let closing: Promise<void> | null = null;
  const tunnels = new Set<Duplex>();
  let idleWaiter: (() => void) | null = null;
  const ctx: ProxyContext = {
    upstream,
    counters,
    // The comment names this proxy instance (random per process) for loop detection.
    via: `1.1 ${pseudonym(options.nodeId)} (weldr/${instance})`,
    proto: 'http',
    maxRetries: Math.max(0, options.maxRetries ?? DEFAULT_MAX_RETRIES),
    maxPipelineDepth: Math.max(1, limits.maxPipelineDepth),
    stallMs: timeouts.originIdleMs,
    // WebSockets idle far longer than response bodies; nginx's default is 60 s.
    tunnelIdleMs: Math.max(60_000, timeouts.originIdleMs),
    // The client's request limits (--client-body-timeout, --client-request-timeout)
    // also bound the content of an Upgrade request.
    upgradeBodyIdleMs: timeouts.clientBodyIdleMs > 0 ? Math.min(timeouts.clientBodyIdleMs, timeouts.clientRequestMs) : timeouts.clientRequestMs,
    upgradeBodyMs: timeouts.clientRequestMs,
    log,
    accessLog,
    onExchangeEnd: () => {
      if (idleWaiter !== null && counters.active === 0) idleWaiter();
    },
  };
  // One tracker for every listener: the connection limits are the proxy's, not a port's.
  const tracker = new ConnectionTracker(
    {
      maxConnections: limits.maxConnections,
      maxPerSource: limits.maxConnectionsPerSource,
      idleMs: timeouts.clientIdleMs,
      writeStallMs: timeouts.originIdleMs,
      bodyIdleMs: timeouts.clientBodyIdleMs,
      bodyMinRate: limits.clientBodyMinRate,
      bodyRateGraceMs: limits.clientBodyRateGraceMs,
    },
    counters,
  );

  /** A listener whose requests run with `c` (its scheme in X-Forwarded-Proto). */
  const makeListener = (c: ProxyContext, tls?: TlsContexts): Listener =>
    new Listener({
      timeouts,
      tracker,
      counters,
      ...(tls !== undefined ? { tls } : {}),
      maxHeaderSize,
      log,
      onRequest: (req, res) => handleRequest(c, req, res),
      onExpect: (req, res) => handleExpect(c, req, res),
      onBrokenRequest: refuseBrokenRequest,
      onUpgrade: (req, socket, head) => {
        // Upgraded sockets leave node's connection tracking; close() must find them.
        tunnels.add(socket);
        socket.once('close', () => tunnels.delete(socket));
        handleUpgrade(c, req, socket, head);
      },
    });
  const listener = makeListener(ctx);
  const tlsListener = options.tls !== undefined ? makeListener({ ...ctx, proto: 'https' }, new TlsContexts(options.tls)) : null;
  const listeners = tlsListener === null ? [listener] : [listener, tlsListener];
  const server = listener.server;
  const localCounters = (options?: { readonly omitIdle?: boolean }) => snapshotCounters(counters, upstream, now(), options?.omitIdle === true);
  const unregister = options.metrics !== undefined ? registerMetrics(options.metrics, options.counterSource ?? (() => localCounters()), upstream, now) : null;

  async function shutdown(deadlineMs: number): Promise<void> {
    for (const l of listeners) {
      l.server.close();
      l.server.closeIdleConnections();
    }
    if (counters.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        idleWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      idleWaiter = null;
    }
    for (const l of listeners) {
      l.server.closeAllConnections();
      l.destroyLingering();
    }
    for (const socket of tunnels) socket.destroy();
    tracker.stop();
    accessLog?.flush();
    await upstream.close(false);
    unregister?.();
    log.info({ unfinished: counters.active }, 'proxy closed');
  }

  function listenOn(s: Server, port: number, host: string | undefined, what: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      s.once('error', onError);
      s.listen(port, host, () => {
        s.off('error', onError);
        const address = s.address() as AddressInfo;
        log.info({ address: address.address, port: address.port }, `${what} listening`);
        resolve(address);
      });
    });
  }

  return {
    server,
    tlsServer: tlsListener?.server ?? null,
    listen(port: number, host?: string): Promise<AddressInfo> {
      return listenOn(server, port, host, 'proxy');
    },
    listenTls(port: number, host?: string): Promise<AddressInfo> {
      if (tlsListener === null) return Promise.reject(new Error('listenTls() needs the tls option'));
      return listenOn(tlsListener.server, port, host, 'proxy (TLS)');
    },
    setTls(tls): void {
      if (tlsListener === null) throw new Error('setTls() needs the tls option at creation');
      // Built (and validated) whole before anything is swapped.
      const contexts = new TlsContexts(tls);
      tlsListener.setTlsContexts(contexts);
      log.info({ certificates: contexts.names.length, names: contexts.names }, 'TLS certificates loaded');
    },
    update(snapshot: PoolSnapshot): void {
      upstream.update(snapshot);
    },
    stats(): ProxyStats {
      return buildStats(localCounters(), upstream, now());
    },
    counters: localCounters,
    statsFrom(data) {
      return buildStats(data, upstream, now());
    },
    applyHealth(serverId, health, lastCheck) {
      upstream.applyHealth(serverId, health, lastCheck);
    },
    healthTable() {
      return upstream.healthTable();
    },
    close(opts?: { deadlineMs?: number }): Promise<void> {
      closing ??= shutdown(opts?.deadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS);
      return closing;
    },
  };
}

/** RFC 9110 §7.6.3: Via names the proxy by a token (host or pseudonym). */
function pseudonym(nodeId: string | undefined): string {
  const cleaned = (nodeId ?? 'weldr').replace(/[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g, '-');
  return cleaned === '' ? 'weldr' : cleaned;
}
