import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { OriginAttempt } from './attempt.js';
import type { ProxyContext } from './context.js';
import { ERRORS, rawErrorResponse, type ProxyErrorCode } from './errors.js';
import { rawValues, requestHeaders, responseHeaders, serializeHead } from './headers.js';
import type { Origin } from './origin-pool.js';
import { filterRequest, LOCAL_OPTIONS, type RequestTarget } from './request-filter.js';

/**
 * An `Upgrade` request (WebSocket and any other protocol): forwarded with undici's
 * `upgrade` option; on 101 the two sockets are spliced together until either side
 * closes. Any other answer is relayed as a close-delimited response. A tunnel counts
 * as one in-flight request on its origin for as long as it is open; removing the
 * server does not cut it (undici detaches upgraded sockets from the pool), close()
 * does, after its deadline.
 */
class Tunnel extends OriginAttempt implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly head: Buffer;
  readonly target: RequestTarget;
  readonly headers: string[];
  readonly protocol: string;

  constructor(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget) {
    super(ctx, socket, req.method!);
    this.req = req;
    this.head = head;
    this.target = target;
    this.protocol = rawValues(req.rawHeaders, 'upgrade').join(', ');
    this.headers = requestHeaders(req.rawHeaders, {
      host: target.host,
      clientIp: req.socket.remoteAddress ?? '',
      via: ctx.via,
      maxForwards: null,
    });
    socket.on('error', () => this.clientGone());
    socket.on('close', () => this.clientGone());
  }

  protected send(origin: Origin): void {
    origin.pool.dispatch(
      { path: this.target.path, method: this.method, headers: this.headers, upgrade: this.protocol, body: null },
      this,
    );
  }

  onUpgrade(statusCode: number, raw: Buffer[] | string[] | null, originSocket: Duplex): void {
    const client = this.socket;
    if (this.ended) {
      originSocket.destroy();
      return;
    }
    this.responded = true;
    this.answered(statusCode);
    const headers = responseHeaders((raw ?? []).map((h) => (typeof h === 'string' ? Buffer.from(h, 'latin1') : h)), this.ctx.via, true);
    client.write(serializeHead(statusCode, 'Switching Protocols', headers));
    if (this.head.length !== 0) originSocket.write(this.head);
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
        this.attemptEnded();
        this.finish(true);
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
    const headers = responseHeaders(raw, this.ctx.via);
    this.responded = true;
    this.answered(statusCode);
    // RFC 9110 §6.6.1: node adds Date to the responses it writes, not to this raw one.
    if (rawValues(headers, 'date').length === 0) headers.push('date', new Date().toUTCString());
    headers.push('connection', 'close');
    this.socket.write(serializeHead(statusCode, STATUS_CODES[statusCode] ?? '', headers));
    this.socket.on('drain', resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onComplete(): void {
    this.attemptEnded();
    this.socket.end();
    this.finish(true);
  }

  fail(code: ProxyErrorCode): void {
    this.countError(code);
    this.socket.end(rawErrorResponse(code));
    this.finish(false);
  }

  protected cutResponse(): void {
    this.socket.destroy();
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
