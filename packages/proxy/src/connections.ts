import type { Socket } from 'node:net';

/**
 * Keep-alive idle timeout of client connections (`clientIdleMs`), enforced by one sweep
 * over the open connections instead of node's `server.keepAliveTimeout`, which re-arms
 * a socket timer twice per request (a new Timeout and a bound function when a response
 * finishes, a clear when the next request arrives): about 2 % of the CPU time of a small
 * proxied request. Here a request costs two counter updates on its connection.
 *
 * Semantics follow node's: a connection is closed once it has had no request in flight,
 * no byte read and no byte waiting to be written for `idleMs` after its last response
 * (a client that has begun its next request is governed by `clientHeadersMs` instead,
 * as with node). The sweep runs every `idleMs / 4` (at most every second) and sees
 * activity at that granularity, so a connection is closed between `idleMs` and
 * `idleMs` + one period after its last activity — never earlier. Before its first
 * response a connection is left to node's header timeout, as with node.
 */
export interface ClientConnection {
  /** Exchanges in flight on this connection (more than one only with pipelining). */
  busy: number;
  /** performance.now() when it last became idle or showed activity; -1 before its first response. */
  idleSince: number;
  /** socket.bytesRead when idleSince was taken. */
  bytesAtIdle: number;
  /**
   * The latest exchange started on this connection, while it runs (its request body,
   * if any, is the one llhttp is parsing); null otherwise.
   */
  last: Upload | null;
  /** socket.bytesRead when the sweep last saw upload progress, and when (performance.now()). */
  bodyBytes: number;
  bodySince: number;
  /** Called once when `busy` drops to 0 (a malformed request waits for the answers before it). */
  onIdle: (() => void) | null;
}

/** A request whose body the proxy may be waiting for (implemented by forward.ts's Exchange). */
export interface Upload {
  /** Body bytes are still due from the client, and none it sent waits unread here. */
  awaitingClient(): boolean;
  /** No body byte came for clientBodyIdleMs: answer 408 and close. */
  stalled(): void;
}

export const kConnection = Symbol('weldr.connection');

export type TrackedSocket = Socket & { [kConnection]?: ClientConnection };

/** The state of a client connection (attached on first use when idle sweeping is off). */
export function connectionOf(socket: unknown): ClientConnection {
  return ((socket as TrackedSocket)[kConnection] ??= newConnection());
}

function newConnection(): ClientConnection {
  return { busy: 0, idleSince: -1, bytesAtIdle: -1, last: null, onIdle: null, bodyBytes: -1, bodySince: 0 };
}

/** An exchange started on `c`. */
export function connectionBusy(c: ClientConnection): void {
  c.busy++;
}

/** An exchange ended on `socket` (state `c`) at `now` (performance.now()). */
export function connectionDone(c: ClientConnection, socket: Socket, now: number): void {
  if (--c.busy <= 0) {
    c.busy = 0;
    c.idleSince = now;
    c.bytesAtIdle = socket.bytesRead;
    if (c.onIdle !== null) {
      const onIdle = c.onIdle;
      c.onIdle = null;
      onIdle();
    }
  }
}

export class IdleSweeper {
  readonly #sockets = new Set<TrackedSocket>();
  readonly #idleMs: number;
  readonly #bodyIdleMs: number;
  #timer: NodeJS.Timeout | null;

  /**
   * `idleMs`: keep-alive idle limit; `bodyIdleMs`: longest gap in a request body upload
   * (clientBodyIdleMs), checked by the same sweep. Either may be 0 (off).
   */
  constructor(idleMs: number, bodyIdleMs = 0) {
    this.#idleMs = idleMs;
    this.#bodyIdleMs = bodyIdleMs;
    const shortest = Math.min(idleMs > 0 ? idleMs : Infinity, bodyIdleMs > 0 ? bodyIdleMs : Infinity);
    const period = Math.max(25, Math.min(1_000, Math.floor(shortest / 4)));
    this.#timer = setInterval(() => this.sweep(performance.now()), period);
    this.#timer.unref();
  }

  /** A new client connection (server 'connection'). */
  add(socket: Socket): void {
    const s = socket as TrackedSocket;
    s[kConnection] = newConnection();
    this.#sockets.add(s);
    socket.once('close', () => this.#sockets.delete(s));
  }

  /** The connection left HTTP (upgraded to a tunnel): no longer swept. */
  remove(socket: Socket): void {
    this.#sockets.delete(socket as TrackedSocket);
  }

  sweep(now: number): void {
    for (const socket of this.#sockets) {
      const c = socket[kConnection]!;
      if (c.busy !== 0) {
        if (this.#bodyIdleMs > 0) this.#checkUpload(socket, c, now);
        continue;
      }
      if (c.idleSince < 0 || this.#idleMs <= 0) continue;
      const bytes = socket.bytesRead;
      if (bytes !== c.bytesAtIdle || socket.writableLength !== 0) {
        // Read or write activity since the last look: the idle period starts again.
        c.bytesAtIdle = bytes;
        c.idleSince = now;
        continue;
      }
      if (now - c.idleSince >= this.#idleMs) socket.destroy();
    }
  }

  /**
   * A slow-body client (a body trickled, or stopped, after the head) would hold its
   * connection and an origin request for up to clientRequestMs. Progress is seen as
   * bytes read from the socket; time while the proxy itself holds unread body bytes
   * (the origin reads slowly: backpressure) does not count against the client.
   */
  #checkUpload(socket: TrackedSocket, c: ClientConnection, now: number): void {
    const bytes = socket.bytesRead;
    const upload = c.last;
    if (upload === null || bytes !== c.bodyBytes || !upload.awaitingClient()) {
      c.bodyBytes = bytes;
      c.bodySince = now;
      return;
    }
    if (now - c.bodySince >= this.#bodyIdleMs) upload.stalled();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
