import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { OriginAttempt } from './attempt.js';
import { connectionBusy, connectionDone, connectionOf, hold, type ClientConnection, type Held } from './connections.js';
import type { ProxyContext } from './context.js';
import { errorBody, ERRORS, type ProxyErrorCode } from './errors.js';
import { rawValues, requestHeaders, responseHeaders, sameName, withoutField, type ForwardInfo } from './headers.js';
import type { Origin } from './origin-pool.js';
import { filterRequest, LOCAL_OPTIONS, type RequestTarget } from './request-filter.js';

export type { ProxyContext } from './context.js';

const kExchange = Symbol('weldr.exchange');
const kRejected = Symbol('weldr.rejected');

type TaggedResponse = ServerResponse & { [kExchange]?: Exchange };
type TaggedSocket = Socket & { [kRejected]?: boolean };

/** Methods answered for OPTIONS *, OPTIONS with Max-Forwards: 0, and in 405s. */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * One client request from filter to logging. It is its own undici dispatch handler
 * (the legacy onConnect/onHeaders/onData/onComplete/onError interface, which undici
 * calls directly with raw header Buffers; the newer controller API goes through a
 * wrapper that parses headers into an object on every response), so a proxied request
 * costs one object and no closures.
 */
export class Exchange extends OriginAttempt implements RequestTarget, ForwardInfo, Held, Dispatcher.DispatchHandler {
  host = '';
  path = '';
  maxForwards: string | null = null;
  readonly clientIp: string;
  readonly via: string;
  readonly proto: 'http' | 'https';
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The client connection's keep-alive state (connections.ts). */
  readonly conn: ClientConnection;
  headers: string[] = [];
  resumeOrigin: (() => void) | null = null;
  stallTimer: NodeJS.Timeout | null = null;
  /** First body chunk, held until this batch's flush (see `flushResponses`). */
  held: Buffer | null = null;
  /** Body bytes already went to `res` directly: no more holding. */
  streaming = false;
  /** The origin's response is complete; `flush` ends the client response. */
  completed = false;
  trailers: string[] | Buffer[] | null = null;
  /** Waiting in `pendingFlush`. */
  queued = false;
  /** Send `100 Continue` when the request is forwarded (RFC 9110 §10.1.1). */
  expectContinue = false;
  /** socket.bytesWritten when the stall timer was armed (see onStall). */
  stallBytes = 0;
  /** Corked for this turn's streamed chunks (pendingUncork). */
  corked = false;
  /** onData paused the origin this turn: uncorkResponses decides how it resumes. */
  pausePending = false;
  /** Interim (1xx) responses relayed to the client so far (at most MAX_INTERIM). */
  interims = 0;

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse) {
    super(ctx, req.socket, req.method!);
    this.req = req;
    this.res = res;
    this.via = ctx.via;
    this.proto = ctx.proto;
    this.clientIp = req.socket.remoteAddress ?? '';
    this.conn = connectionOf(req.socket);
  }

  protected clientAddress(): string {
    return this.clientIp;
  }

  protected send(origin: Origin): void {
    origin.pool.dispatch({ path: this.path, method: this.method, headers: this.headers, body: this.hasBody ? this.req : null }, this);
  }

  // ---- undici handler (onConnect and onError live in OriginAttempt) --------------

  onHeaders(statusCode: number, raw: (Buffer | string)[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      this.relayInterim(statusCode, raw, statusText);
      return dropRaw(raw, true);
    }
    if (this.ended) return dropRaw(raw, false);
    // RFC 9110 §15: status codes beyond 599 are invalid (llhttp accepts any 3 digits).
    if (statusCode > 599) throw Object.assign(new Error(`invalid status ${statusCode}`), { code: 'WELDR_BAD_RESPONSE' });
    const bodyless = statusCode === 204 || statusCode === 304;
    let headers = responseHeaders(raw, this.via);
    raw.length = 0; // see dropRaw
    // RFC 9110 §8.6: no Content-Length in a 204 (a 304's describes the selected representation).
    if (statusCode === 204) headers = withoutField(headers, 'content-length');
    try {
      this.res.writeHead(statusCode, statusText || undefined, headers);
    } catch (err) {
      // A field node refuses to emit: the origin's response is unusable.
      throw Object.assign(new Error('origin response not forwardable'), { code: 'WELDR_BAD_RESPONSE', cause: err });
    }
    this.responded = true;
    this.resumeOrigin = resume;
    this.answered(statusCode);
    if (bodyless) {
      // Complete with its head. undici then fails a 204/304 that carries a Content-Length
      // ("content length mismatch": it expects that many body bytes that never come);
      // that error is ignored, see onError.
      this.attemptEnded();
      this.completed = true;
      queueFlush(this);
    }
    return true;
  }

  /**
   * RFC 9110 §15.2: a proxy MUST forward 1xx responses unless it asked for them itself,
   * and MUST NOT send one to an HTTP/1.0 client. So a 103 (Early Hints: the client may
   * start fetching what its Link fields name), a 102 and any other interim response
   * reach an HTTP/1.1 client as the origin sent them, with the same field handling as
   * a final response (hop-by-hop fields dropped, Via added). Not relayed: 100 — the
   * proxy answers Expect itself and never forwards it, so an origin's 100 answers
   * nothing the client asked (the native client does not even pass it on) — and 101,
   * which belongs to the upgrade path. At most MAX_INTERIM per request: an origin
   * sending an endless run of them does not get to write without bound to the client
   * (the rest are still read and dropped, within the origin response timeout).
   * Written with node's own raw write for interim responses (as writeContinue and
   * writeEarlyHints do), so it goes out before the final response's head and, on a
   * connection with pipelined requests, only once this response is the current one.
   */
  relayInterim(statusCode: number, raw: readonly (Buffer | string)[], statusText: string): void {
    if (statusCode === 100 || statusCode === 101 || this.ended || this.responded) return;
    const req = this.req;
    if (req.httpVersionMajor !== 1 || req.httpVersionMinor === 0) return;
    if (this.interims >= MAX_INTERIM) return;
    let fields: string[];
    try {
      fields = responseHeaders(raw, this.via);
    } catch {
      // A transfer coding on a bodiless interim response means nothing: not relayed.
      return;
    }
    this.interims++;
    let head = `HTTP/1.1 ${statusCode} ${statusText}\r\n`;
    for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
    (this.res as unknown as RawWritable)._writeRaw(`${head}\r\n`, 'latin1');
  }

  override onError(err: Error): void {
    // A 204/304 response is complete with its head (see onHeaders).
    if (this.completed) return;
    super.onError(err);
  }

  onData(chunk: Buffer): boolean {
    // undici hands over an empty chunk each time it resumes a paused body (llhttp's
    // flush): nothing to send, and written it would cost an empty write(2).
    if (chunk.length === 0) return true;
    this.bytes += chunk.length;
    if (!this.streaming) {
      if (this.held === null) {
        // Usually the whole body: written with the head by this batch's flush.
        this.held = chunk;
        queueFlush(this);
        return true;
      }
      // A second chunk before the flush: a larger body, stream it from here on.
      this.streaming = true;
      this.res.write(this.held);
      this.held = null;
    }
    // Streamed chunks of one event-loop turn leave together: the socket is corked at the
    // turn's first and uncorked in its check phase (see uncorkResponses).
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      if (pendingUncork.push(this) === 1) setImmediate(uncorkResponses);
    }
    if (this.res.write(chunk)) return true;
    // Corked (just above): the turn's chunks may gather up to CORK_LIMIT before the
    // origin waits, up to CORK_LIMIT_FAST on a connection holding one of the process's
    // HOLDING_FAST slots (takeFastSlot).
    const buffered = this.res.writableLength;
    if (buffered <= CORK_LIMIT) return true;
    // writableNeedDrain: the socket itself holds the bytes (not a pipelined response
    // waiting for it) and will say when it has sent them, which gives the slot back.
    const socket = this.socket as Socket;
    if (buffered <= CORK_LIMIT_FAST && socket.writableNeedDrain && takeFastSlot(socket)) return true;
    // More than the client has taken so far: the origin is paused, and after this turn's
    // writev (uncorkResponses) it waits for the client to drain, or reads on at once if
    // the kernel took it all — or not at all, if this was the body's last chunk.
    this.pausePending = true;
    return false;
  }

  /**
   * After the turn's writev, with the origin paused by onData: when the client socket
   * took (nearly) everything, read on at once. Otherwise wait until the client drains
   * (undici stops its body timer while paused), but never for longer than stallMs, or a
   * client that stops reading would pin the origin connection. Armed here rather than in
   * onData: a 1 MiB body plus its head passes CORK_LIMIT_FAST at its last chunk, and each
   * such response armed a drain listener and a timer for nothing (`perf`: setTimeout,
   * once and bytesWritten under onData).
   */
  awaitDrain(): void {
    this.pausePending = false;
    if (this.ended || this.completed) return;
    if (this.res.writableLength <= CORK_LIMIT) {
      this.resumeOrigin?.();
      return;
    }
    if (this.stallTimer === null) {
      this.res.once('drain', onResponseDrain);
      this.stallBytes = (this.socket as Socket).bytesWritten;
      this.stallTimer = setTimeout(onStall, this.ctx.stallMs, this);
    }
  }

  /**
   * Body chunks from the native origin client are views of memory its connection reads
   * into again once this says false (origin-client/read-arena.ts): a chunk held for this
   * turn's flush, or written but not yet taken by the kernel — corked, queued behind a
   * pipelined response (outputData), or left by a partial writev — counts in
   * `writableLength` until the kernel has it (conservative: another response's bytes on
   * the same connection count too).
   */
  holdsChunks(): boolean {
    return this.held !== null || this.res.writableLength !== 0;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.attemptEnded();
    this.completed = true;
    this.trailers = trailers;
    queueFlush(this);
  }

  /** Called once per batch (see `flushResponses`): hand what arrived to the client. */
  flush(): void {
    this.queued = false;
    // The client left, or the attempt failed, since: nothing to write.
    if (this.ended) return;
    const res = this.res;
    const held = this.held;
    this.held = null;
    if (!this.completed) {
      if (held !== null) {
        this.streaming = true;
        // Backpressure, if any, pauses the origin at its next chunk (onData).
        res.write(held);
      }
      return;
    }
    const trailers = this.trailers;
    if (trailers !== null && trailers.length !== 0 && res.chunkedEncoding) res.addTrailers(pairs(trailers));
    if (held !== null) res.end(held);
    else res.end();
    this.finish(true);
  }

  // ---- client side ----------------------------------------------------------------

  /** Forward the request (now, or once the requests pipelined before it have ended). */
  start(): void {
    // RFC 9110 §10.1.1: the client waits for 100 (Continue) before sending the body;
    // sent only once the request is actually forwarded.
    if (this.expectContinue) this.res.writeContinue();
    this.dispatch();
  }

  drained(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.resumeOrigin?.();
  }

  fail(code: ProxyErrorCode): void {
    // An unread request body leaves the connection in an unknown state: close it.
    sendError(this.res, code, this.hasBody && !this.req.complete);
    this.countError(code);
    this.finish(false);
  }

  protected cutResponse(): void {
    this.res.destroy();
  }

  /** A flush threw: the response was cut; count the exchange as failed. */
  abandon(): void {
    this.finish(false);
  }

  /**
   * The request body turned out malformed, or too slow (parser error or request
   * timeout after the head was forwarded): answer `code` in this exchange's place, so
   * that it keeps its order among pipelined responses, and stop the origin request.
   * If the origin's answer has already started, the client connection is cut instead.
   */
  refuseBody(code: ProxyErrorCode): void {
    const abort = this.abort;
    if (this.responded) this.res.destroy();
    else {
      sendError(this.res, code, true);
      this.countError(code);
    }
    this.finish(false);
    // After finish: the resulting onError sees an ended exchange, not an origin failure.
    abort?.(new Error('malformed request body'));
  }

  // ---- upload watch (connections.ts sweep) ----------------------------------------

  awaitingClient(): boolean {
    // readableLength > 0: body bytes wait for the origin side to take them.
    return this.hasBody && !this.ended && !this.req.complete && this.req.readableLength === 0;
  }

  stalled(reason: 'idle' | 'rate'): void {
    this.ctx.log.debug({ path: this.path, reason }, reason === 'idle' ? 'request body upload stalled; 408' : 'request body slower than the minimum rate; 408');
    this.refuseBody('CLIENT_TIMEOUT');
  }

  protected override cleanup(now: number): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (this.conn.last === this) this.conn.last = null;
    if (!this.hasBody) forgetRequest(this.socket, this.req);
    // Starts the next request pipelined behind this one, if any.
    connectionDone(this.conn, this.socket as Socket, now, this);
  }
}

/**
 * The Listener's hook for a parse error or timeout on `socket`: when it hit the body of
 * the request being forwarded, that exchange answers it (see Exchange.refuseBody).
 */
export function refuseBrokenRequest(socket: Duplex, code: ProxyErrorCode): boolean {
  const ex = connectionOf(socket).last as Exchange | null;
  // A request without a body is complete before llhttp reads past its head.
  if (ex === null || ex.ended || ex.req.complete) return false;
  ex.refuseBody(code);
  return true;
}

function onResponseDrain(this: TaggedResponse): void {
  this[kExchange]?.drained();
}

/**
 * Responses are written to clients in batches, once per event-loop turn (in the check
 * phase, after every ready socket was read), rather than from inside undici's parser
 * callback for each origin response. A small response then costs one `res.end(body)`
 * (head and body in one writev), and the writes of a batch go out back to back: the
 * client side (wrk on another core here) is woken once per batch instead of once per
 * response — each of those wake-ups is an inter-processor interrupt, which on a VM was
 * a third of the proxy's system time — and the code of each phase stays hot.
 * Measured: −25 % CPU per request at 50 connections. Bodies larger than one chunk
 * stream as before from their second chunk on.
 */
const pendingFlush: Exchange[] = [];

function queueFlush(ex: Exchange): void {
  if (ex.queued) return;
  ex.queued = true;
  if (pendingFlush.push(ex) === 1) setImmediate(flushResponses);
}

function flushResponses(): void {
  // Entries queued while flushing (none expected: undici calls back from socket
  // events) are handled by the same loop.
  for (let i = 0; i < pendingFlush.length; i++) {
    const ex = pendingFlush[i]!;
    try {
      ex.flush();
    } catch (err) {
      // e.g. a trailer node refuses to emit: the response cannot be completed.
      ex.ctx.log.debug({ err: (err as Error).message }, 'response flush failed; closing');
      ex.res.destroy();
      ex.abandon();
    }
  }
  pendingFlush.length = 0;
}

/**
 * Streamed body chunks are gathered per event-loop turn, like whole responses above: the
 * origin socket is read up to 128 KiB at a time (64 KiB with undici), several reads per
 * turn when the origin is fast, and each chunk written at once was a write(2) of its own
 * that woke the client (an inter-processor interrupt on a VM). Corked, the turn's chunks
 * leave as one writev in its check phase. Measured on 1 MiB responses through one pinned
 * process, three alternating pairs: 805 / 812 / 920 → 947 / 952 / 1,021 req/s, 1.09–1.25 → 0.98–1.06 ms
 * of CPU per MiB. Backpressure still holds: past CORK_LIMIT buffered for the client the
 * origin is paused until the client drains, as before (the socket's own high-water mark,
 * 128 KiB, would pause it at every second chunk of a corked turn).
 */
/** Interim (1xx) responses relayed per request, at most (relayInterim). */
export const MAX_INTERIM = 8;

/** node's raw write of an outgoing message (what writeContinue/writeEarlyHints use). */
interface RawWritable {
  _writeRaw(data: string, encoding: BufferEncoding): boolean;
}

const CORK_LIMIT = 256 * 1024;

/**
 * A response may hold more for its client on a connection that has one of the process's
 * HOLDING_FAST slots: up to CORK_LIMIT_FAST before its origin is paused. Each pause costs
 * a drain listener, a timer, a resume and at least one more event-loop turn: with
 * CORK_LIMIT alone, a 1 MiB body from a fast origin paused its origin three times on
 * average (18,154 pauses for 6,057 bodies, counted) even for a client that took
 * everything at once (wrk, loopback). Measured on 1 MiB responses through one pinned
 * process, three alternating rounds: 959–1,107 req/s at 256 KiB, 1,060–1,326 at 1 MiB,
 * 1,148–1,371 at 2 MiB.
 *
 * The memory is the client connection's for as long as its client is slow, so it is
 * bounded per process, not per connection: a connection takes a slot when its buffer
 * first passes CORK_LIMIT and keeps it until the socket has sent everything ('drain') or
 * closes — also past the end of the response whose bytes are still queued. Without a
 * free slot a response pauses its origin at CORK_LIMIT, as before. However many clients
 * are slow, a process holds at most HOLDING_FAST × CORK_LIMIT_FAST (64 MiB) more than
 * with CORK_LIMIT alone.
 */
export const CORK_LIMIT_FAST = 1024 * 1024;
export const HOLDING_FAST = 64;
/** A socket as far as a slot needs it (a net.Socket; tests pass an EventEmitter). */
type SlotSocket = Pick<Socket, 'once' | 'off'>;

/** The sockets holding a slot: kept apart from them, so a socket's shape never changes. */
const slotHolders = new WeakSet<SlotSocket>();
let slotsTaken = 0;

/** True when `socket` holds a slot (taking a free one if it had none). */
export function takeFastSlot(socket: SlotSocket): boolean {
  if (slotHolders.has(socket)) return true;
  if (slotsTaken >= HOLDING_FAST) return false;
  slotsTaken += 1;
  slotHolders.add(socket);
  const release = (): void => {
    socket.off('drain', release);
    socket.off('close', release);
    slotHolders.delete(socket);
    slotsTaken -= 1;
  };
  socket.once('drain', release);
  socket.once('close', release);
  return true;
}

/** Slots held now (tests). */
export function fastSlotsTaken(): number {
  return slotsTaken;
}

const pendingUncork: Exchange[] = [];

function uncorkResponses(): void {
  for (let i = 0; i < pendingUncork.length; i++) {
    const ex = pendingUncork[i]!;
    ex.corked = false;
    // end() uncorks by itself; a response ended (or cut) since has nothing left corked here.
    if (!ex.res.writableEnded && !ex.res.destroyed) ex.res.uncork();
    if (ex.pausePending) ex.awaitDrain();
  }
  pendingUncork.length = 0;
}

function onStall(ex: Exchange): void {
  ex.stallTimer = null;
  const socket = ex.socket as Socket;
  if (ex.res.socket == null && socket.bytesWritten !== ex.stallBytes && !socket.destroyed) {
    // This response waits behind an earlier one of its connection (pipelining) that
    // the client is still reading: not a stall of the client. Look again later.
    ex.stallBytes = socket.bytesWritten;
    ex.stallTimer = setTimeout(onStall, ex.ctx.stallMs, ex);
    return;
  }
  ex.ctx.log.debug({ path: ex.path }, 'client stopped reading the response; closing');
  // The client connection, not just this response: a response still queued behind
  // another (pipelining) has no socket of its own to destroy yet.
  socket.destroy();
}

/**
 * Empty undici's raw header array once its fields are copied out, and return `result`.
 * The array is the parser's own (`headers`, replaced by a new one after each head) and
 * holds views of the socket's read chunk. Between two responses on one origin
 * connection the parser keeps the next, empty array; a connection that waits longer
 * than a young-generation GC cycle — every connection of a large pool under round
 * robin: 1,000 origins at 10k req/s reuse each one every ~100 ms, a scavenge comes every
 * ~100 ms — has that array promoted to the old generation, and the ~10 Buffers the next
 * response pushes into it are then kept alive by it (a dead old object still counts as
 * a root for the scavenger) until they are promoted too. Measured with 1,000 origins:
 * 1.3 KB promoted per request and 7.5 µs of GC per request; emptied here, 0.1 KB and
 * 2.7 µs, as with 2 origins (docs/benchmarks.md, "1,000 origins").
 */
function dropRaw(raw: unknown[], result: boolean): boolean {
  raw.length = 0;
  return result;
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

/** The 'request' listener: filter, then forward. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, expectContinue = false): void {
  if ((req.socket as TaggedSocket)[kRejected] === true) {
    // A request pipelined behind one we refused for its framing: it may be the
    // smuggled half. Never forwarded nor answered: the refusal carries
    // `Connection: close`, so node closes the connection once the responses queued
    // before it (pipelining) and the refusal itself are written.
    return;
  }
  // node checks Expect for HTTP/1.1 only; 1.2 and above are processed as 1.1 (server.ts).
  if (req.httpVersionMinor > 1 && !expectContinue && rawValues(req.rawHeaders, 'expect').length !== 0) {
    handleExpect(ctx, req, res);
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
      connectionBusy(ex.conn);
      const now = performance.now();
      connectionDone(ex.conn, req.socket, now);
      counters.byClass[2]!++;
      counters.clientSuccess++;
      counters.active--;
      ctx.accessLog?.record(ex.method, req.url ?? '', 200, 0, now - ex.startedAt, null, 0, ex.clientIp);
      ctx.onExchangeEnd();
      return;
    }
    refuse(ctx, req, res, verdict, ex.startedAt);
    return;
  }
  ex.expectContinue = expectContinue;
  if (!ex.hasBody) skipDrain(req);
  ex.headers = requestHeaders(req.rawHeaders, ex);
  const conn = ex.conn;
  connectionBusy(conn);
  conn.last = ex;
  (res as TaggedResponse)[kExchange] = ex;
  // Pipelined requests are forwarded one at a time; the client connection's close
  // aborts every request it still holds (connections.ts), so no per-request listener.
  if (hold(conn, req.socket, ex, ctx.maxPipelineDepth)) return;
  // More requests pipelined at once than may be held: refused, and the connection
  // closed after the answers to those before it.
  conn.last = null;
  connectionDone(conn, req.socket, performance.now(), null);
  counters.pipelineRefused++;
  refuse(ctx, req, res, 'PIPELINE_LIMIT', ex.startedAt);
}

/** node's (untyped) flag: the request's remaining body was drained (`IncomingMessage#_dump`). */
type DrainFlag = IncomingMessage & { _dumped?: boolean };

/** node's stream state of a request: its 'readable' event is already scheduled (or was emitted). */
type ReadableFlag = IncomingMessage & { _readableState?: { emittedReadable?: boolean } };

/**
 * A request without content (framing says so, and llhttp frames it the same way:
 * request-filter.ts) has nothing to drain. node drains every request whose body nobody
 * read once its response has finished (`_dump`: resume, a flowing read of the empty
 * stream, 'end', auto-destroy, 'close' — five process.nextTick hops and ~1 KB of
 * garbage per request), so that the connection can go on to the next request. Marked as
 * drained, the request skips that: nothing is left to read, no listener waits for its
 * 'end' or 'close' (the exchange listens to the response and the socket), and the
 * connection's next request is parsed as before. node checks the flag before draining
 * (node 20/22); where it is absent nothing changes.
 *
 * The end of its (empty) content, which llhttp reports right after the head, also
 * schedules a 'readable' event nobody listens to: a process.nextTick, and with it a run
 * of node's tick queue after the client socket's read (which, on node 20.20, allocates a
 * Map for unhandled rejections each time). Marked as already emitted, it is not
 * scheduled. Measured, five alternating pairs: 0.2–0.9 µs less CPU per request (one
 * outlier 3.6), 1–4 % more req/s.
 */
export function skipDrain(req: IncomingMessage): void {
  const r = req as DrainFlag;
  if (r._dumped === false) r._dumped = true;
  const state = (req as ReadableFlag)._readableState;
  if (state !== undefined && state.emittedReadable === false) state.emittedReadable = true;
}

/** node's (untyped) parser of a server socket, which keeps the request it parsed last. */
type ParsedSocket = Duplex & { parser?: { incoming?: unknown } | null };

/**
 * The counterpart of skipDrain once the exchange is over: node lets go of a request
 * (its parser's `incoming`) when the request has been read to its end, and otherwise
 * waits for its 'end' — which a request marked drained never emits, so an idle
 * keep-alive connection would hold its last request (head and all) until the next one.
 * Let go of here, as node would have; only a complete request (a bodiless one is
 * complete with its head, unless the exchange ended inside node's 'request' event).
 */
export function forgetRequest(socket: Duplex, req: IncomingMessage): void {
  const parser = (socket as ParsedSocket).parser;
  if (parser != null && parser.incoming === req && req.complete) parser.incoming = null;
}

/**
 * A request on `socket` was refused for its framing (or for being pipelined too deep):
 * nothing read on it after that may be forwarded (an Upgrade request included).
 */
export function refusedConnection(socket: Duplex): boolean {
  return (socket as TaggedSocket)[kRejected] === true;
}

/** Answer a request the proxy will not forward, and refuse the rest of its connection. */
function refuse(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, code: ProxyErrorCode, startedAt = performance.now()): void {
  const counters = ctx.counters;
  // Refuse every later request on this connection: its framing can no longer be trusted.
  (req.socket as TaggedSocket)[kRejected] = true;
  sendError(res, code, true);
  const status = ERRORS[code].status;
  counters.byClass[(status / 100) | 0]!++;
  counters.clientFailed++;
  counters.active--;
  ctx.accessLog?.record(req.method ?? '', req.url ?? '', status, 0, performance.now() - startedAt, null, 0, req.socket?.remoteAddress ?? '');
  ctx.onExchangeEnd();
  ctx.log.debug({ code, method: req.method, url: req.url }, 'request rejected');
}

/**
 * node's 'checkContinue' (an HTTP/1.1 request whose Expect matches 100-continue) and
 * 'checkExpectation' (any other Expect). RFC 9110 §10.1.1: an expectation the proxy
 * cannot meet gets 417. node looks only at the first Expect field and accepts a list
 * that merely contains 100-continue, so every member of every Expect field is checked.
 */
export function handleExpect(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  if ((req.socket as TaggedSocket)[kRejected] === true) return;
  if (!onlyContinue(req.rawHeaders)) {
    ctx.counters.active++;
    refuse(ctx, req, res, 'EXPECTATION_FAILED');
    return;
  }
  handleRequest(ctx, req, res, true);
}

/** Every member of every Expect field is 100-continue (true without any Expect field). */
export function onlyContinue(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 6 || !sameName(name, 'expect')) continue;
    for (const member of raw[i + 1]!.split(',')) {
      if (member.trim().toLowerCase() !== '100-continue') return false;
    }
  }
  return true;
}
