import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PoolSnapshot } from '@weldr/store';
import type { Registry } from 'prom-client';
import type { AccessLogSink } from './access-log.js';
import type { CheckResult, Health } from './health/health-state.js';
import type { CounterSource } from './metrics.js';
import type { DataPlaneCounters } from './stats.js';
import type { ProxyTlsOptions } from './tls.js';

/** pino-compatible structured logger; the proxy does not depend on pino. */
export interface Logger {
  debug(o: object, msg?: string): void;
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
  child?(bindings: object): Logger;
}

export interface ProxyTimeouts {
  /** Time to receive a request's complete header section; exceeded → 408 and close. */
  clientHeadersMs: number;
  /** Keep-alive idle time between requests on a client connection. */
  clientIdleMs: number;
  /** Whole request including body upload; exceeded → 408 and close. */
  clientRequestMs: number;
  /**
   * Longest gap in a request body upload (no byte from the client while the proxy
   * waits for one); exceeded → 408 and close. 0 disables. Bounds slow-body clients far
   * below clientRequestMs without limiting uploads that make progress.
   */
  clientBodyIdleMs: number;
  /** TCP connect to an origin; exceeded → next origin or 504. */
  originConnectMs: number;
  /** From request sent to response headers; exceeded → 504. */
  originResponseMs: number;
  /** Idle gap in a response body, and longest stall of a client not reading it. */
  originIdleMs: number;
  /**
   * How long an idle keep-alive connection to an origin is kept for the next request
   * (an origin's own `Keep-Alive: timeout=` hint wins when shorter). Longer keeps
   * connections to a large pool warm: with N origins in rotation, each origin gets a
   * request every N / (req/s) seconds per process.
   */
  originKeepAliveMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ProxyTimeouts> = Object.freeze({
  clientHeadersMs: 10_000,
  clientIdleMs: 5_000,
  clientRequestMs: 300_000,
  clientBodyIdleMs: 60_000,
  originConnectMs: 3_000,
  originResponseMs: 30_000,
  originIdleMs: 30_000,
  // undici's own default: below the 5 s of node's and uvicorn's servers, which close
  // idle connections (node says so in a Keep-Alive hint, not every server does).
  originKeepAliveMs: 4_000,
});

/** Resource limits (issue 9 item 5). Each has a flag, a default and a refusal metric. */
export interface ProxyLimits {
  /**
   * Client connections open at once. Beyond it node accepts and closes new connections
   * at once (no byte read or written) and counts them.
   */
  maxConnections: number;
  /** Client connections open at once from one source address (accept-and-close beyond); 0: no limit. */
  maxConnectionsPerSource: number;
  /**
   * Requests held per client connection: the one being forwarded plus those pipelined
   * behind it. Reading from the connection stops at this depth; a request read beyond
   * it (sent in the same burst) is answered 429 and the connection closed.
   */
  maxPipelineDepth: number;
  /** Connections to each origin (undici Pool `connections`); requests beyond wait in its queue. */
  originMaxConnections: number;
  /**
   * Minimum average request-body rate in bytes/s, over the time the proxy waited for
   * the client, once the first `clientBodyRateGraceMs` of waiting are past (slower:
   * 408); 0: off.
   */
  clientBodyMinRate: number;
  /** Waiting time on a request body that is never held against its rate. */
  clientBodyRateGraceMs: number;
}

export const DEFAULT_LIMITS: Readonly<ProxyLimits> = Object.freeze({
  maxConnections: 10_000,
  maxConnectionsPerSource: 2_500,
  maxPipelineDepth: 32,
  originMaxConnections: 512,
  clientBodyMinRate: 512,
  clientBodyRateGraceMs: 10_000,
});

export interface ProxyOptions {
  snapshot: PoolSnapshot;
  timeouts?: Partial<ProxyTimeouts>;
  log: Logger;
  /** Pseudonym used in Via ("1.1 <nodeId>"); default "weldr". */
  nodeId?: string;
  /** Largest accepted request (and origin response) header section; default 16 KiB. */
  maxHeaderSize?: number;
  /** Resource limits; each defaults to DEFAULT_LIMITS. */
  limits?: Partial<ProxyLimits>;
  /** Further origins tried after a retryable failure; default 2. */
  maxRetries?: number;
  /**
   * Run active health checks; default true. 'external': none here, verdicts come
   * through `applyHealth()` (a worker process fed by its node process).
   */
  healthChecks?: boolean | 'external';
  /**
   * Level of the lines that follow the pool (origin added, removed, draining, a pool
   * update's summary, fail-open begun and ended); default 'info'. A worker process logs
   * them at 'debug': its node process logs the same changes once at 'info', rather than
   * once per process.
   */
  poolLog?: 'info' | 'debug';
  /** Called when an active-health verdict changes (the node process tells its workers). */
  onHealthChange?: (serverId: string, health: Health, lastCheck: CheckResult | undefined) => void;
  /** Access log: one JSON line per finished request, in batches to this sink; absent: off. */
  accessLog?: AccessLogSink;
  /**
   * Where /metrics reads the request figures: default this process's own. A node with
   * workers passes their sum (see `counters()` and `mergeCounters`).
   */
  counterSource?: CounterSource;
  /** Injected randomness for power-of-two-choices and check jitter. */
  random?: () => number;
  /**
   * Where the balancer's rotation starts (round-robin, weighted, least-connections'
   * tie-break): processes that balance the same pool side by side each take their own
   * (a node's proxy worker n takes n - 1), so their first requests reach different
   * origins. Default 0.
   */
  balancerPhase?: number;
  /** Injected wall clock (epoch ms) for health state and ejections. */
  now?: () => number;
  metrics?: Registry;
  /** TLS termination: certificates for `listenTls()`. */
  tls?: ProxyTlsOptions;
  /** Reach every origin over HTTPS, verifying its certificate; absent: cleartext HTTP/1.1. */
  originTls?: OriginTlsOptions;
  /**
   * The HTTP/1.1 client that talks to origins: 'native' (default: origin-client/, node's
   * own llhttp on plain sockets) or 'undici' (an undici Pool per origin, as before).
   */
  originClient?: OriginClientKind;
}

export type OriginClientKind = 'native' | 'undici';
export const ORIGIN_CLIENTS: readonly OriginClientKind[] = ['native', 'undici'];

export interface OriginTlsOptions {
  /** CA certificates (PEM) origin certificates must chain to; absent: the system's roots. */
  ca?: string | Buffer;
  /**
   * The name origin certificates must carry (and the SNI sent). Absent: the origin's IP
   * address, which its certificate must then list as an IP subjectAltName.
   */
  servername?: string;
}

export interface CounterPair {
  success: number;
  failed: number;
}

export interface ServerStats {
  id: string;
  ip: string;
  port: number;
  weight: number;
  success: number;
  failed: number;
  health: Health;
  ejected: boolean;
  ejectedUntil?: number;
  draining: boolean;
  active: number;
  lastCheck?: CheckResult;
  /** Outcomes of the last active checks (at most 10), oldest first; true = passed. */
  recentChecks?: boolean[];
}

export interface LimitStats {
  /** Connections closed at accept: maxConnections reached. */
  connectionsRefused: number;
  /** Connections closed at accept: maxConnectionsPerSource reached. */
  perSourceRefused: number;
  /**
   * accept() failures node reported. Running out of file descriptors is not among them:
   * libuv then accepts and closes the pending connections itself, uncounted — which is
   * why maxConnections should stay within the open-file limit.
   */
  acceptErrors: number;
  /** Requests answered 429: more pipelined at once than maxPipelineDepth. */
  pipelineRefused: number;
  /** Times a connection stopped being read because maxPipelineDepth requests were held. */
  pipelinePaused: number;
  /** Uploads answered 408 for coming slower than clientBodyMinRate. */
  bodyRateRefused: number;
  /** TLS handshakes that failed. */
  tlsHandshakeFailed: number;
}

export interface ProxyStats {
  /** Client requests and tunnels in flight (incl. pipelined requests waiting for their turn). */
  active: number;
  /** Client connections open. */
  connections: number;
  limits: LimitStats;
  /** Client requests answered with an origin response vs. ended by a proxy error or abort. */
  client: CounterPair;
  /** Origin attempts that produced a response vs. failed (connect, reset, timeout, bad response). */
  server: CounterPair;
  /** Every non-draining server is unhealthy or ejected, so all of them are routed to. */
  failOpen: boolean;
  servers: ServerStats[];
}

export interface Proxy {
  /** Created, not yet listening. */
  readonly server: Server;
  /** The HTTPS listener (an https.Server), when `tls` was given. */
  readonly tlsServer: Server | null;
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Listen for HTTPS (needs `tls`); requests over it carry `X-Forwarded-Proto: https`. */
  listenTls(port: number, host?: string): Promise<AddressInfo>;
  /**
   * Swap the certificates of the HTTPS listener (a reload): new handshakes use them,
   * established connections are not touched. Throws, changing nothing, when a
   * certificate or key is unusable.
   */
  setTls(tls: ProxyTlsOptions): void;
  /** Atomic swap of the routing snapshot: creates and drains origin pools, (re)starts checkers. */
  update(snapshot: PoolSnapshot): void;
  /** This process's stats. */
  stats(): ProxyStats;
  /**
   * This process's request figures as plain data (what a worker reports to its node).
   * `omitIdle`: without the origins that have no figure (see snapshotCounters).
   */
  counters(options?: { readonly omitIdle?: boolean }): DataPlaneCounters;
  /** Stats from figures gathered elsewhere (a node's workers, summed), with this proxy's servers and health. */
  statsFrom(data: DataPlaneCounters): ProxyStats;
  /** A health verdict from the process that runs the checks (healthChecks: 'external'). */
  applyHealth(serverId: string, health: Health, lastCheck?: CheckResult): void;
  /** Every server's verdict now. */
  healthTable(): { id: string; health: Health; lastCheck?: CheckResult }[];
  /** Stop accepting, let in-flight requests finish within the deadline, then destroy everything. */
  close(opts?: { deadlineMs?: number }): Promise<void>;
}
