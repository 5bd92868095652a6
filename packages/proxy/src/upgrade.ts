import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { OriginAttempt } from './attempt.js';
import type { ProxyContext } from './context.js';
import { ERRORS, rawErrorResponse, type ProxyErrorCode } from './errors.js';
import { onlyContinue, refusedConnection } from './forward.js';
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
  /** The protocols asked for, or null: forwarded as an ordinary request (HTTP/1.0). */
  readonly protocol: string | null;

  /** The request's content, read whole before forwarding (see handleUpgrade), or null. */
  readonly body: Buffer | null;
  /** The client's 'close' / 'error' listener until the tunnel is spliced. */
  readonly gone = (): void => this.clientGone();

  constructor(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget, body: Buffer | null = null) {
    super(ctx, socket, req.method!);
    this.req = req;
    this.head = head;
    this.body = body;
    this.target = target;
    // RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request (llhttp flags
    // it as an upgrade all the same): the request is forwarded without it, and the
    // answer relayed and the connection closed as for a declined upgrade.
    this.protocol = req.httpVersionMinor === 0 && req.httpVersionMajor === 1 ? null : rawValues(req.rawHeaders, 'upgrade').join(', ');
    this.headers = requestHeaders(req.rawHeaders, {
      host: target.host,
      clientIp: req.socket.remoteAddress ?? '',
      via: ctx.via,
      proto: ctx.proto,
      maxForwards: null,
    });
    socket.on('error', this.gone);
    socket.on('close', this.gone);
  }

  protected clientAddress(): string {
    return this.req.socket?.remoteAddress ?? '';
  }

  protected send(origin: Origin): void {
    origin.pool.dispatch(
      { path: this.target.path, method: this.method, headers: this.headers, upgrade: this.protocol, body: this.body },
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
    const headers = responseHeaders(raw ?? [], this.ctx.via, true);
    // latin1: field values are the origin's bytes, one char each (as node writes them).
    client.write(serializeHead(statusCode, 'Switching Protocols', headers), 'latin1');
    if (this.head.length !== 0) originSocket.write(this.head);
    // Either side closing or failing ends the tunnel: the other side gets a FIN after
    // its pending bytes and is then destroyed. A FIN from one side is passed on as a
    // FIN to the other (half-close, as pipe() does); the tunnel ends when both are closed.
    let shut = false;
    const shutdown = (): void => {
      if (shut) return;
      shut = true;
      endThenDestroy(client, this.ctx.stallMs);
      endThenDestroy(originSocket, this.ctx.stallMs);
    };
    let open = 2;
    const closed = (): void => {
      shutdown();
      if (--open === 0) {
        this.attemptEnded();
        this.finish(true);
      }
    };
    // Only this tunnel's own listeners: the connection tracker's 'close' listeners give
    // the connection's slot back (maxConnections, maxConnectionsPerSource).
    client.off('close', this.gone);
    client.off('error', this.gone);
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

  onHeaders(statusCode: number, raw: (Buffer | string)[], resume: () => void): boolean {
    if (statusCode < 200 || this.ended) return !this.ended;
    // The origin declined the upgrade: relay its answer, delimited by closing.
    const headers = responseHeaders(raw, this.ctx.via);
    this.responded = true;
    this.answered(statusCode);
    // RFC 9110 §6.6.1: node adds Date to the responses it writes, not to this raw one.
    if (rawValues(headers, 'date').length === 0) headers.push('date', new Date().toUTCString());
    headers.push('connection', 'close');
    this.socket.write(serializeHead(statusCode, STATUS_CODES[statusCode] ?? '', headers), 'latin1');
    this.socket.on('drain', () => {
      this.clearStall();
      resume();
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.socket.write(chunk)) return true;
    // The client reads slower than the origin sends: the origin waits (undici stops its
    // body timer while paused), but no longer than stallMs, as on the request path.
    this.armStall();
    return false;
  }

  onComplete(): void {
    this.attemptEnded();
    this.socket.end();
    // Whatever is still unsent must be taken within stallMs too.
    closeWhenAnswered(this.socket, this.ctx.stallMs);
    this.finish(true);
  }

  /** Close a client that takes no byte of the relayed answer for stallMs. */
  stallTimer: NodeJS.Timeout | null = null;

  armStall(): void {
    if (this.stallTimer !== null) return;
    this.stallTimer = setTimeout(destroySocket, this.ctx.stallMs, this.socket);
    if (!this.stallWatched) {
      this.stallWatched = true;
      this.socket.once('close', () => this.clearStall());
    }
  }

  stallWatched = false;

  clearStall(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  fail(code: ProxyErrorCode): void {
    this.countError(code);
    this.socket.end(rawErrorResponse(code));
    closeWhenAnswered(this.socket, LINGER_MS);
    this.finish(false);
  }

  protected cutResponse(): void {
    this.socket.destroy();
  }
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}

function discard(): void {}

/** How long a socket ended with an error answer keeps reading before it is closed (as server.ts's linger). */
const LINGER_MS = 2_000;

/**
 * After the proxy's last byte on a socket of the upgrade path (ended, not destroyed:
 * node's HTTP server keeps sockets half-open): close it when the client closes its side,
 * or `graceMs` after the answer at the latest. A client that neither read nor closed
 * kept it, and its place in the connection limits, for ever. Meanwhile what the client
 * still sends is read and discarded: closing with unread input makes the kernel answer
 * RST, which can destroy the answer before the client has read it.
 */
function closeWhenAnswered(socket: Duplex, graceMs: number): void {
  const timer = setTimeout(destroySocket, graceMs, socket);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // A client that half-closed may still be reading the answer (RFC 9112 §9.6): closed
  // once all of it is sent.
  socket.once('end', () => (socket.writableFinished ? socket.destroy() : socket.once('finish', () => socket.destroy())));
  socket.on('data', discard);
  socket.resume();
}

/**
 * End `socket` and destroy it once its pending bytes are sent, or after `graceMs` if its
 * peer has not taken them by then: a peer that reads nothing would keep it open for ever.
 */
function endThenDestroy(socket: Duplex, graceMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(destroySocket, graceMs, socket);
  timer.unref();
  // Not kept (nor the socket with it) once the socket has closed.
  socket.once('close', () => clearTimeout(timer));
  socket.end(() => socket.destroy());
}

/** Largest content an Upgrade request may carry: it is read whole before forwarding. */
const MAX_UPGRADE_BODY = 64 * 1024;

/** The server's 'upgrade' listener. */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // Node detaches the socket from the HTTP parser for an upgrade; hold client bytes
  // until the tunnel exists so none are lost.
  socket.pause();
  if (refusedConnection(socket) || !socket.writable) {
    // Pipelined behind a request refused for its framing (whose refusal closes the
    // connection): it may be the smuggled half. Neither forwarded nor answered, as
    // handleRequest does for any other request there.
    endThenDestroy(socket, ctx.stallMs);
    return;
  }
  ctx.counters.active++;
  const target: RequestTarget = { host: '', path: '', hasBody: false, maxForwards: null, via: ctx.via };
  const verdict = filterRequest(req, target);
  if (verdict !== null) {
    refuseUpgrade(ctx, socket, verdict === LOCAL_OPTIONS ? 'BAD_REQUEST' : verdict);
    return;
  }
  // node leaves an Upgrade request's Expect to this listener (its checkContinue and
  // checkExpectation are for other requests): the rules of handleExpect, for HTTP/1.1
  // and above (RFC 9110 §10.1.1: ignored in HTTP/1.0).
  const expects = req.httpVersionMinor !== 0 && rawValues(req.rawHeaders, 'expect').length !== 0;
  if (expects && !onlyContinue(req.rawHeaders)) {
    refuseUpgrade(ctx, socket, 'EXPECTATION_FAILED');
    return;
  }
  if (!target.hasBody) {
    new Tunnel(ctx, req, socket, head, target).dispatch();
    return;
  }
  // An Upgrade request may carry content (RFC 9110 §7.8: the server switches after
  // reading it, or ignores Upgrade and answers normally; `curl --http2 -d` sends one).
  // node hands over the raw socket before the body, so the body is framed here:
  // Content-Length only, small, read whole, then forwarded with the request.
  const length = rawValues(req.rawHeaders, 'content-length');
  if (length.length !== 1 || rawValues(req.rawHeaders, 'transfer-encoding').length !== 0) {
    refuseUpgrade(ctx, socket, 'BAD_REQUEST');
    return;
  }
  const n = Number(length[0]);
  if (n > MAX_UPGRADE_BODY) {
    refuseUpgrade(ctx, socket, 'CONTENT_TOO_LARGE');
    return;
  }
  // The client waits for 100 (Continue) before it sends the content it announced.
  if (expects && head.length < n) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  readContent(socket, head, n, ctx.upgradeBodyIdleMs, ctx.upgradeBodyMs, (content) => {
    if (content === null) refuseUpgrade(ctx, socket, 'CLIENT_TIMEOUT');
    else new Tunnel(ctx, req, socket, content.rest, target, content.body).dispatch();
  });
}

function refuseUpgrade(ctx: ProxyContext, socket: Duplex, code: ProxyErrorCode): void {
  if (socket.writable) {
    socket.end(rawErrorResponse(code));
    closeWhenAnswered(socket, LINGER_MS);
  } else socket.destroy();
  ctx.counters.byClass[(ERRORS[code].status / 100) | 0]!++;
  ctx.counters.clientFailed++;
  ctx.counters.active--;
  ctx.onExchangeEnd();
}

/**
 * Read `length` bytes of content from `head` and then `socket`; `done(null)` if the
 * client closes, sends nothing for `idleMs` or has not sent it all within `totalMs`.
 * Bytes beyond the content (the start of the upgraded protocol) are returned as `rest`.
 * The socket is left paused.
 */
function readContent(
  socket: Duplex,
  head: Buffer,
  length: number,
  idleMs: number,
  totalMs: number,
  done: (content: { body: Buffer; rest: Buffer } | null) => void,
): void {
  let buf = head;
  let timer: NodeJS.Timeout | null = null;
  let deadline: NodeJS.Timeout | null = null;
  const finish = (ok: boolean): void => {
    if (timer !== null) clearTimeout(timer);
    if (deadline !== null) clearTimeout(deadline);
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
    socket.off('error', onGone);
    socket.pause();
    done(ok ? { body: buf.subarray(0, length), rest: buf.subarray(length) } : null);
  };
  const onGone = (): void => finish(false);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length >= length) finish(true);
    else timer?.refresh();
  };
  if (buf.length >= length) {
    done({ body: buf.subarray(0, length), rest: buf.subarray(length) });
    return;
  }
  timer = setTimeout(onGone, idleMs);
  deadline = setTimeout(onGone, totalMs);
  socket.on('data', onData);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
  socket.resume();
}
