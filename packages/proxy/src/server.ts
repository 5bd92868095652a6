import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { connectionOf, type ConnectionTracker } from './connections.js';
import { rawErrorResponse, type ProxyErrorCode } from './errors.js';
import { MAX_HEADER_FIELDS } from './request-filter.js';
import type { Counters } from './stats.js';
import { contextOptions, type TlsContexts } from './tls.js';
import type { Logger, ProxyTimeouts } from './types.js';

export interface ListenerOptions {
  readonly timeouts: ProxyTimeouts;
  /** Connection limits and sweeps, shared by every listener of the proxy. */
  readonly tracker: ConnectionTracker;
  readonly counters: Counters;
  /** TLS termination: this listener speaks HTTPS with these certificates. */
  readonly tls?: TlsContexts;
  readonly maxHeaderSize: number;
  readonly log: Logger;
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  /** An HTTP/1.1 request with an Expect field (node's checkContinue / checkExpectation). */
  readonly onExpect: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /**
   * A parse error or timeout in the body of a request that is already being forwarded:
   * its exchange answers it (so the answer keeps its place among pipelined responses)
   * and stops the origin request. False when no running exchange owns the error.
   */
  readonly onBrokenRequest: (socket: Duplex, code: ProxyErrorCode) => boolean;
}

/** node's (untyped) link from a server socket to the response currently written on it. */
type ServerSocket = Duplex & { _httpMessage?: ServerResponse | null };

/** How long a rejected connection keeps reading (and discarding) before it is closed. */
const LINGER_MS = 2_000;
/** Twice libuv's 64 KiB read size: one origin chunk never reports backpressure by itself. */
export const CLIENT_HIGH_WATER_MARK = 128 * 1024;

/**
 * The listener: node's HTTP/1.1 server with strict parsing and every limit explicit,
 * and one place that answers what llhttp rejects before a request exists.
 */
export class Listener {
  /** An https.Server for TLS: the same HTTP server API on top of tls.Server. */
  readonly server: http.Server;
  #contexts: TlsContexts | null;
  readonly #log: Logger;
  readonly #lingering = new Set<Duplex>();
  readonly #tracker: ConnectionTracker;
  readonly #counters: Counters;
  /** performance.now() of the last accept-error log line (rate limit). */
  #acceptErrorLoggedAt = -Infinity;
  /** Connections whose parser failed: llhttp keeps reporting the same error on every later read. */
  readonly #failed = new WeakSet<Duplex>();
  readonly #onBrokenRequest: (socket: Duplex, code: ProxyErrorCode) => boolean;

  constructor(options: ListenerOptions) {
    const t = options.timeouts;
    this.#log = options.log;
    this.#onBrokenRequest = options.onBrokenRequest;
    this.#counters = options.counters;
    this.#tracker = options.tracker;
    this.#contexts = options.tls ?? null;
    const headersTimeout = Math.min(t.clientHeadersMs, t.clientRequestMs);
    const httpOptions: http.ServerOptions = {
        maxHeaderSize: options.maxHeaderSize,
        headersTimeout,
        requestTimeout: t.clientRequestMs,
        // clientIdleMs is enforced by ConnectionTracker (connections.ts), not by node's
        // per-request socket timer; node then also omits its `Keep-Alive: timeout=` hint.
        keepAliveTimeout: 0,
        // Timeouts above are enforced on this tick; node's default (30 s) would let a
        // slowloris client outlive clientHeadersMs by up to 30 s.
        connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
        // Host rules (presence, uniqueness, syntax) are the request filter's, so that
        // every refusal carries the same error shape and closes the connection.
        requireHostHeader: false,
        joinDuplicateHeaders: false,
        insecureHTTPParser: false,
        noDelay: true,
      };
    if (this.#contexts === null) this.server = http.createServer(httpOptions, options.onRequest);
    else {
      const tls: https.ServerOptions = {
        ...httpOptions,
        ...contextOptions(this.#contexts.default),
        // HTTP/1.1 only: a client that offers only h2 is refused in the handshake
        // rather than misparsed (RFC 7301 §3.2, no_application_protocol).
        ALPNProtocols: ['http/1.1'],
        SNICallback: (servername, done) => done(null, this.#contexts!.lookup(servername)),
        // A handshake is part of getting the request head in.
        handshakeTimeout: headersTimeout,
        // Half-close (see httpAllowHalfOpen below): https.Server leaves its TLS sockets
        // ending their writable side at the client's FIN (http.Server does not).
        allowHalfOpen: true,
      };
      // https.Server is tls.Server with node's HTTP server on each secure connection:
      // the same API as http.Server for everything used here.
      this.server = https.createServer(tls, options.onRequest) as unknown as http.Server;
    }
    // Handled here rather than by node, which sends 100 before any check and answers
    // other expectations with a bare 417.
    this.server.on('checkContinue', options.onExpect);
    this.server.on('checkExpectation', options.onExpect);
    this.server.maxHeadersCount = MAX_HEADER_FIELDS;
    // RFC 9112 §9.6: a client may half-close after its request and still read the
    // response. node's default ends the connection at the client's FIN, dropping the
    // answers still in flight; half-open, it marks the last response as the final one
    // and closes after it. (`httpAllowHalfOpen` is node's, untyped.) A FIN is never
    // taken as an abort, whenever it comes: TCP cannot tell a client that shut down its
    // sending side (and still reads) from one that closed, and treating the FIN as an
    // abort once a response had started cut responses short at random — the FIN and the
    // origin's response head race (issue 13 item 0). A client that really left is seen
    // at the next write (the peer answers with RST: 'close' → Exchange.clientGone); a
    // response with nothing to write is bounded by originResponseMs / originIdleMs.
    (this.server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // A failed accept() is a server 'error', fatal without a listener; the proxy keeps
    // serving the connections it has. (Out of file descriptors, libuv accepts and
    // closes pending connections itself with a reserve descriptor and reports nothing.)
    this.server.on('error', (err: NodeJS.ErrnoException) => this.#serverError(err));
    // Connection limits apply to the TCP connection, before any TLS handshake.
    this.server.on('connection', (socket: Socket) => {
      if (!this.#tracker.admit(socket) || this.#contexts !== null) return;
      // Client sockets buffer up to CLIENT_HIGH_WATER_MARK before write() reports
      // backpressure. With node's default (16 KiB) every 64 KiB body chunk read from an
      // origin (libuv's read size) "failed": the write completed at once, yet returned
      // false, so the origin was paused and resumed (a drain listener and a stall timer
      // set) on every chunk. Above one chunk, backpressure means what it says: the client
      // has not taken the previous chunk yet. Only the writing side: request bodies keep
      // node's 16 KiB read buffer (server option `highWaterMark` would raise both).
      setWritableHighWaterMark(socket, CLIENT_HIGH_WATER_MARK);
      this.#tracker.track(socket);
      relaxVersionCheck(this.server, socket);
    });
    if (this.#contexts !== null) {
      // HTTP runs on the TLS socket, which exists once the handshake is done.
      this.server.on('secureConnection', (socket: TLSSocket) => {
        // The same for TLS (see 'connection' above), on the socket HTTP writes to; set
        // before the first request is parsed (node sizes each response from it).
        setWritableHighWaterMark(socket, CLIENT_HIGH_WATER_MARK);
        this.#tracker.track(socket);
        relaxVersionCheck(this.server, socket);
      });
      this.server.on('tlsClientError', (err: Error & { code?: string }) => {
        this.#counters.tlsHandshakeFailed++;
        this.#log.debug({ code: err.code, err: err.message }, 'TLS handshake failed');
      });
    }
    this.server.on('clientError', (err: Error, socket: Duplex) => this.#clientError(err, socket));
    // RFC 9110 §9.3.6: CONNECT asks for a tunnel to any host, which a reverse proxy
    // does not offer.
    // Answered in its place among pipelined requests, like a malformed one (see
    // #clientError): node hands it over as soon as it is parsed.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      socket.on('error', destroyOnError);
      this.#whenAnswered(socket, () => this.linger(socket, 'NOT_IMPLEMENTED'));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // node removes its own 'error' listener from a socket it hands over for an upgrade.
      // Without one, an error on the socket (the client resets it while a refusal is
      // written to it) is an uncaught exception: the whole process would exit.
      socket.on('error', destroyOnError);
      // A tunnel has its own idle timeout.
      this.#tracker.remove(socket as Socket);
      // RFC 9112 §9.3.2: responses go out in the order of the requests. node hands an
      // Upgrade request over as soon as it is parsed, while requests pipelined before it
      // may still be in flight: its 101 and the tunnel would overtake their responses,
      // which would then be written into the tunnel. It waits for them instead.
      if (connectionOf(socket).busy === 0 && (socket as ServerSocket)._httpMessage == null) {
        options.onUpgrade(req, socket, head);
        return;
      }
      socket.pause();
      this.#whenAnswered(socket, () => options.onUpgrade(req, socket, head));
    });
  }

  /**
   * Answer with a raw error and close, reading (and discarding) what the client still
   * sends for a while first: closing a socket with unread input makes the kernel send
   * RST, which can destroy the error response before the client reads it.
   */
  linger(socket: Duplex, code: ProxyErrorCode): void {
    if (this.#lingering.has(socket)) return;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    this.#lingering.add(socket);
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.on('data', discard);
    socket.on('error', discard);
    socket.once('end', () => socket.destroy());
    socket.once('close', () => {
      clearTimeout(timer);
      this.#lingering.delete(socket);
    });
    socket.resume();
    socket.end(rawErrorResponse(code));
  }

  #clientError(err: Error & { code?: string; rawPacket?: unknown; bytesParsed?: unknown }, socket: Duplex): void {
    const code = err.code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (this.#failed.has(socket)) return;
    this.#failed.add(socket);
    const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
    const answer = clientErrorCode(code, raw, typeof err.bytesParsed === 'number' ? err.bytesParsed : undefined);
    this.#log.debug({ code, answer }, 'malformed client request');
    if (this.#onBrokenRequest(socket, answer)) return;
    // Requests pipelined before the malformed one are answered first, in order; only
    // then does the error go out (RFC 9112 §9.3.2), and the connection is closed.
    this.#whenAnswered(socket, () => this.linger(socket, answer));
  }

  /**
   * Call `then` once the exchanges of `socket`'s connection have ended and their
   * responses are written (never if it closes first): what comes next on the
   * connection is answered in its place among pipelined requests.
   */
  #whenAnswered(socket: Duplex, then: () => void): void {
    const conn = connectionOf(socket);
    if (conn.busy > 0) conn.onIdle = () => this.#afterResponses(socket as ServerSocket, then);
    else this.#afterResponses(socket as ServerSocket, then);
  }

  /** Call `then` once every response already started on `socket` is written (never if it closes first). */
  #afterResponses(socket: ServerSocket, then: () => void): void {
    if (socket.destroyed) return;
    const current = socket._httpMessage;
    // node assigns the next queued response on 'finish', before 'close' is emitted.
    if (current != null) current.once('close', () => this.#afterResponses(socket, then));
    else then();
  }

  #serverError(err: NodeJS.ErrnoException): void {
    if (err.syscall !== 'accept') {
      // Listen errors are reported by listen(); anything else is logged.
      if (this.server.listening) this.#log.error({ err: err.message, code: err.code }, 'proxy listener error');
      return;
    }
    this.#counters.acceptErrors++;
    const now = performance.now();
    if (now - this.#acceptErrorLoggedAt < 10_000) return;
    this.#acceptErrorLoggedAt = now;
    this.#log.warn(
      { code: err.code, refused: this.#counters.acceptErrors, connections: this.#tracker.size },
      'cannot accept client connections; refusing them',
    );
  }

  /**
   * Serve new handshakes with these certificates (a reload). Connections already
   * established keep the context they were set up with: nothing is dropped.
   */
  setTlsContexts(contexts: TlsContexts): void {
    if (this.#contexts === null) throw new Error('this listener does not terminate TLS');
    (this.server as unknown as https.Server).setSecureContext(contextOptions(contexts.default));
    this.#contexts = contexts;
  }

  destroyLingering(): void {
    for (const s of this.#lingering) s.destroy();
    this.#lingering.clear();
  }
}

function discard(): void {}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** What relaxVersionCheck needs of node's internal HTTPParser (node 20/22). */
interface NodeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number, connections: unknown): void;
  constructor: { REQUEST?: unknown; kLenientVersion?: unknown };
}

let connectionsKey: symbol | undefined;

/**
 * RFC 9112 §2.3: a request with a higher minor version of a major version the server
 * implements SHOULD be processed as the highest minor version it supports: HTTP/1.2 as
 * HTTP/1.1. llhttp's strict mode refuses any version but 0.9, 1.0, 1.1, 2.0 and 3.0, and
 * node relaxes that only together with every other leniency (insecureHTTPParser, which
 * would reopen request smuggling). So each connection's parser is re-initialised, before
 * it has parsed a byte, exactly as node initialised it but with llhttp's version
 * leniency alone; the request filter answers 505 for a major version other than 1.
 * This relies on node internals (`socket.parser`, `HTTPParser#initialize` and the
 * server's connection list, used for the header and request timeouts); when they are
 * not as expected nothing is changed and such versions stay refused with 400.
 */
function relaxVersionCheck(server: http.Server, socket: Socket): void {
  const parser = (socket as Socket & { parser?: NodeParser }).parser;
  const Parser = parser?.constructor;
  if (parser === undefined || typeof parser.initialize !== 'function') return;
  if (typeof Parser?.REQUEST !== 'number' || typeof Parser.kLenientVersion !== 'number') return;
  connectionsKey ??= Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connections');
  const connections = connectionsKey === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[connectionsKey];
  // Without the connection list the parser would escape clientHeadersMs / clientRequestMs.
  if (connections == null) return;
  const maxHeaderSize = (server as http.Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0;
  parser.initialize(Parser.REQUEST, { type: 'HTTPINCOMINGMESSAGE', socket }, maxHeaderSize, Parser.kLenientVersion, connections);
}

/**
 * A socket's write buffer limit after creation. Streams offer it only as a constructor
 * option; `_writableState.highWaterMark` is what `write()` compares with (node ≥ 14).
 */
function setWritableHighWaterMark(socket: Duplex, bytes: number): void {
  const state = (socket as Duplex & { _writableState?: { highWaterMark: number } })._writableState;
  if (state !== undefined && state.highWaterMark < bytes) state.highWaterMark = bytes;
}

// A request line as llhttp starts it: method, one space, the start of a target.
const REQUEST_LINE_START = /^[A-Z]+ [^ ]/;
// A complete request line, for telling 501 and 505 from 400.
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)\r?\n/;

/**
 * Map a parser / timeout error to the status a client should see (RFC 9110 §15.5).
 * `rawPacket` is the chunk being parsed and `at` the offset of the error in it: the
 * failing request is the one whose line contains `at`, not necessarily the first in
 * the chunk (pipelining).
 */
export function clientErrorCode(code: string | undefined, rawPacket?: Buffer, at?: number): ProxyErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      // RFC 9110 §15.5.15: a request-target longer than the server will interpret is
      // 414, distinct from a header section that is too large (431, RFC 6585 §5).
      return overflowInRequestLine(rawPacket, at) ? 'URI_TOO_LONG' : 'HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'CLIENT_TIMEOUT';
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_VERSION': {
      // A well-formed request line with a method llhttp does not know is 501
      // (RFC 9110 §9.1); with an HTTP major version other than 1, 505 (§15.6.6).
      const start = rawPacket === undefined ? 0 : lineStart(rawPacket, at ?? 0);
      const line = rawPacket?.subarray(start, start + 8192).toString('latin1') ?? '';
      const m = REQUEST_LINE.exec(line);
      if (m === null) return 'BAD_REQUEST';
      if (m[3] !== '1') return 'VERSION_NOT_SUPPORTED';
      return code === 'HPE_INVALID_METHOD' ? 'NOT_IMPLEMENTED' : 'BAD_REQUEST';
    }
    default:
      return 'BAD_REQUEST';
  }
}

/** Offset of the start of the line that contains `at`. */
function lineStart(raw: Buffer, at: number): number {
  return at <= 0 ? 0 : raw.lastIndexOf(0x0a, Math.min(at, raw.length) - 1) + 1;
}

/**
 * Whether the header-size limit was hit inside a request line (the request-target
 * never ended within maxHeaderSize) rather than in the header fields. Judged from the
 * chunk being parsed: the line holding the error starts like a request line and
 * follows an empty line (or starts the chunk). A request line split across reads
 * whose start is in an earlier chunk is reported as 431: still a refusal.
 */
function overflowInRequestLine(raw: Buffer | undefined, at: number | undefined): boolean {
  if (raw === undefined || at === undefined) return false;
  const start = lineStart(raw, at);
  if (!REQUEST_LINE_START.test(raw.subarray(start, start + 64).toString('latin1'))) return false;
  if (start === 0) return true;
  // The previous line must be empty: the end of an earlier message, not a header.
  return start === 1 || raw[start - 2] === 0x0a || (raw[start - 2] === 0x0d && (start === 2 || raw[start - 3] === 0x0a));
}
