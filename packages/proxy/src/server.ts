import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { IdleSweeper } from './connections.js';
import { rawErrorResponse, type ProxyErrorCode } from './errors.js';
import type { Logger, ProxyTimeouts } from './types.js';

export interface ListenerOptions {
  readonly timeouts: ProxyTimeouts;
  readonly maxHeaderSize: number;
  readonly log: Logger;
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** How long a rejected connection keeps reading (and discarding) before it is closed. */
const LINGER_MS = 2_000;

/**
 * The listener: node's HTTP/1.1 server with strict parsing and every limit explicit,
 * and one place that answers what llhttp rejects before a request exists.
 */
export class Listener {
  readonly server: http.Server;
  readonly #log: Logger;
  readonly #lingering = new Set<Duplex>();
  readonly #idle: IdleSweeper | null;

  constructor(options: ListenerOptions) {
    const t = options.timeouts;
    this.#log = options.log;
    const headersTimeout = Math.min(t.clientHeadersMs, t.clientRequestMs);
    this.server = http.createServer(
      {
        maxHeaderSize: options.maxHeaderSize,
        headersTimeout,
        requestTimeout: t.clientRequestMs,
        // clientIdleMs is enforced by IdleSweeper (connections.ts), not by node's
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
      },
      options.onRequest,
    );
    this.server.on('clientError', (err: Error, socket: Duplex) => this.#clientError(err, socket));
    // RFC 9110 §9.3.6: CONNECT asks for a tunnel to any host, which a reverse proxy
    // does not offer.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => this.linger(socket, 'NOT_IMPLEMENTED'));
    this.#idle = t.clientIdleMs > 0 ? new IdleSweeper(t.clientIdleMs) : null;
    if (this.#idle !== null) {
      const idle = this.#idle;
      this.server.on('connection', (socket: Socket) => idle.add(socket));
    }
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // A tunnel has its own idle timeout.
      this.#idle?.remove(socket as Socket);
      options.onUpgrade(req, socket, head);
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

  #clientError(err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): void {
    const code = err.code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Node's own rule: once a response has started on this socket, a second one
    // cannot be inserted; just close.
    // `_httpMessage` is node's (untyped) link from a server socket to its current response.
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (current?.headersSent === true) {
      socket.destroy();
      return;
    }
    const answer = clientErrorCode(code, Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined);
    this.#log.debug({ code, answer }, 'malformed client request');
    this.linger(socket, answer);
  }

  /** Stop the idle sweep (close()). */
  stopIdleSweep(): void {
    this.#idle?.stop();
  }

  destroyLingering(): void {
    for (const s of this.#lingering) s.destroy();
    this.#lingering.clear();
  }
}

function discard(): void {}

/** Map a parser / timeout error to the status a client should see (RFC 9110 §15.5). */
export function clientErrorCode(code: string | undefined, rawPacket?: Buffer): ProxyErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'CLIENT_TIMEOUT';
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_VERSION': {
      // A well-formed request line with a method llhttp does not know is 501
      // (RFC 9110 §9.1); with an HTTP major version other than 1, 505 (§15.6.6).
      const line = rawPacket?.subarray(0, 512).toString('latin1') ?? '';
      const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)\r?\n/.exec(line);
      if (m === null) return 'BAD_REQUEST';
      if (m[3] !== '1') return 'VERSION_NOT_SUPPORTED';
      return code === 'HPE_INVALID_METHOD' ? 'NOT_IMPLEMENTED' : 'BAD_REQUEST';
    }
    default:
      return 'BAD_REQUEST';
  }
}
