import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PoolSnapshot } from '@weldr/store';
import { handleExpect, handleRequest, refuseBrokenRequest, type ProxyContext } from './forward.js';
import { registerMetrics } from './metrics.js';
import { Listener } from './server.js';
import { buildStats, Counters } from './stats.js';
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type Proxy, type ProxyLimits, type ProxyOptions, type ProxyStats, type ProxyTimeouts } from './types.js';
import { handleUpgrade } from './upgrade.js';
import { Upstream } from './upstream.js';

const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
const DEFAULT_MAX_RETRIES = 2;
const DEFAULT_CLOSE_DEADLINE_MS = 10_000;

/** Compose the phases into a proxy. Nothing listens until `listen()`. */
export function createProxy(options: ProxyOptions): Proxy {
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
    healthChecks: options.healthChecks ?? true,
  });

  let closing: Promise<void> | null = null;
  const tunnels = new Set<Duplex>();
  let idleWaiter: (() => void) | null = null;
  const ctx: ProxyContext = {
    upstream,
    counters,
    // The comment names this proxy instance (random per process) for loop detection.
    via: `1.1 ${pseudonym(options.nodeId)} (weldr/${randomBytes(4).toString('hex')})`,
    maxRetries: Math.max(0, options.maxRetries ?? DEFAULT_MAX_RETRIES),
    maxPipelineDepth: Math.max(1, limits.maxPipelineDepth),
    stallMs: timeouts.originIdleMs,
    // WebSockets idle far longer than response bodies; nginx's default is 60 s.
    tunnelIdleMs: Math.max(60_000, timeouts.originIdleMs),
    log,
    onExchangeEnd: () => {
      if (idleWaiter !== null && counters.active === 0) idleWaiter();
    },
  };

  const listener = new Listener({
    timeouts,
    limits,
    counters,
    maxHeaderSize,
    log,
    onRequest: (req, res) => handleRequest(ctx, req, res),
    onExpect: (req, res) => handleExpect(ctx, req, res),
    onBrokenRequest: refuseBrokenRequest,
    onUpgrade: (req, socket, head) => {
      // Upgraded sockets leave node's connection tracking; close() must find them.
      tunnels.add(socket);
      socket.once('close', () => tunnels.delete(socket));
      handleUpgrade(ctx, req, socket, head);
    },
  });
  const server = listener.server;
  const unregister = options.metrics !== undefined ? registerMetrics(options.metrics, counters, upstream, now) : null;

  async function shutdown(deadlineMs: number): Promise<void> {
    server.close();
    server.closeIdleConnections();
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
    server.closeAllConnections();
    for (const socket of tunnels) socket.destroy();
    listener.destroyLingering();
    listener.stopIdleSweep();
    await upstream.close(false);
    unregister?.();
    log.info({ unfinished: counters.active }, 'proxy closed');
  }

  return {
    server,
    listen(port: number, host?: string): Promise<AddressInfo> {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const address = server.address() as AddressInfo;
          log.info({ address: address.address, port: address.port }, 'proxy listening');
          resolve(address);
        });
      });
    },
    update(snapshot: PoolSnapshot): void {
      upstream.update(snapshot);
    },
    stats(): ProxyStats {
      return buildStats(counters, upstream, now());
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
