import type { HealthCheckSpec, ServerRecord } from '@weldr/store';
import { Pool } from 'undici';
import type { Peer } from './balancers/balancer.js';
import type { ActiveChecker } from './health/active-checker.js';
import { HealthState } from './health/health-state.js';
import { PassiveHealth } from './health/passive.js';
import type { OriginFailure } from './errors.js';
import { OriginClient } from './origin-client/client.js';
import type { OriginDispatcher } from './origin-client/types.js';
import { newHistogram } from './stats.js';
import type { OriginClientKind, OriginTlsOptions, ProxyTimeouts } from './types.js';

export interface OriginPoolOptions {
  readonly timeouts: ProxyTimeouts;
  readonly maxHeaderSize: number;
  /** Connections to this origin at most; requests beyond wait in the pool's queue. */
  readonly originMaxConnections: number;
  /** HTTPS to origins, verified; null: cleartext. */
  readonly originTls: OriginTlsOptions | null;
  /** Which HTTP/1.1 client talks to origins (default 'native'). */
  readonly originClient?: OriginClientKind;
}

/**
 * One origin server: its keep-alive connection pool, its counters and health. Lives as
 * long as the server is in the snapshot; when a snapshot removes it, `drain()` lets the
 * requests already dispatched finish (undici's close waits for them) while the router
 * has already stopped choosing it.
 */
export class Origin implements Peer {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  /** "http://ip:port" (or https: with originTls), the undici origin. */
  readonly url: string;
  /** Host header for requests this proxy originates itself (health checks). */
  readonly authority: string;
  /** Made on first use (a request, a health check): see `pool`. */
  #pool: OriginDispatcher | null = null;
  #closed = false;
  readonly #options: OriginPoolOptions;
  record: ServerRecord;
  weight: number;
  /** Requests dispatched to this origin whose exchange has not ended (incl. tunnels). */
  active = 0;
  success = 0;
  failed = 0;
  /** Origin responses by status class (index 1..5 = 1xx..5xx), failed attempts by reason, attempt durations. */
  readonly byClass: number[] = [0, 0, 0, 0, 0, 0];
  readonly failures: Record<OriginFailure, number> = { refused: 0, reset: 0, timeout: 0, bad_response: 0 };
  readonly duration = newHistogram();
  readonly health = new HealthState();
  readonly passive = new PassiveHealth();
  checker: ActiveChecker | null = null;
  checkSpec: HealthCheckSpec | null = null;
  /** Timer that ends a passive ejection. */
  ejectionTimer: NodeJS.Timeout | null = null;
  removed = false;

  constructor(record: ServerRecord, options: OriginPoolOptions) {
    this.id = record.id;
    this.ip = record.ip;
    this.port = record.port;
    this.record = record;
    this.weight = Math.max(1, record.weight);
    this.authority = record.ip.includes(':') ? `[${record.ip}]:${record.port}` : `${record.ip}:${record.port}`;
    const tls = options.originTls;
    this.url = `${tls === null ? 'http' : 'https'}://${this.authority}`;
    this.#options = options;
  }

  /**
   * The keep-alive connection pool, made when the origin is first used. An undici Pool
   * costs ~16 KiB and a constructor's worth of garbage: made for every server a pool
   * change adds, on every node, it was most of an admin write's cost on a follower
   * (docs/benchmarks.md › Where the time of one write goes). The native OriginClient
   * is a few small objects, but the rule stays: 10,000 origins on every node and worker.
   */
  get pool(): OriginDispatcher {
    if (this.#pool === null) {
      this.#pool = this.#makePool();
      // Asked for after drain()/destroy(): closed at once, so a dispatch fails as it did on the closed pool.
      if (this.#closed) void this.#pool.close().catch(() => undefined);
    }
    return this.#pool;
  }

  /** The pool if one was made (stats read it without making one). */
  get openPool(): OriginDispatcher | null {
    return this.#pool;
  }

  #makePool(): OriginDispatcher {
    const t = this.#options.timeouts;
    const options = this.#options;
    const tls = options.originTls;
    if (options.originClient !== 'undici') {
      // The same settings as the undici Pool below (origin-client/client.ts).
      return new OriginClient({
        host: this.ip,
        port: this.port,
        tls: tls === null ? null : { ...(tls.ca !== undefined ? { ca: tls.ca } : {}), ...(tls.servername !== undefined ? { servername: tls.servername } : {}) },
        connectTimeoutMs: t.originConnectMs,
        headersTimeoutMs: t.originResponseMs,
        bodyTimeoutMs: t.originIdleMs,
        keepAliveTimeoutMs: t.originKeepAliveMs,
        maxHeaderSize: options.maxHeaderSize,
        connections: options.originMaxConnections,
      });
    }
    // undici's Pool has the shape of OriginDispatcher; its handler types differ only in
    // the raw header arrays (Buffers there), which headers.ts takes either way.
    return new Pool(this.url, {
      connectTimeout: t.originConnectMs,
      headersTimeout: t.originResponseMs,
      bodyTimeout: t.originIdleMs,
      keepAliveTimeout: t.originKeepAliveMs,
      maxHeaderSize: options.maxHeaderSize,
      connections: options.originMaxConnections,
      // Keep-alive to the origin, one request per connection at a time (pipelining
      // would make a slow response block the ones queued behind it).
      pipelining: 1,
      // RFC 9112 §6.3: a response whose body is shorter than its Content-Length is an
      // error, not a success; undici reports it as one.
      strictContentLength: true,
      // Verified always: an origin that cannot prove who it is gets no request (its
      // connect fails: 502 ORIGIN_REFUSED, retried elsewhere, passive ejection).
      ...(tls === null
        ? {}
        : { connect: { rejectUnauthorized: true, ...(tls.ca !== undefined ? { ca: tls.ca } : {}), ...(tls.servername !== undefined ? { servername: tls.servername } : {}) } }),
    }) as unknown as OriginDispatcher;
  }

  get draining(): boolean {
    return this.removed || this.record.draining;
  }

  /** Stop routing here is the router's job; this waits for in-flight work, then closes. */
  async drain(): Promise<void> {
    this.removed = true;
    this.#closed = true;
    this.stopTimers();
    await this.#pool?.close().catch(() => undefined);
  }

  async destroy(): Promise<void> {
    this.removed = true;
    this.#closed = true;
    this.stopTimers();
    await this.#pool?.destroy().catch(() => undefined);
  }

  stopTimers(): void {
    this.checker?.stop();
    this.checker = null;
    if (this.ejectionTimer !== null) clearTimeout(this.ejectionTimer);
    this.ejectionTimer = null;
  }
}
