import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { classifyOriginError, errorBody, ERRORS, originFailureCode, type OriginFailure, type ProxyErrorCode } from './errors.js';
import { requestHeaders, responseHeaders, type ForwardInfo } from './headers.js';
import type { Origin } from './origin-pool.js';
import { filterRequest, LOCAL_OPTIONS, type RequestTarget } from './request-filter.js';
import type { Counters } from './stats.js';
import type { Logger } from './types.js';
import { mayRetry, type Upstream } from './upstream.js';

/** Shared, per-proxy state the request phases read. */
export interface ProxyContext {
  readonly upstream: Upstream;
  readonly counters: Counters;
  /** "1.1 <pseudonym>" */
  readonly via: string;
  readonly maxRetries: number;
  /** Longest a response may stall on a client that does not read (ms). */
  readonly stallMs: number;
  /** Idle time after which an upgraded tunnel is closed (ms). */
  readonly tunnelIdleMs: number;
  readonly log: Logger;
  /** Called whenever an exchange ends; lets close() wait for in-flight work. */
  readonly onExchangeEnd: () => void;
}

const kExchange = Symbol('weldr.exchange');
const kRejected = Symbol('weldr.rejected');

type TaggedResponse = ServerResponse & { [kExchange]?: Exchange };
type TaggedSocket = Socket & { [kRejected]?: boolean };

/** Methods answered for OPTIONS * and OPTIONS with Max-Forwards: 0. */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * One client request from filter to logging. It is its own undici dispatch handler
 * (the legacy onConnect/onHeaders/onData/onComplete/onError interface, which undici
 * calls directly with raw header Buffers; the newer controller API goes through a
 * wrapper that parses headers into an object on every response), so a proxied request
 * costs one object and no closures.
 */
export class Exchange implements RequestTarget, ForwardInfo, Dispatcher.DispatchHandler {
  host = '';
  path = '';
  hasBody = false;
  maxForwards: string | null = null;
  readonly clientIp: string;
  readonly via: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The client connection (req.socket is nulled by node once the exchange is over). */
  readonly socket: Socket;
  readonly ctx: ProxyContext;
  readonly startedAt: number;
  headers: string[] = [];
  /** The origin of the current attempt. */
  origin: Origin | null = null;
  /** Origins that already failed this request (retries avoid them). */
  tried: Origin[] | null = null;
  abort: ((err?: Error) => void) | null = null;
  /** Request bytes were handed to the current origin socket. */
  connected = false;
  /** Response headers were written to the client. */
  responded = false;
  ended = false;
  resumeOrigin: (() => void) | null = null;
  stallTimer: NodeJS.Timeout | null = null;
  lastFailure: OriginFailure = 'refused';

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    this.via = ctx.via;
    this.clientIp = this.socket.remoteAddress ?? '';
    this.startedAt = performance.now();
  }

  // ---- upstream phase -----------------------------------------------------------

  dispatch(sameIfLast = false): void {
    const origin = this.ctx.upstream.select(this.tried, sameIfLast);
    if (origin === null) {
      this.fail(this.tried === null ? 'NO_ORIGIN' : originFailureCode(this.lastFailure));
      return;
    }
    this.origin = origin;
    this.connected = false;
    this.abort = null;
    origin.active++;
    origin.pool.dispatch(
      {
        path: this.path,
        method: this.req.method!,
        headers: this.headers,
        body: this.hasBody ? this.req : null,
      },
      this,
    );
  }

  // ---- undici handler -------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) {
      // The client left while the request waited for a connection.
      abort();
      return;
    }
    this.abort = abort;
    this.connected = true;
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx interim responses are not relayed (a 100 never comes: Expect is not
    // forwarded; 101 arrives through onUpgrade on the tunnel path).
    if (statusCode < 200) return true;
    if (this.ended) return false;
    const res = this.res;
    try {
      res.writeHead(statusCode, statusText || undefined, responseHeaders(raw, this.via));
    } catch (err) {
      // A field node refuses to emit: the origin's response is unusable.
      throw Object.assign(new Error('origin response not forwardable'), { code: 'WELDR_BAD_RESPONSE', cause: err });
    }
    this.responded = true;
    this.resumeOrigin = resume;
    const counters = this.ctx.counters;
    counters.serverSuccess++;
    counters.byClass[(statusCode / 100) | 0]!++;
    this.ctx.upstream.succeeded(this.origin!);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // The client reads slower than the origin sends: pause the origin socket (undici
    // stops its body timer while paused) until the client drains, but never for longer
    // than stallMs, or a client that stops reading would pin the origin connection.
    if (this.stallTimer === null) {
      this.res.once('drain', onResponseDrain);
      this.stallTimer = setTimeout(onStall, this.ctx.stallMs, this);
    }
    return false;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#attemptEnded();
    const res = this.res;
    if (trailers !== null && trailers.length !== 0 && res.chunkedEncoding) res.addTrailers(pairs(trailers));
    res.end();
    this.#finish(true);
  }

  onError(err: Error): void {
    const origin = this.#attemptEnded();
    if (this.ended || this.socket.destroyed) {
      // Our own abort after the client left, or the client's upload failed: not the origin's fault.
      this.#finish(false);
      return;
    }
    const reason = classifyOriginError(err, this.connected);
    const counters = this.ctx.counters;
    counters.serverFailed++;
    counters.failures[reason]++;
    this.lastFailure = reason;
    if (origin !== null) this.ctx.upstream.failed(origin, reason);
    this.ctx.log.debug({ server: origin?.id, reason, err: (err as { code?: string }).code ?? err.message }, 'origin attempt failed');
    if (this.responded) {
      // Part of the response is already out: closing is the only honest signal left.
      this.res.destroy();
      this.#finish(false);
      return;
    }
    const attempts = this.tried === null ? 1 : this.tried.length + 1;
    if (origin !== null && attempts <= this.ctx.maxRetries && mayRetry(reason, this.connected, this.req.method!, this.hasBody)) {
      (this.tried ??= []).push(origin);
      this.dispatch(reason === 'reset');
      return;
    }
    this.fail(originFailureCode(reason));
  }

  // ---- client side ----------------------------------------------------------------

  /** The client connection closed before the exchange ended. */
  clientGone(): void {
    if (this.ended) return;
    this.#finish(false);
    // Stop the origin request too (symmetric cleanup); undici then calls onError.
    this.abort?.(new Error('client closed connection'));
  }

  drained(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.resumeOrigin?.();
  }

  /** Answer with a proxy-generated error and end the exchange. */
  fail(code: ProxyErrorCode): void {
    // An unread request body leaves the connection in an unknown state: close it.
    sendError(this.res, code, this.hasBody && !this.req.complete);
    this.ctx.counters.byClass[(ERRORS[code].status / 100) | 0]!++;
    this.#finish(false);
  }

  #attemptEnded(): Origin | null {
    const origin = this.origin;
    if (origin !== null) origin.active--;
    this.origin = null;
    this.abort = null;
    return origin;
  }

  #finish(success: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    const counters = this.ctx.counters;
    if (success) counters.clientSuccess++;
    else counters.clientFailed++;
    counters.active--;
    counters.observeDuration((performance.now() - this.startedAt) / 1000);
    this.ctx.onExchangeEnd();
  }
}

function onResponseDrain(this: TaggedResponse): void {
  this[kExchange]?.drained();
}

function onResponseClose(this: TaggedResponse): void {
  this[kExchange]?.clientGone();
}

function onStall(ex: Exchange): void {
  ex.stallTimer = null;
  ex.ctx.log.debug({ path: ex.path }, 'client stopped reading the response; closing');
  ex.res.destroy();
}

function pairs(raw: readonly (string | Buffer)[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1')]);
  return out;
}

/** Write a small proxy-generated error response (or close, if one already started). */
export function sendError(res: ServerResponse, code: ProxyErrorCode, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(code);
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'x-weldr-error', code,
    'cache-control', 'no-store',
  ];
  // RFC 9110 §15.5.6: a 405 names the methods that are allowed.
  if (code === 'METHOD_NOT_ALLOWED') headers.push('allow', ALLOW);
  if (close) headers.push('connection', 'close');
  res.writeHead(ERRORS[code].status, headers);
  res.end(body);
}

/** Refuse every later request on a connection whose framing can no longer be trusted. */
export function markRejected(socket: Socket): void {
  (socket as TaggedSocket)[kRejected] = true;
}

/** The 'request' listener: filter, then forward. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  if ((req.socket as TaggedSocket)[kRejected] === true) {
    // A request pipelined behind one we refused for its framing: it may be the
    // smuggled half. Never forwarded; the connection is closing anyway.
    req.socket.destroy();
    return;
  }
  const counters = ctx.counters;
  counters.active++;
  const ex = new Exchange(ctx, req, res);
  const verdict = filterRequest(req, ex);
  if (verdict !== null) {
    if (verdict === LOCAL_OPTIONS) {
      res.writeHead(200, ['allow', ALLOW, 'content-length', '0', 'via', ctx.via]);
      res.end();
      counters.byClass[2]!++;
      counters.clientSuccess++;
      counters.active--;
      ctx.onExchangeEnd();
      return;
    }
    markRejected(req.socket);
    sendError(res, verdict, true);
    counters.byClass[(ERRORS[verdict].status / 100) | 0]!++;
    counters.clientFailed++;
    counters.active--;
    ctx.onExchangeEnd();
    ctx.log.debug({ code: verdict, method: req.method, url: req.url }, 'request rejected');
    return;
  }
  ex.headers = requestHeaders(req.rawHeaders, ex);
  (res as TaggedResponse)[kExchange] = ex;
  res.once('close', onResponseClose);
  ex.dispatch();
}
