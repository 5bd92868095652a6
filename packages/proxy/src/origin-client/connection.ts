import { createRequire } from 'node:module';
import net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { giveBack, ReadArena, SMALL_ARENA, takeBigArena } from './read-arena.js';
import { aborted, badResponse, bodyTimeout, connectTimeout, headersTimeout, socketClosed } from './errors.js';
import { expectsPayload, headContentLength, keepAliveTimeoutMs, requestHead } from './request-head.js';
import { unwatch, watch, type Timed } from './ticker.js';
import type { OriginClientOptions, OriginHandler, OriginRequest } from './types.js';

// node's own llhttp binding, the parser node:http uses: native code fed the socket's
// chunks as they are (undici's wasm llhttp copies every chunk into wasm memory first).
// Internal, but stable for years and used by node's own client and server.
interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): Error | undefined;
  close(): void;
  free(): void;
  [key: number]: unknown;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: { new (): NativeParser; RESPONSE: number; kLenientNone: number; [key: string]: number };
};
const kOnMessageBegin = HTTPParser.kOnMessageBegin! | 0;
const kOnHeaders = HTTPParser.kOnHeaders! | 0;
const kOnHeadersComplete = HTTPParser.kOnHeadersComplete! | 0;
const kOnBody = HTTPParser.kOnBody! | 0;
const kOnMessageComplete = HTTPParser.kOnMessageComplete! | 0;
/**
 * kLenientKeepAlive: llhttp otherwise stops parsing after any message that said
 * `Connection: close` (or was HTTP/1.0 without keep-alive) — an interim 103 too, so the
 * final response after it failed as a parse error (502; undici alike). Reuse is decided
 * here (keepAlive), and bytes after a final response are garbage whatever the parser's
 * state (onMessageBegin), so nothing else changes.
 */
const LENIENCY = HTTPParser.kLenientKeepAlive! | 0;

/** What a connection needs of its pool (client.ts). */
export interface ConnectionOwner {
  readonly options: OriginClientOptions;
  tlsSession: Buffer | null;
  /** The connection is established and free. */
  connected(conn: OriginConnection): void;
  /** The connection finished a request and may be reused. */
  released(conn: OriginConnection): void;
  /** A request given to `queueSend` whose connection closed before the check phase. */
  requeue(request: OriginRequest, handler: OriginHandler): void;
  /** The connection failed before it was established. */
  connectFailed(conn: OriginConnection, err: Error): void;
  /** The connection is gone (closed, failed, or handed to an upgrade). */
  gone(conn: OriginConnection, wasConnecting: boolean): void;
}

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;

const T_NONE = 0;
const T_CONNECT = 1;
const T_HEADERS = 2;
const T_BODY = 3;
const T_IDLE = 4;

/**
 * Close a kept-alive connection this long before the origin's announced Keep-Alive
 * timeout, as undici does (its keepAliveTimeoutThreshold, 2 s): a request written just
 * as the origin closes would be lost.
 */
const KEEP_ALIVE_MARGIN_MS = 2_000;

/**
 * One connection to an origin, one request at a time (no pipelining). The parser's
 * callbacks are set once per connection; per request the connection allocates the head
 * string, the header arrays and the `abort` closure the handler keeps.
 */
export class OriginConnection implements Timed {
  readonly owner: ConnectionOwner;
  readonly socket: net.Socket;
  readonly parser: NativeParser;
  state = CONNECTING;
  deadline = 0;
  timer = T_NONE;
  handler: OriginHandler | null = null;
  /** The request on the connection (kept until its head is written: it may be requeued). */
  request: OriginRequest | null = null;
  /** Counts requests: an `abort` from an earlier request does nothing. */
  seq = 0;
  method = '';
  upgradeAsked = false;
  body: Readable | null = null;
  chunked = false;
  /** The request (head and body) is fully written. */
  requestSent = false;
  /** The final response is complete (onComplete called). */
  responseDone = false;
  /** Bytes came that belong to no request (after a complete response): never reused. */
  garbage = false;
  /** A handler threw, or the response is unusable: the connection fails with it. */
  failure: Error | null = null;
  interim = false;
  upgraded = false;
  headersDone = false;
  status = 0;
  statusText = '';
  headers: string[] = [];
  trailers: string[] | null = null;
  keepAlive = true;
  /** The origin's Keep-Alive timeout hint (ms), or null. */
  keepAliveHint: number | null = null;
  paused = false;
  /** The current request's `resume` for its handler (see `resumeFor`). */
  resume: () => void = noop;
  /** The request waiting for this turn's check phase to be sent here (queueSend). */
  laterRequest: OriginRequest | null = null;
  laterHandler: OriginHandler | null = null;
  /** The request head waiting for this turn's check phase (queueHead), or null. */
  pendingHead: string | null = null;
  /** `flushes` when the connection last went idle (see `sameTurn`). */
  idleTurn = -1;
  /**
   * Bytes of a Content-Length body still to come, read past the parser (`rawBody`), or 0.
   */
  rawLeft = 0;
  /** What a cleartext socket's last read went into (read-arena.ts): `small` or `big`. TLS sockets read as node does. */
  arena: ReadArena | null = null;
  /** The connection's own arena: response heads and small bodies. */
  small: ReadArena | null = null;
  /** A pooled arena, borrowed for the rest of a response whose reads fill their regions. */
  big: ReadArena | null = null;
  /** The last read filled its region: more is arriving (nextRead). */
  filled = false;
  /** After a 101: reads go to the socket's new owner (onRead). */
  handedOver = false;
  /** Inside parser.execute/finish (see teardown). */
  executing = false;
  closeParser = false;

  constructor(owner: ConnectionOwner) {
    this.owner = owner;
    const o = owner.options;
    this.socket =
      o.tls === null
        ? net.connect({
            host: o.host,
            port: o.port,
            noDelay: true,
            keepAlive: true,
            keepAliveInitialDelay: 60_000,
            onread: { buffer: () => this.nextRead(), callback: (n: number, buf: Buffer) => this.onRead(n, buf) },
          })
        : tls.connect({
            host: o.host,
            port: o.port,
            rejectUnauthorized: true,
            ALPNProtocols: ['http/1.1'],
            ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
            ...(o.tls.servername !== undefined ? { servername: o.tls.servername } : {}),
            ...(owner.tlsSession !== null ? { session: owner.tlsSession } : {}),
          });
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, o.maxHeaderSize, LENIENCY);
    parser[kOnMessageBegin] = this.onMessageBegin.bind(this);
    parser[kOnHeaders] = this.onHeaderFields.bind(this);
    parser[kOnHeadersComplete] = this.onHeadersComplete.bind(this);
    parser[kOnBody] = this.onBody.bind(this);
    parser[kOnMessageComplete] = this.onMessageComplete.bind(this);
    this.parser = parser;
    this.onBodyData = this.onBodyData.bind(this);
    this.onBodyEnd = this.onBodyEnd.bind(this);
    this.onBodyError = this.onBodyError.bind(this);
    this.onBodyClose = this.onBodyClose.bind(this);
    const socket = this.socket;
    if (o.tls !== null) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
    }
    socket.once(o.tls === null ? 'connect' : 'secureConnect', () => this.onConnected());
    if (o.tls !== null) socket.on('session', (session: Buffer) => (owner.tlsSession = session));
    if (o.tls !== null) socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (err: Error) => this.onSocketGone(err));
    socket.on('close', () => this.onSocketGone(null));
    socket.on('drain', () => this.body?.resume());
    this.arm(T_CONNECT, o.connectTimeoutMs);
    watch(this);
  }

  arm(kind: number, ms: number): void {
    this.timer = kind;
    this.deadline = performance.now() + ms;
  }

  disarm(): void {
    this.timer = T_NONE;
    this.deadline = 0;
  }

  expired(): void {
    const kind = this.timer;
    this.disarm();
    switch (kind) {
      case T_CONNECT:
        this.connectFailed(connectTimeout());
        return;
      case T_HEADERS:
        // undici's rule: the response-head timeout does not run out while the request
        // body is still being sent and the origin is taking it.
        if (!this.requestSent && this.body !== null && !this.socket.writableNeedDrain) {
          this.arm(T_HEADERS, this.owner.options.headersTimeoutMs);
          return;
        }
        this.fail(headersTimeout());
        return;
      case T_BODY:
        if (this.paused) return;
        this.fail(bodyTimeout());
        return;
      case T_IDLE:
        this.close();
        return;
    }
  }

  // ---- lifecycle ------------------------------------------------------------------

  onConnected(): void {
    if (this.state !== CONNECTING) return;
    this.state = IDLE;
    this.disarm();
    this.owner.connected(this);
  }

  connectFailed(err: Error): void {
    if (this.state !== CONNECTING) return;
    this.state = CLOSED;
    this.teardown();
    this.socket.destroy();
    this.owner.connectFailed(this, err);
  }

  /** Idle: wait for the next request, close after the keep-alive timeout. */
  idle(): void {
    this.state = IDLE;
    this.idleTurn = flushes;
    // The handler its arena last lent to is let go of once it is done (forgetHolder).
    if (this.small !== null && this.small.lentTo !== null) idledNow.push(this);
    // The turn's check phase ends `sameTurn` (at most one immediate per turn, shared).
    scheduleFlush();
    const o = this.owner.options;
    let ms = o.keepAliveTimeoutMs;
    if (this.keepAliveHint !== null) ms = Math.min(ms, this.keepAliveHint - KEEP_ALIVE_MARGIN_MS);
    this.arm(T_IDLE, ms);
  }

  /**
   * Went idle in this event-loop turn (no check phase since): the response that freed it
   * was read in this poll phase, and the FIN of an origin that closes after it may not
   * be (client.ts `dispatch`).
   */
  sameTurn(): boolean {
    return this.idleTurn === flushes;
  }

  /** Whether an idle connection can take a request now (the origin has not closed it). */
  usable(): boolean {
    return this.state === IDLE && !this.socket.destroyed && this.socket.readable && this.socket.writable;
  }

  close(): void {
    if (this.state === CLOSED) return;
    const wasConnecting = this.state === CONNECTING;
    this.state = CLOSED;
    this.teardown();
    this.socket.destroy();
    this.owner.gone(this, wasConnecting);
  }

  teardown(): void {
    this.pendingHead = null;
    // The socket reads no more (destroyed, or handed over: then it reads on, see onRead).
    if (this.big !== null && !this.handedOver) {
      giveBack(this.big);
      this.big = null;
    }
    this.disarm();
    unwatch(this);
    this.detachBody();
    // Never freed from inside one of its own callbacks (a handler's abort): after execute returns.
    if (this.executing) this.closeParser = true;
    else this.parser.close();
  }

  onSocketEnd(): void {
    if (this.state === BUSY && this.handler !== null && this.pendingHead !== null) {
      this.unsent(socketClosed());
      return;
    }
    if (this.state === BUSY && this.handler !== null) {
      if (this.headersDone && !this.upgraded && this.rawLeft === 0) {
        // A close-delimited body ends here (RFC 9112 §6.3 rule 8); any other is cut short.
        this.executing = true;
        this.parser.finish();
        this.executing = false;
        if (this.closeParser) {
          this.closeParser = false;
          this.parser.close();
        }
        if (this.failure !== null) {
          this.fail(this.failure);
          return;
        }
        if (this.handler === null) {
          this.close();
          return;
        }
      }
      this.fail(socketClosed());
      return;
    }
    this.close();
  }

  onSocketGone(err: Error | null): void {
    if (this.state === CONNECTING) {
      this.connectFailed(err ?? socketClosed());
      return;
    }
    if (this.state === CLOSED) return;
    if (this.handler !== null && this.pendingHead !== null) {
      this.unsent(err ?? socketClosed());
      return;
    }
    if (this.handler !== null) {
      // ECONNRESET and the like keep their code (a reset); a plain close is undici's "other side closed".
      this.fail(err ?? socketClosed());
      return;
    }
    this.close();
  }

  // ---- request --------------------------------------------------------------------

  /** Write `req` on this (connected, idle) connection; `handler` gets the response. */
  send(req: OriginRequest, handler: OriginHandler): void {
    this.state = BUSY;
    this.handler = handler;
    const seq = ++this.seq;
    this.method = req.method;
    this.upgradeAsked = req.upgrade != null;
    this.requestSent = false;
    this.responseDone = false;
    this.garbage = false;
    this.failure = null;
    this.interim = false;
    this.upgraded = false;
    this.headersDone = false;
    this.status = 0;
    this.headers = [];
    this.trailers = null;
    this.keepAlive = true;
    this.paused = false;
    this.rawLeft = 0;
    this.disarm();
    // Per request, so that a call left over from an earlier request (a late 'drain' of
    // its client) neither aborts nor resumes the one on the connection now.
    this.resume = () => this.resumeFor(seq);
    this.request = req;
    const socket = this.socket;
    // undici's rule, kept: a HEAD response ends the connection. An origin that wrongly
    // sends a body after a HEAD response would otherwise have it read as the start of
    // the next response on the connection (response desync).
    const head0 = req.method === 'HEAD';
    if (head0) this.keepAlive = false;
    let head = requestHead(req.method, req.path, req.headers, req.upgrade ?? null, head0);
    const body = req.body;
    this.arm(T_HEADERS, this.owner.options.headersTimeoutMs);
    if (body === null || (Buffer.isBuffer(body) && body.length === 0)) {
      head += expectsPayload(req.method) ? 'content-length: 0\r\n\r\n' : '\r\n';
      this.queueHead(head);
      this.requestSent = true;
      return;
    }
    if (Buffer.isBuffer(body)) {
      if (!this.connect()) return;
      socket.cork();
      socket.write(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
      socket.write(body);
      socket.uncork();
      this.requestSent = true;
      // undici's rule: content on a method that does not anticipate it may confuse the origin; not reused.
      if (!expectsPayload(req.method)) this.keepAlive = false;
      return;
    }
    // A streamed body: the client's, with its own Content-Length, else chunked (its
    // Transfer-Encoding was a hop-by-hop field, re-derived here).
    const length = headContentLength;
    this.chunked = length === null;
    // undici's rule: content on a method that does not anticipate it; not reused.
    if (!expectsPayload(req.method)) this.keepAlive = false;
    this.queueHead(length === null ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}content-length: ${length}\r\n\r\n`);
    this.body = body;
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
    body.on('close', this.onBodyClose);
    // An IncomingMessage that already ended (its body was read before) emits nothing more.
    if ((body as Readable & { readableEnded?: boolean }).readableEnded) this.onBodyEnd();
    else body.resume();
  }

  /**
   * The handler's onConnect, called as the request's first byte is handed to the socket
   * (undici calls it as it writes): until then nothing was sent, and a close or stray
   * bytes from the origin leave the request unsent (`unsent`), not half-done. false: the
   * handler aborted at once (its client left while the request waited).
   */
  connect(): boolean {
    const handler = this.handler!;
    const seq = this.seq;
    this.request = null;
    handler.onConnect((err?: Error) => this.abort(seq, err));
    return this.handler === handler && this.seq === seq && this.state === BUSY;
  }

  /**
   * The origin closed the connection, or sent bytes, before the request's head was
   * written: nothing of the request left. On a reused connection (the origin closed it
   * as the previous response ended, e.g. a FIN right after it without `Connection:
   * close`) the request goes back to the head of the queue, as one that waited for an
   * idle connection does (sendLater); on a connection's first request it fails before
   * onConnect, a refusal, which attempt.ts retries whatever the method.
   */
  unsent(err: Error): void {
    const handler = this.handler!;
    const request = this.request!;
    this.request = null;
    this.handler = null;
    // A streamed body not read yet: kept for the next attempt (it was set flowing).
    const body = this.body;
    this.detachBody();
    body?.pause();
    this.close();
    if (this.seq > 1) this.owner.requeue(request, handler);
    else handler.onError(err);
  }

  /**
   * Request heads are written in the event-loop turn's check phase, all of the turn's
   * together, rather than each from inside the client request's handler: the origin
   * (nginx on the other core in the pinned benchmark) is then woken once per batch, not
   * once per request — each wake-up an inter-processor interrupt on a VM, as for the
   * client side's responses (forward.ts, flushResponses). Measured with writes made at
   * once: the proxy's core idle a third of the time and 20–25 % fewer req/s than undici
   * (whose writes wait a turn too) at 7–8 % less CPU per request.
   */
  queueHead(head: string): void {
    this.pendingHead = head;
    pendingHeads.push(this);
    scheduleFlush();
  }

  /** An idle connection is reserved for `request`, sent in the check phase (client.ts). */
  queueSend(request: OriginRequest, handler: OriginHandler): void {
    this.reserve(request, handler, pendingSends);
  }

  /**
   * A connection just released by a response is reserved for `request`, sent in the
   * check phase of the next turn: after one more poll phase, which reads the FIN of an
   * origin that closes right after its responses without `Connection: close` (a node
   * origin's `end(data)` sends the FIN a turn of its own loop after the data).
   */
  queueSendNextTurn(request: OriginRequest, handler: OriginHandler): void {
    this.reserve(request, handler, deferredSends);
  }

  /** Busy with `request` from now; sent from `list` by flushOrigins (sendLater). */
  reserve(request: OriginRequest, handler: OriginHandler, list: OriginConnection[]): void {
    this.state = BUSY;
    this.disarm();
    this.laterRequest = request;
    this.laterHandler = handler;
    list.push(this);
    scheduleFlush();
  }

  sendLater(): void {
    const request = this.laterRequest!;
    const handler = this.laterHandler!;
    this.laterRequest = null;
    this.laterHandler = null;
    if (this.state === BUSY && this.handler === null && !this.socket.destroyed && this.socket.readable && this.socket.writable) {
      this.send(request, handler);
      return;
    }
    // The origin closed it meanwhile (what the wait is for).
    if (this.state !== CLOSED) this.close();
    this.owner.requeue(request, handler);
  }

  /** Write the queued head now (before body bytes that came first, or from writeHeads). */
  writeHead(): void {
    const head = this.pendingHead;
    if (head === null) return;
    this.pendingHead = null;
    if (this.state !== BUSY || this.socket.destroyed || this.handler === null) return;
    if (!this.connect()) return;
    this.socket.write(head, 'latin1');
  }

  onBodyData(chunk: Buffer): void {
    if (this.body === null || chunk.length === 0) return;
    this.writeHead();
    // The handler aborted as it was told of the connection.
    if (this.body === null) return;
    const socket = this.socket;
    let ok: boolean;
    if (this.chunked) {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else ok = socket.write(chunk);
    // The origin takes the body slower than the client sends it: the client waits ('drain').
    if (!ok) this.body.pause();
  }

  onBodyEnd(): void {
    if (this.body === null) return;
    this.writeHead();
    if (this.body === null) return;
    if (this.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.detachBody();
    this.requestSent = true;
  }

  onBodyError(err: Error): void {
    if (this.body === null) return;
    this.detachBody();
    this.fail(err);
  }

  onBodyClose(): void {
    // 'close' before 'end': the client's upload was cut.
    if (this.body === null) return;
    this.detachBody();
    this.fail(aborted());
  }

  detachBody(): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    body.off('close', this.onBodyClose);
  }

  abort(seq: number, err?: Error): void {
    if (seq !== this.seq || this.handler === null) return;
    this.fail(err ?? aborted());
  }

  /** The request fails: its handler is told once, and the connection is not reused. */
  fail(err: Error): void {
    const handler = this.handler;
    this.handler = null;
    this.request = null;
    this.close();
    if (handler !== null) handler.onError(err);
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (this.timer === T_BODY) this.disarm();
    this.socket.pause();
  }

  resumeFor(seq: number): void {
    if (seq !== this.seq || !this.paused || this.state !== BUSY) return;
    this.paused = false;
    if (this.handler !== null && this.headersDone) this.arm(T_BODY, this.owner.options.bodyTimeoutMs);
    this.socket.resume();
  }

  // ---- response -------------------------------------------------------------------

  /**
   * The memory for the socket's next read (node calls this after each read, and once
   * first): the connection's arena, reset when the bytes it lent are no longer held
   * (read-arena.ts). A small one while idle; a big one from the read that filled its
   * region until the connection is idle again.
   */
  nextRead(): Buffer {
    if (this.state === BUSY && (this.big !== null || this.filled) && !this.handedOver) {
      let big = this.big;
      if (big === null || !big.settle()) {
        if (big !== null) giveBack(big);
        big = this.big = takeBigArena();
      }
      this.arena = big;
      return big.region();
    }
    if (this.big !== null) {
      giveBack(this.big);
      this.big = null;
    }
    let small = this.small;
    // Full of bytes still held: left to their holder, and a new one.
    if (small === null || !small.settle()) small = this.small = new ReadArena(SMALL_ARENA);
    this.arena = small;
    return small.region();
  }

  /**
   * An idle connection's arena would otherwise keep the last handler it lent to (an
   * exchange, its request and response) until the connection's next read: under round
   * robin over many origins ~100 ms, a young-generation cycle or two, enough to promote
   * them all to the old generation (docs/benchmarks.md, "1,000 origins"). Called a turn
   * after the connection went idle, once the handler's flush has run; a handler still
   * holding (a slow client) stays referenced until the next read.
   */
  forgetHolder(): void {
    this.small?.forget();
  }

  /** A read of `n` bytes into `buf`, the region nextRead gave (cleartext sockets). */
  onRead(n: number, buf: Buffer): boolean {
    const arena = this.arena;
    if (arena !== null) arena.off += n;
    this.filled = n === buf.length;
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    if (this.handedOver) {
      // The socket is a tunnel's now: its bytes go to the stream it reads (copied: the
      // arena is read into again), and reading waits while that stream is full.
      return this.socket.push(Buffer.from(chunk));
    }
    this.onSocketData(chunk);
    return true;
  }

  onSocketData(chunk: Buffer): void {
    if (this.state !== BUSY || this.handler === null) {
      // Bytes on an idle connection answer nothing that was asked: the connection can
      // no longer be trusted to frame the next response (response desync).
      if (this.state !== CLOSED) this.close();
      return;
    }
    if (this.pendingHead !== null) {
      // Bytes before the request head has even left (it waits for the check phase): not
      // an answer to it (e.g. a 408 an origin sends as it closes an idle connection).
      this.unsent(socketClosed());
      return;
    }
    if (this.rawLeft !== 0) {
      this.rawBody(chunk);
      return;
    }
    this.executing = true;
    const ret = this.parser.execute(chunk);
    this.executing = false;
    if (this.closeParser) {
      this.closeParser = false;
      this.parser.close();
    }
    if (this.failure !== null) {
      this.fail(this.failure);
      return;
    }
    if (ret instanceof Error) {
      if (this.handler !== null) this.fail(ret);
      else this.close();
      return;
    }
    if (this.upgraded) {
      this.handOver(chunk.subarray(ret));
      return;
    }
    if (this.rawLeft !== 0) {
      // The parser stopped at the end of the head (rawBodyLength): the rest is body.
      if (ret < chunk.length) this.rawBody(chunk.subarray(ret));
      return;
    }
    if (this.responseDone) this.done();
  }

  /**
   * Bytes of a Content-Length body, handed to the handler as views of the socket's read
   * chunk. node's parser copies every body span it reports into a Buffer of its own
   * (node_http_parser.cc, on_body: Buffer::Copy): 8 % of the proxy's CPU on 1 MiB
   * responses (`perf`: memmove under Parser::on_body), and a second allocation per read
   * that V8 counts as external memory (more scavenges). A Content-Length body needs no
   * parsing, only counting, so the parser is stopped at the end of the head (as for an
   * upgrade, rawBodyLength) and the body is counted here. Bytes beyond the body are
   * garbage, as the parser would find them: the connection is not reused.
   */
  rawBody(chunk: Buffer): void {
    const handler = this.handler!;
    const left = this.rawLeft;
    let extra = false;
    if (chunk.length > left) {
      chunk = chunk.subarray(0, left);
      extra = true;
    }
    this.rawLeft = left - chunk.length;
    const arena = this.arena;
    if (arena !== null) {
      if (arena === this.small && this.filled && this.rawLeft !== 0 && this.big === null) {
        // The small arena's read filled it and the body goes on: the rest comes into a
        // big one (nextRead). These first bytes are copied to its start, so that the small
        // arena is free again when the connection is (a handler counts as holding until
        // all of its bytes are sent, so they would keep the small one).
        this.big = takeBigArena();
        chunk = this.big.lendCopy(chunk, handler);
      } else arena.lend(handler);
    }
    if (!this.paused) this.deadline = performance.now() + this.owner.options.bodyTimeoutMs;
    let go: boolean;
    try {
      go = handler.onData(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    // The handler aborted (its client left): the connection is closed already.
    if (this.handler !== handler) return;
    if (this.rawLeft !== 0) {
      // Reading stops after this chunk until `resume()`.
      if (!go) this.pause();
      return;
    }
    if (extra) this.garbage = true;
    // llhttp was left after an "upgrade": a fresh state for the connection's next response.
    this.parser.initialize(HTTPParser.RESPONSE, {}, this.owner.options.maxHeaderSize, LENIENCY);
    this.complete(handler);
    this.done();
  }

  onMessageBegin(): number {
    if (this.handler === null || this.responseDone) {
      this.garbage = true;
      return 0;
    }
    this.headers = [];
    this.headersDone = false;
    this.trailers = null;
    return 0;
  }

  onHeaderFields(fields: string[]): void {
    if (this.headersDone) {
      const t = (this.trailers ??= []);
      for (let i = 0; i < fields.length; i++) t.push(fields[i]!);
    } else {
      const h = this.headers;
      for (let i = 0; i < fields.length; i++) h.push(fields[i]!);
    }
  }

  onHeadersComplete(
    major: number,
    minor: number,
    fields: string[] | undefined,
    _method: unknown,
    _url: unknown,
    status: number,
    statusText: string,
    _upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const handler = this.handler;
    if (handler === null || this.garbage || this.responseDone) {
      this.garbage = true;
      return -1;
    }
    if (fields !== undefined) {
      if (this.headers.length === 0) this.headers = fields;
      else for (let i = 0; i < fields.length; i++) this.headers.push(fields[i]!);
    }
    this.headersDone = true;
    const headers = this.headers;
    // llhttp takes any one-digit version (HTTP/2.0 among them) in a status line; an
    // origin reached over HTTP/1.1 answers in HTTP/1.x (RFC 9112 §2.3), anything else is
    // not a response this client can frame.
    if (major !== 1 || minor > 1) {
      this.failure = badResponse(`unsupported response version HTTP/${major}.${minor}`);
      return -1;
    }
    if (status < 100) {
      this.failure = badResponse(`invalid status ${status}`);
      return -1;
    }
    if (status < 200) {
      if (status === 101) {
        // RFC 9110 §15.2.2: only an answer to a request that asked to upgrade.
        if (!this.upgradeAsked || handler.onUpgrade === undefined) {
          this.failure = badResponse('101 to a request that did not ask to upgrade');
          return -1;
        }
        this.upgraded = true;
        this.status = 101;
        this.statusText = statusText;
        return 0;
      }
      // RFC 9110 §15.2: a client MUST be able to parse 1xx it did not expect, and may
      // ignore them. 100 is not passed on (nothing here asked for it); others are, as
      // undici does, and the handlers drop them.
      this.interim = true;
      // An interim response that said close: the connection ends after the final one.
      if (!keepAlive) this.keepAlive = false;
      if (status !== 100) {
        try {
          handler.onHeaders(status, headers, this.resume, statusText);
        } catch (err) {
          this.failure = err as Error;
          return -1;
        }
      }
      return 1;
    }
    // The final response: the response-head timer gives way to the body's.
    this.status = status;
    this.keepAlive = this.keepAlive && keepAlive && !this.upgradeAsked;
    this.keepAliveHint = null;
    if (this.keepAlive) {
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i]!;
        if (name.length === 10 && name.toLowerCase() === 'keep-alive') {
          const ms = keepAliveTimeoutMs(headers[i + 1]!);
          if (ms !== null) {
            this.keepAliveHint = ms;
            if (ms - KEEP_ALIVE_MARGIN_MS <= 0) this.keepAlive = false;
          }
        }
      }
    }
    // RFC 9110 §8.6, RFC 9112 §6.1: a 204 carries neither Content-Length nor
    // Transfer-Encoding. One that announces a body anyway comes from an origin whose
    // framing cannot be trusted: a body it sends after the head, read once the next
    // request is out, would be taken for that request's response (response desync), as
    // after a HEAD. Relayed, but the connection is not reused. A 304 with
    // Transfer-Encoding (allowed, RFC 9112 §6.1, rare) is not reused either; one with the
    // selected representation's Content-Length (common) is, as by undici and nginx.
    const framing = framingOf(headers);
    if (framing === BAD_FRAMING) {
      this.failure = badResponse('Transfer-Encoding sent more than once');
      return -1;
    }
    if ((status === 204 && framing !== NO_BODY) || (status === 304 && framing === CHUNKED)) this.keepAlive = false;
    // RFC 9112 §6.3: a response to HEAD, and any 1xx/204/304, ends with its head.
    const bodyless = this.method === 'HEAD' || status === 204 || status === 304;
    // Read before the handler, which may empty the array (forward.ts, dropRaw).
    const rawLength = !bodyless && framing === BODY ? rawBodyLength(headers) : -1;
    this.arm(T_BODY, this.owner.options.bodyTimeoutMs);
    let go: boolean;
    try {
      go = handler.onHeaders(status, headers, this.resume, statusText);
    } catch (err) {
      this.failure = err as Error;
      return -1;
    }
    if (this.handler === null) return 0;
    if (!go) this.pause();
    if (bodyless) return 1;
    if (rawLength > 0) {
      // 2: llhttp takes the rest as another protocol's, as after an upgrade: it calls
      // onMessageComplete at once (ignored, rawLeft) and execute returns the head's length.
      this.rawLeft = rawLength;
      return 2;
    }
    return 0;
  }

  onBody(chunk: Buffer): void {
    const handler = this.handler;
    if (handler === null || this.garbage || this.failure !== null) {
      this.garbage = true;
      return;
    }
    if (!this.paused) this.deadline = performance.now() + this.owner.options.bodyTimeoutMs;
    let go: boolean;
    try {
      go = handler.onData(chunk);
    } catch (err) {
      this.failure = err as Error;
      return;
    }
    // The rest of this socket read may still be parsed and handed over (at most one
    // read, at most READ_MAX); reading stops after it until `resume()`.
    if (!go && this.handler !== null) this.pause();
  }

  onMessageComplete(): void {
    // The parser's end of a head whose body is read past it (rawBody).
    if (this.rawLeft !== 0) return;
    if (this.handler === null || this.garbage || this.failure !== null) {
      this.garbage = true;
      return;
    }
    if (this.interim) {
      this.interim = false;
      this.headersDone = false;
      return;
    }
    if (this.upgraded) return;
    this.complete(this.handler);
  }

  /** The final response is complete: the handler is told (and let go). */
  complete(handler: OriginHandler): void {
    this.responseDone = true;
    this.disarm();
    this.handler = null;
    let trailers = this.trailers;
    this.trailers = null;
    if (trailers !== null) {
      const permitted = permittedTrailers(trailers);
      // An origin that puts such fields in its trailers is not trusted with the next
      // response either; and llhttp reads a `Connection: close` trailer as the end of
      // the connection: the next response on it would fail as a parse error.
      if (permitted !== trailers) this.keepAlive = false;
      trailers = permitted;
    }
    try {
      handler.onComplete(trailers);
    } catch {
      // The handler's own failure after a complete response: nothing left to tell it.
      this.keepAlive = false;
    }
  }

  /** After the execute that completed the response: reuse the connection, or close it. */
  done(): void {
    if (this.garbage || !this.keepAlive) {
      this.close();
      return;
    }
    if (!this.requestSent) {
      // The origin answered before the whole request body was sent (e.g. a 413): the
      // connection's request is unfinished, so it is not reused. The rest of the
      // client's body is read and dropped, so the client gets the answer and may keep
      // its own connection (bounded by the client request timeout).
      const body = this.body;
      this.detachBody();
      body?.resume();
      this.close();
      return;
    }
    if (this.paused) {
      // Paused by the last chunk of the response: the next one must be read.
      this.paused = false;
      this.socket.resume();
    }
    this.owner.released(this);
  }

  /** A 101: the socket leaves the pool and goes to the handler with the bytes already read after the head. */
  handOver(rest: Buffer): void {
    const handler = this.handler!;
    this.handler = null;
    this.state = CLOSED;
    this.handedOver = true;
    const socket = this.socket;
    socket.pause();
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    socket.removeAllListeners('drain');
    socket.removeAllListeners('session');
    this.teardown();
    this.owner.gone(this, false);
    // A view of the arena, which the socket's next read overwrites: copied.
    if (rest.length !== 0) socket.unshift(this.arena === null ? rest : Buffer.from(rest));
    try {
      handler.onUpgrade!(101, this.headers, socket);
    } catch (err) {
      socket.destroy();
      handler.onError(err as Error);
    }
  }
}

/**
 * Fields that never count as trailers (RFC 9110 §6.5.1: framing, routing,
 * authentication, response controls and content format must be known before the
 * content; §6.5.2: a recipient must not merge them into the header section) and the
 * hop-by-hop ones (§7.6.1), which a proxy never forwards in any section. An origin's
 * trailer section with them (`Transfer-Encoding: chunked`, `Connection: close`,
 * `Host`, `Set-Cookie` …) was relayed to the client as it came.
 */
const FORBIDDEN_TRAILERS = new Set([
  'transfer-encoding',
  'content-length',
  'trailer',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'upgrade',
  'host',
  'authorization',
  'proxy-authorization',
  'proxy-authenticate',
  'www-authenticate',
  'set-cookie',
  'cookie',
  'content-type',
  'content-encoding',
  'content-range',
  'content-location',
  'cache-control',
  'expires',
  'age',
  'vary',
  'location',
  'retry-after',
  'date',
]);

/** The trailer pairs without FORBIDDEN_TRAILERS (the same array when none is there). */
function permittedTrailers(trailers: string[]): string[] {
  let out: string[] | null = null;
  for (let i = 0; i < trailers.length; i += 2) {
    const forbidden = FORBIDDEN_TRAILERS.has(trailers[i]!.toLowerCase());
    if (forbidden && out === null) out = trailers.slice(0, i);
    else if (!forbidden && out !== null) out.push(trailers[i]!, trailers[i + 1]!);
  }
  return out ?? trailers;
}

/**
 * The body length of a head framed by Content-Length alone (framingOf said BODY), or -1.
 * llhttp has checked the field (digits only, one value; none with Transfer-Encoding).
 */
function rawBodyLength(headers: string[]): number {
  let length = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      if (length !== -1) return -1;
      const value = headers[i + 1]!.trim();
      if (!/^[0-9]{1,15}$/.test(value)) return -1;
      length = Number(value);
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
  }
  return length;
}

const NO_BODY = 0;
const BODY = 1;
const BAD_FRAMING = 2;
/** A body announced by Transfer-Encoding. */
const CHUNKED = 3;

/**
 * What a response head's framing fields announce: no body (neither field, or
 * Content-Length: 0), a body, or BAD_FRAMING: Transfer-Encoding in more than one field
 * line. llhttp takes two `chunked` lines as chunked once, though they are the field
 * value `chunked, chunked` (RFC 9110 §5.3), a body chunked twice (RFC 9112 §6.1 forbids
 * it), which headers.ts refuses when it comes in one line; nginx refuses a duplicate
 * Transfer-Encoding line too. headers.ts relays a line of exactly `chunked` only, so
 * no response weldr relays has two.
 */
function framingOf(headers: string[]): number {
  let framing = NO_BODY;
  let te = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      if (++te > 1) return BAD_FRAMING;
      framing = CHUNKED;
    } else if (name.length === 14 && name.toLowerCase() === 'content-length' && headers[i + 1]!.trim() !== '0' && framing === NO_BODY) framing = BODY;
  }
  return framing;
}

export const STATE = { CONNECTING, IDLE, BUSY, CLOSED } as const;

const pendingSends: OriginConnection[] = [];
/** Connections gone idle in this turn, and in the turn before: forgetHolder in the next flush. */
let idledNow: OriginConnection[] = [];
let idledBefore: OriginConnection[] = [];
const pendingHeads: OriginConnection[] = [];
/** queueSendNextTurn: moved to pendingSends by the next flush, sent by the one after. */
let deferredSends: OriginConnection[] = [];
const NONE: readonly OriginConnection[] = Object.freeze([]);
let flushScheduled = false;
/** Counts flushes (check phases with origin work): OriginConnection.sameTurn. */
let flushes = 0;
let flushing = false;

function scheduleFlush(): void {
  if (flushScheduled || flushing) return;
  flushScheduled = true;
  setImmediate(flushOrigins);
}

/** The check phase: requests for idle connections are sent, then every head of the turn written. */
function flushOrigins(): void {
  flushScheduled = false;
  flushing = true;
  flushes++;
  // Gone idle in an earlier turn: that turn's check phase has flushed their handlers.
  for (let i = 0; i < idledBefore.length; i++) idledBefore[i]!.forgetHolder();
  idledBefore.length = 0;
  const swap = idledBefore;
  idledBefore = idledNow;
  idledNow = swap;
  // Taken whole: those deferred while this flush runs (a requeue giving the request to
  // another reused connection) wait for the next one, and none is sent twice.
  let deferred = NONE;
  if (deferredSends.length !== 0) {
    deferred = deferredSends;
    deferredSends = [];
  }
  // Entries added while looping (a requeued request taking another idle connection) are handled here too.
  for (let i = 0; i < pendingSends.length; i++) {
    const conn = pendingSends[i]!;
    try {
      conn.sendLater();
    } catch (err) {
      // A handler that threw: its request fails, the others go on.
      conn.fail(err as Error);
    }
  }
  pendingSends.length = 0;
  for (let i = 0; i < pendingHeads.length; i++) pendingHeads[i]!.writeHead();
  pendingHeads.length = 0;
  for (let i = 0; i < deferred.length; i++) pendingSends.push(deferred[i]!);
  flushing = false;
  // Immediates set now run in the next turn's check phase, after its poll phase.
  if (pendingSends.length !== 0 || deferredSends.length !== 0 || idledBefore.length !== 0) scheduleFlush();
}

function noop(): void {}
