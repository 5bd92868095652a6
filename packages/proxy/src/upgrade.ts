import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyOriginError, ERRORS, originFailureCode, rawErrorResponse, type ProxyErrorCode } from './errors.js';
import type { ProxyContext } from './forward.js';
import { rawValues, requestHeaders, responseHeaders, serializeHead } from './headers.js';
import type { Origin } from './origin-pool.js';
import { filterRequest, LOCAL_OPTIONS, type RequestTarget } from './request-filter.js';
import { mayRetry } from './upstream.js';

/**
 * An `Upgrade` request (WebSocket and any other protocol): forwarded with undici's
 * `upgrade` option; on 101 the two sockets are spliced together until either side
 * closes. Any other answer is relayed as a close-delimited response. A tunnel counts
 * as one in-flight request on its origin for as long as it is open, so draining a
 * removed server waits for its tunnels (up to the proxy's close deadline).
 */
class Tunnel implements Dispatcher.DispatchHandler {
  readonly ctx: ProxyContext;
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly target: RequestTarget;
  readonly headers: string[];
  readonly protocol: string;
  origin: Origin | null = null;
  tried: Origin[] | null = null;
  abort: ((err?: Error) => void) | null = null;
  connected = false;
  responded = false;
  ended = false;

  constructor(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget) {
    this.ctx = ctx;
    this.req = req;
    this.socket = socket;
    this.head = head;
    this.target = target;
    this.protocol = rawValues(req.rawHeaders, 'upgrade').join(', ');
    this.headers = requestHeaders(req.rawHeaders, {
      host: target.host,
      clientIp: req.socket.remoteAddress ?? '',
      via: ctx.via,
      maxForwards: null,
    });
    socket.on('error', () => this.#clientGone());
    socket.on('close', () => this.#clientGone());
  }

  dispatch(): void {
    const origin = this.ctx.upstream.select(this.tried);
    if (origin === null) {
      this.#fail('NO_ORIGIN');
      return;
    }
    this.origin = origin;
    this.connected = false;
    origin.active++;
    origin.pool.dispatch(
      { path: this.target.path, method: this.req.method!, headers: this.headers, upgrade: this.protocol, body: null },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) {
      abort();
      return;
    }
    this.abort = abort;
    this.connected = true;
  }

  onUpgrade(statusCode: number, raw: Buffer[] | string[] | null, originSocket: Duplex): void {
    const client = this.socket;
    if (this.ended) {
      originSocket.destroy();
      return;
    }
    this.responded = true;
    this.ctx.counters.serverSuccess++;
    this.ctx.counters.byClass[1]!++;
    this.ctx.upstream.succeeded(this.origin!);
    const headers = responseHeaders((raw ?? []).map((h) => (typeof h === 'string' ? Buffer.from(h, 'latin1') : h)), this.ctx.via, true);
    client.write(serializeHead(statusCode, 'Switching Protocols', headers));
    if (this.head.length !== 0) originSocket.write(this.head);
    const origin = this.origin!;
    // Either side closing or failing ends the tunnel: the other side gets a FIN after
    // its pending bytes and is then destroyed. A FIN from one side is passed on as a
    // FIN to the other (half-close, as pipe() does); the tunnel ends when both are closed.
    let shut = false;
    const shutdown = (): void => {
      if (shut) return;
      shut = true;
      endThenDestroy(client);
      endThenDestroy(originSocket);
    };
    let open = 2;
    const closed = (): void => {
      shutdown();
      if (--open === 0) {
        origin.active--;
        this.#finish(true);
      }
    };
    client.removeAllListeners('close');
    client.removeAllListeners('error');
    for (const side of [client, originSocket]) {
      side.on('error', () => side.destroy());
      side.once('close', closed);
      // Like nginx's proxy_read_timeout on upgraded connections: a tunnel with no
      // traffic either way for tunnelIdleMs is closed.
      if (side instanceof Socket) side.setTimeout(this.ctx.tunnelIdleMs, shutdown);
    }
    originSocket.pipe(client);
    client.pipe(originSocket);
    client.resume();
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200 || this.ended) return !this.ended;
    // The origin declined the upgrade: relay its answer, delimited by closing.
    this.responded = true;
    this.ctx.counters.serverSuccess++;
    this.ctx.counters.byClass[(statusCode / 100) | 0]!++;
    this.ctx.upstream.succeeded(this.origin!);
    const headers = responseHeaders(raw, this.ctx.via);
    headers.push('connection', 'close');
    this.socket.write(serializeHead(statusCode, STATUS_CODES[statusCode] ?? '', headers));
    this.socket.on('drain', resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onComplete(): void {
    this.#attemptEnded();
    this.socket.end();
    this.#finish(true);
  }

  onError(err: Error): void {
    const origin = this.#attemptEnded();
    if (this.ended) return;
    const reason = classifyOriginError(err, this.connected);
    this.ctx.counters.serverFailed++;
    this.ctx.counters.failures[reason]++;
    if (origin !== null) this.ctx.upstream.failed(origin, reason);
    if (this.responded) {
      this.socket.destroy();
      this.#finish(false);
      return;
    }
    const attempts = this.tried === null ? 1 : this.tried.length + 1;
    if (origin !== null && attempts <= this.ctx.maxRetries && mayRetry(reason, this.connected, 'GET', false)) {
      (this.tried ??= []).push(origin);
      this.dispatch();
      return;
    }
    this.#fail(originFailureCode(reason));
  }

  #attemptEnded(): Origin | null {
    const origin = this.origin;
    if (origin !== null) origin.active--;
    this.origin = null;
    return origin;
  }

  #fail(code: ProxyErrorCode): void {
    this.ctx.counters.byClass[(ERRORS[code].status / 100) | 0]!++;
    this.socket.end(rawErrorResponse(code));
    this.#finish(false);
  }

  #clientGone(): void {
    if (this.ended) return;
    this.#finish(false);
    this.abort?.(new Error('client closed connection'));
  }

  #finish(success: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const counters = this.ctx.counters;
    if (success) counters.clientSuccess++;
    else counters.clientFailed++;
    counters.active--;
    this.ctx.onExchangeEnd();
  }
}


function endThenDestroy(socket: Duplex): void {
  if (socket.destroyed) return;
  socket.end(() => socket.destroy());
}

/** The server's 'upgrade' listener. */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // Node detaches the socket from the HTTP parser for an upgrade; hold client bytes
  // until the tunnel exists so none are lost.
  socket.pause();
  ctx.counters.active++;
  const target: RequestTarget = { host: '', path: '', hasBody: false, maxForwards: null };
  const verdict = filterRequest(req, target);
  if (verdict !== null || target.hasBody) {
    const code: ProxyErrorCode = verdict === null || verdict === LOCAL_OPTIONS ? 'BAD_REQUEST' : verdict;
    socket.end(rawErrorResponse(code));
    ctx.counters.byClass[(ERRORS[code].status / 100) | 0]!++;
    ctx.counters.clientFailed++;
    ctx.counters.active--;
    ctx.onExchangeEnd();
    return;
  }
  new Tunnel(ctx, req, socket, head, target).dispatch();
}
