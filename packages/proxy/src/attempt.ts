import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyContext } from './context.js';
import { classifyOriginError, ERRORS, originFailureCode, type OriginFailure, type ProxyErrorCode } from './errors.js';
import type { Origin } from './origin-pool.js';
import { observe } from './stats.js';
import { mayRetry } from './upstream.js';

/**
 * What a proxied request and an upgrade tunnel share: choosing an origin per attempt,
 * undici's onConnect, the retry decision after a failure, and symmetric cleanup with
 * the counters. Subclasses say how to send (`send`), how to refuse (`fail`) and how to
 * cut a response that has already started (`cutResponse`).
 */
export abstract class OriginAttempt {
  readonly ctx: ProxyContext;
  /** The client connection (req.socket is nulled by node once an exchange is over). */
  readonly socket: Duplex;
  readonly method: string;
  readonly startedAt: number;
  hasBody = false;
  /** The origin of the current attempt. */
  origin: Origin | null = null;
  /** Origins that already failed this request (retries avoid them). */
  tried: Origin[] | null = null;
  abort: ((err?: Error) => void) | null = null;
  /** Request bytes were handed to the current origin socket. */
  connected = false;
  /** The response (or 101) has started towards the client. */
  responded = false;
  ended = false;
  lastFailure: OriginFailure = 'refused';
  /** performance.now() when the current attempt was dispatched (per-origin latency). */
  attemptStartedAt = 0;
  /** The id of the last origin tried (access log), or null. */
  lastOrigin: string | null = null;
  /** The status answered to the client (0 until known). */
  status = 0;
  /** Response body bytes sent to the client (access log). */
  bytes = 0;
  abstract readonly req: IncomingMessage;

  constructor(ctx: ProxyContext, socket: Duplex, method: string) {
    this.ctx = ctx;
    this.socket = socket;
    this.method = method;
    this.startedAt = performance.now();
  }

  /** Hand the request to `origin.pool.dispatch(…, this)`. */
  protected abstract send(origin: Origin): void;
  /** Answer with a proxy-generated error, then call finish(false). */
  abstract fail(code: ProxyErrorCode): void;
  /** Close the client side of a response that has already started. */
  protected abstract cutResponse(): void;
  /** The client's address (access log). */
  protected abstract clientAddress(): string;
  /** Subclass cleanup when the exchange ends (timers); `now` is performance.now(). */
  protected cleanup(_now: number): void {}

  dispatch(sameIfLast = false): void {
    const origin = this.ctx.upstream.select(this.tried, sameIfLast);
    if (origin === null) {
      this.fail(this.tried === null ? 'NO_ORIGIN' : originFailureCode(this.lastFailure));
      return;
    }
    this.origin = origin;
    this.lastOrigin = origin.id;
    this.connected = false;
    this.abort = null;
    origin.active++;
    this.attemptStartedAt = performance.now();
    this.send(origin);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) {
      // The client left while the request waited for a connection.
      abort();
      return;
    }
    this.abort = abort;
    this.connected = true;
  }

  onError(err: Error): void {
    const origin = this.attemptEnded();
    if (this.ended || this.socket.destroyed) {
      // Our own abort after the client left, or the client's upload failed: not the origin's fault.
      this.finish(false);
      return;
    }
    const reason = classifyOriginError(err, this.connected);
    const counters = this.ctx.counters;
    counters.serverFailed++;
    counters.failures[reason]++;
    this.lastFailure = reason;
    if (origin !== null) {
      origin.failures[reason]++;
      this.ctx.upstream.failed(origin, reason);
    }
    this.ctx.log.debug({ server: origin?.id, reason, err: (err as { code?: string }).code ?? err.message }, 'origin attempt failed');
    if (this.responded) {
      // Part of the response is already out: closing is the only honest signal left.
      this.cutResponse();
      this.finish(false);
      return;
    }
    const attempts = this.tried === null ? 1 : this.tried.length + 1;
    if (origin !== null && attempts <= this.ctx.maxRetries && mayRetry(reason, this.connected, this.method, this.hasBody)) {
      (this.tried ??= []).push(origin);
      this.dispatch(reason === 'reset');
      return;
    }
    this.fail(originFailureCode(reason));
  }

  /** The origin answered: count it for stats and passive health. */
  protected answered(status: number): void {
    const counters = this.ctx.counters;
    counters.serverSuccess++;
    const cls = (status / 100) | 0;
    counters.byClass[cls]!++;
    this.status = status;
    const origin = this.origin!;
    origin.byClass[cls]!++;
    this.ctx.upstream.succeeded(origin);
  }

  protected countError(code: ProxyErrorCode): void {
    const status = ERRORS[code].status;
    this.status = status;
    this.ctx.counters.byClass[(status / 100) | 0]!++;
  }

  /** The client connection closed before the exchange ended. */
  clientGone(): void {
    if (this.ended) return;
    this.finish(false);
    // Stop the origin request too (symmetric cleanup); undici then calls onError.
    this.abort?.(new Error('client closed connection'));
  }

  protected attemptEnded(): Origin | null {
    const origin = this.origin;
    if (origin !== null) {
      origin.active--;
      observe(origin.duration, (performance.now() - this.attemptStartedAt) / 1000);
    }
    this.origin = null;
    this.abort = null;
    return origin;
  }

  protected finish(success: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const now = performance.now();
    this.cleanup(now);
    const counters = this.ctx.counters;
    if (success) counters.clientSuccess++;
    else counters.clientFailed++;
    counters.active--;
    const elapsed = now - this.startedAt;
    counters.observeDuration(elapsed / 1000);
    const access = this.ctx.accessLog;
    if (access !== null) access.record(this.method, this.req.url ?? '', this.status, this.bytes, elapsed, this.lastOrigin, this.tried === null ? 0 : this.tried.length, this.clientAddress());
    this.ctx.onExchangeEnd();
  }
}
