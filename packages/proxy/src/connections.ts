import type { Socket } from 'node:net';
import type { Counters } from './stats.js';

/**
 * Client connections: their per-connection state, the limits that apply to them
 * (connections per source address, pipelined requests held per connection, request
 * body rate) and the time-based sweeps (keep-alive idle, stalled or slow uploads).
 *
 * Keep-alive idle (`clientIdleMs`) is enforced by one sweep over the open connections
 * instead of node's `server.keepAliveTimeout`, which re-arms a socket timer twice per
 * request (a new Timeout and a bound function when a response finishes, a clear when
 * the next request arrives): about 2 % of the CPU time of a small proxied request.
 * Here a request costs two counter updates on its connection.
 *
 * Semantics follow node's: a connection is closed once it has had no request in flight,
 * no byte read and no byte waiting to be written for `idleMs` after its last response
 * (a client that has begun its next request is governed by `clientHeadersMs` instead,
 * as with node). A client that leaves the end of its last response unread, taking none
 * of it for `writeStallMs`, is closed too: it is not reading (the stall limit a response
 * still being forwarded has). The sweep runs every `idleMs / 4` (at most every second) and sees
 * activity at that granularity, so a connection is closed between `idleMs` and
 * `idleMs` + one period after its last activity — never earlier. Before its first
 * response a connection is left to node's header timeout, as with node.
 */
export interface ClientConnection {
  /** Exchanges held on this connection: the one forwarded plus those waiting behind it. */
  busy: number;
  /** performance.now() when it last became idle or showed activity; -1 before its first response. */
  idleSince: number;
  /** socket.bytesRead when idleSince was taken. */
  bytesAtIdle: number;
  /** socket.writableLength when the sweep last saw the client take response bytes (see sweep). */
  unsent: number;
  /**
   * The latest exchange started on this connection, while it runs (its request body,
   * if any, is the one llhttp is parsing); null otherwise.
   */
  last: Upload | null;
  /** socket.bytesRead when the sweep last saw upload progress, and when (performance.now()). */
  bodyBytes: number;
  bodySince: number;
  /** The upload the rate figures below belong to; socket.bytesRead when it was first seen. */
  rateOf: Upload | null;
  rateStartBytes: number;
  /** Time (ms) the proxy spent waiting for this upload's bytes, and when it last looked. */
  rateWaitedMs: number;
  rateCheckedAt: number;
  /** Called once when `busy` drops to 0 (a malformed request waits for the answers before it). */
  onIdle: (() => void) | null;
  /**
   * RFC 9112 §9.3.2 pipelining: requests are forwarded one at a time, in order. The one
   * being forwarded, and those parsed behind it that wait for it to end.
   */
  running: Held | null;
  waiting: Held[] | null;
  /** Reading from the socket is stopped until the waiting requests are forwarded. */
  readingPaused: boolean;
  /** The socket closed: nothing more is started on it. */
  closed: boolean;
  readonly tracker: ConnectionTracker | null;
}

/** A request whose body the proxy may be waiting for (implemented by forward.ts's Exchange). */
export interface Upload {
  /** Body bytes are still due from the client, and none it sent waits unread here. */
  awaitingClient(): boolean;
  /** No body byte came for clientBodyIdleMs, or the body came slower than the minimum rate: answer 408 and close. */
  stalled(reason: 'idle' | 'rate'): void;
}

/** A request held on its connection (implemented by forward.ts's Exchange). */
export interface Held extends Upload {
  readonly ended: boolean;
  /** Forward it now: the request before it on the connection has ended. */
  start(): void;
  /** The client connection closed: stop everything (idempotent). */
  clientGone(): void;
}

export const kConnection = Symbol('weldr.connection');
const kAdmitted = Symbol('weldr.admitted');

export type TrackedSocket = Socket & { [kConnection]?: ClientConnection };
/** A TCP connection counted by a tracker; `source` is null when not counted per source. */
type AdmittedSocket = Socket & { [kAdmitted]?: { readonly tracker: ConnectionTracker; readonly source: string | null } };

/** node's handle of a socket: reading is stopped and restarted on it directly (see pauseReading). */
type HandleSocket = Socket & { _handle?: { reading?: boolean; readStop?: () => number; readStart?: () => number } | null };

/** The state of a client connection (attached on first use when it is not tracked). */
export function connectionOf(socket: unknown): ClientConnection {
  return ((socket as TrackedSocket)[kConnection] ??= newConnection(null));
}

function newConnection(tracker: ConnectionTracker | null): ClientConnection {
  return {
    busy: 0,
    idleSince: -1,
    bytesAtIdle: -1,
    unsent: 0,
    last: null,
    onIdle: null,
    bodyBytes: -1,
    bodySince: 0,
    rateOf: null,
    rateStartBytes: 0,
    rateWaitedMs: 0,
    rateCheckedAt: 0,
    running: null,
    waiting: null,
    readingPaused: false,
    closed: false,
    tracker,
  };
}

/** An exchange was created on `c` (it is forwarded or waits: see `hold`). */
export function connectionBusy(c: ClientConnection): void {
  c.busy++;
}

/**
 * Forward `ex` now if nothing else of its connection is being forwarded, else queue it
 * behind. Returns false when `maxDepth` requests are already held: the caller refuses
 * it. When the queue reaches `maxDepth`, reading from the socket stops (TCP
 * backpressure) until the queue has drained; requests that were already read in the
 * same chunk as the last one allowed are the only ones that can be refused.
 */
export function hold(c: ClientConnection, socket: Socket, ex: Held, maxDepth: number): boolean {
  if (c.running === null) {
    c.running = ex;
    ex.start();
    return true;
  }
  if (c.busy > maxDepth) return false;
  (c.waiting ??= []).push(ex);
  if (c.busy >= maxDepth && !c.readingPaused) {
    c.readingPaused = true;
    pauseReading(socket);
    if (c.tracker !== null) c.tracker.counters.pipelinePaused++;
  }
  return true;
}

/** An exchange ended on `socket` (state `c`) at `now` (performance.now()). */
export function connectionDone(c: ClientConnection, socket: Socket, now: number, ex: Held | null = null): void {
  if (ex !== null) {
    if (c.running === ex) c.running = null;
    else if (c.waiting !== null) {
      const i = c.waiting.indexOf(ex);
      if (i >= 0) c.waiting.splice(i, 1);
    }
  }
  if (--c.busy <= 0) {
    c.busy = 0;
    c.idleSince = now;
    c.bytesAtIdle = socket.bytesRead;
  }
  if (c.running === null && c.waiting !== null && !c.closed) startNext(c, socket);
  if (c.busy === 0 && c.onIdle !== null) {
    const onIdle = c.onIdle;
    c.onIdle = null;
    onIdle();
  }
}

function startNext(c: ClientConnection, socket: Socket): void {
  const waiting = c.waiting!;
  while (c.running === null && waiting.length !== 0) {
    const next = waiting.shift()!;
    if (next.ended) continue;
    c.running = next;
    // May end `next` synchronously (no origin: 503), which lands here again.
    next.start();
  }
  if (waiting.length === 0 && c.readingPaused && !socket.destroyed) {
    c.readingPaused = false;
    resumeReading(socket);
  }
}

/**
 * Stop reading from a client socket. node's HTTP parser consumes the socket's handle
 * directly (no 'data' events), so `socket.pause()` does not stop it; stopping the handle
 * does, and node itself restarts it only when a request body is being read (which this
 * proxy does only for the request being forwarded).
 */
function pauseReading(socket: Socket): void {
  const handle = (socket as HandleSocket)._handle;
  if (handle == null || typeof handle.readStop !== 'function') return;
  handle.reading = false;
  handle.readStop();
}

function resumeReading(socket: Socket): void {
  const handle = (socket as HandleSocket)._handle;
  if (handle == null || typeof handle.readStart !== 'function' || handle.reading === true) return;
  handle.reading = true;
  handle.readStart();
}

/** The client connection went away: every exchange it still holds is aborted. */
function abortHeld(c: ClientConnection): void {
  c.closed = true;
  const running = c.running;
  const waiting = c.waiting;
  c.waiting = null;
  running?.clientGone();
  if (waiting !== null) for (const ex of waiting) ex.clientGone();
}

export interface ConnectionLimits {
  /** Client connections open at once, over every listener of the proxy. */
  readonly maxConnections: number;
  /** Keep-alive idle limit (clientIdleMs), 0: off. */
  readonly idleMs: number;
  /**
   * Longest a client may leave the end of its last response unread (originIdleMs, the
   * stall allowed while a response is still forwarded); 0: off.
   */
  readonly writeStallMs: number;
  /** Longest gap in a request body upload (clientBodyIdleMs), 0: off. */
  readonly bodyIdleMs: number;
  /** Minimum average request-body rate in bytes/s once bodyRateGraceMs was waited; 0: off. */
  readonly bodyMinRate: number;
  /**
   * Waiting on a client's request body up to this long is never held against its rate
   * (a slow start, a 100-continue round trip); after it, the body must have come at
   * `bodyMinRate` on average over the time the proxy waited for it.
   */
  readonly bodyRateGraceMs: number;
  /** Client connections open at once from one source address; 0: no limit. */
  readonly maxPerSource: number;
}

/** Every client connection of a listener: limits at accept, state, sweeps, and cleanup at close. */
export class ConnectionTracker {
  readonly #sockets = new Set<TrackedSocket>();
  readonly #perSource = new Map<string, number>();
  /** TCP connections admitted and not yet closed. */
  #admitted = 0;
  readonly #limits: ConnectionLimits;
  readonly counters: Counters;
  #timer: NodeJS.Timeout | null = null;
  /** Sweep period (ms); 0 when nothing is swept. */
  #period = 0;

  constructor(limits: ConnectionLimits, counters: Counters) {
    this.#limits = limits;
    this.counters = counters;
    const { idleMs, bodyIdleMs, bodyMinRate, bodyRateGraceMs } = limits;
    const shortest = Math.min(idleMs > 0 ? idleMs : Infinity, bodyIdleMs > 0 ? bodyIdleMs : Infinity, bodyMinRate > 0 ? Math.max(100, bodyRateGraceMs) : Infinity);
    if (shortest !== Infinity) {
      const period = Math.max(25, Math.min(1_000, Math.floor(shortest / 4)));
      this.#period = period;
      this.#timer = setInterval(() => this.sweep(performance.now()), period);
      this.#timer.unref();
    }
  }

  /** Connections open now (TLS ones still in their handshake included). */
  get size(): number {
    return this.#admitted;
  }

  /**
   * A new TCP connection (server 'connection', every listener of the proxy): counted in
   * total and against its source address. Beyond maxConnections or
   * maxConnectionsPerSource it is closed at once (accept-and-close: no byte is read or
   * written) and false is returned.
   */
  admit(socket: Socket): boolean {
    const { maxConnections, maxPerSource } = this.#limits;
    if (this.#admitted >= maxConnections) {
      this.counters.refusedConnections++;
      socket.destroy();
      return false;
    }
    let source: string | null = null;
    if (maxPerSource > 0) {
      source = socket.remoteAddress ?? '';
      const n = this.#perSource.get(source) ?? 0;
      if (n >= maxPerSource) {
        this.counters.refusedPerSource++;
        socket.destroy();
        return false;
      }
      this.#perSource.set(source, n + 1);
    }
    this.#admitted++;
    this.counters.connections = this.#admitted;
    (socket as AdmittedSocket)[kAdmitted] = { tracker: this, source };
    socket.once('close', onAdmittedClose);
    return true;
  }

  /** The socket HTTP runs on (the TLS socket for TLS): its state, sweeps and cleanup. */
  track(socket: Socket): void {
    const s = socket as TrackedSocket;
    s[kConnection] = newConnection(this);
    this.#sockets.add(s);
    socket.once('close', onTrackedClose);
  }

  /** The connection left HTTP (upgraded to a tunnel): no longer swept. */
  remove(socket: Socket): void {
    this.#sockets.delete(socket as TrackedSocket);
  }

  /** @internal the socket closed. */
  closed(socket: TrackedSocket): void {
    this.#sockets.delete(socket);
    const c = socket[kConnection];
    if (c !== undefined) abortHeld(c);
  }

  /** @internal an admitted TCP connection closed. */
  released(source: string | null): void {
    this.#admitted--;
    this.counters.connections = this.#admitted;
    if (source === null) return;
    const n = (this.#perSource.get(source) ?? 1) - 1;
    if (n <= 0) this.#perSource.delete(source);
    else this.#perSource.set(source, n);
  }

  sweep(now: number): void {
    const { idleMs, bodyIdleMs, bodyMinRate, writeStallMs } = this.#limits;
    for (const socket of this.#sockets) {
      const c = socket[kConnection]!;
      if (c.busy !== 0) {
        if (bodyIdleMs > 0 || bodyMinRate > 0) this.#checkUpload(socket, c, now);
        continue;
      }
      if (c.idleSince < 0 || idleMs <= 0) continue;
      if (socket.bytesRead !== c.bytesAtIdle) {
        // The client has begun its next request: node's header timeout governs it from
        // here (clientHeadersMs), however slowly the head trickles in, until its
        // exchange ends and the connection is idle again.
        c.idleSince = -1;
        continue;
      }
      const unsent = socket.writableLength;
      if (unsent !== 0) {
        // The end of the last response is still being written: not idle yet. A client
        // that takes none of it for writeStallMs does not read: it would hold the
        // connection and its buffered bytes forever (a response that ended into the
        // socket's buffer has no stall timer of its own any more).
        if (unsent !== c.unsent) {
          c.unsent = unsent;
          c.idleSince = now;
        } else if (writeStallMs > 0 && now - c.idleSince >= writeStallMs) socket.destroy();
        continue;
      }
      if (now - c.idleSince >= idleMs) socket.destroy();
    }
  }

  /**
   * A slow-body client (a body trickled, or stopped, after the head) would hold its
   * connection and an origin request for up to clientRequestMs. Progress is seen as
   * bytes read from the socket; time while the proxy itself holds unread body bytes
   * (the origin reads slowly: backpressure) does not count against the client, neither
   * for the longest gap (bodyIdleMs) nor for the average rate (bodyMinRate, like
   * Apache's mod_reqtimeout MinRate: the body may take bodyRateGraceMs plus one
   * second per bodyMinRate bytes of waiting).
   */
  #checkUpload(socket: TrackedSocket, c: ClientConnection, now: number): void {
    const bytes = socket.bytesRead;
    const upload = c.last;
    if (upload !== c.rateOf) {
      c.rateOf = upload;
      c.rateStartBytes = bytes;
      c.rateWaitedMs = 0;
      c.rateCheckedAt = now;
    }
    if (upload === null || !upload.awaitingClient()) {
      c.bodyBytes = bytes;
      c.bodySince = now;
      c.rateCheckedAt = now;
      return;
    }
    const { bodyIdleMs, bodyMinRate } = this.#limits;
    if (bodyMinRate > 0) {
      // At most one period per look: a sweep that ran late (a busy event loop) is not
      // the client's delay.
      c.rateWaitedMs += Math.min(now - c.rateCheckedAt, this.#period);
      c.rateCheckedAt = now;
      const owed = ((c.rateWaitedMs - this.#limits.bodyRateGraceMs) * bodyMinRate) / 1000;
      if (owed > 0 && bytes - c.rateStartBytes < owed) {
        this.counters.refusedBodyRate++;
        upload.stalled('rate');
        return;
      }
    }
    if (bytes !== c.bodyBytes) {
      c.bodyBytes = bytes;
      c.bodySince = now;
      return;
    }
    if (bodyIdleMs > 0 && now - c.bodySince >= bodyIdleMs) upload.stalled('idle');
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function onTrackedClose(this: TrackedSocket): void {
  this[kConnection]?.tracker?.closed(this);
}

function onAdmittedClose(this: AdmittedSocket): void {
  const admitted = this[kAdmitted];
  if (admitted !== undefined) admitted.tracker.released(admitted.source);
}
