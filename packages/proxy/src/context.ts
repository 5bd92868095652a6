import type { AccessLog } from './access-log.js';
import type { Counters } from './stats.js';
import type { Logger } from './types.js';
import type { Upstream } from './upstream.js';

/** Shared, per-proxy state the request phases read. */
export interface ProxyContext {
  readonly upstream: Upstream;
  readonly counters: Counters;
  /** "1.1 <pseudonym>" */
  readonly via: string;
  /** The scheme clients used on this listener, sent as X-Forwarded-Proto. */
  readonly proto: 'http' | 'https';
  readonly maxRetries: number;
  /** Requests held per client connection (one forwarded, the rest waiting). */
  readonly maxPipelineDepth: number;
  /** Longest a response may stall on a client that does not read (ms). */
  readonly stallMs: number;
  /** Idle time after which an upgraded tunnel is closed (ms). */
  readonly tunnelIdleMs: number;
  /**
   * The content of an Upgrade request, read by the proxy itself (node's request timers
   * do not see it): longest gap between its bytes and longest time for all of it (ms).
   */
  readonly upgradeBodyIdleMs: number;
  readonly upgradeBodyMs: number;
  readonly log: Logger;
  /** One JSON line per finished request, when an access log is configured. */
  readonly accessLog: AccessLog | null;
  /** Called whenever an exchange ends; lets close() wait for in-flight work. */
  readonly onExchangeEnd: () => void;
}
