import type { Duplex, Readable } from 'node:stream';

/**
 * What the proxy hands an origin client: the request line's parts, the raw header array
 * built by headers.ts ([name, value, …], Host and Content-Length included), and the body:
 * the client's request stream, a whole Buffer (an Upgrade request's content) or null.
 */
export interface OriginRequest {
  readonly path: string;
  readonly method: string;
  readonly headers: readonly string[];
  readonly body: Readable | Buffer | null;
  /** The protocols of an Upgrade request (`Connection: upgrade` is added), or null. */
  readonly upgrade?: string | null;
}

/**
 * The dispatch handler: undici's legacy interface, which `Exchange` and `Tunnel` implement
 * (attempt.ts). Header arrays hold strings here (node's parser makes latin1 strings);
 * undici hands Buffers, and headers.ts takes either.
 */
export interface OriginHandler {
  /** The request has a connection and is about to be written; `abort` stops it and closes that connection. */
  onConnect(abort: (err?: Error) => void): void;
  /** A response head (status < 200: an interim one, 100 excepted). false pauses the body until `resume()`. */
  onHeaders(status: number, raw: string[], resume: () => void, statusText: string): boolean;
  /**
   * A body chunk; false pauses reading from the origin until `resume()`. The chunk may be
   * a view of memory the connection reads into again (read-arena.ts): its bytes stay as
   * they are while `holdsChunks()` says true, and for ever without that method.
   */
  onData(chunk: Buffer): boolean;
  /** Whether a chunk given to onData may still be in use (e.g. queued for a socket write). */
  holdsChunks?(): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
  /** 101 to a request that asked to upgrade: the socket is the handler's from now on, paused, with any bytes read after the head unshifted. */
  onUpgrade?(status: number, raw: string[], socket: Duplex): void;
}

/** What origin-pool.ts needs of a per-origin client: undici's Pool has the same shape. */
export interface OriginDispatcher {
  dispatch(request: OriginRequest, handler: OriginHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
  readonly closed: boolean;
  readonly stats: { readonly connected: number; readonly queued: number };
}

export interface OriginClientOptions {
  readonly host: string;
  readonly port: number;
  /** HTTPS, verified; null: cleartext. */
  readonly tls: { readonly ca?: string | Buffer; readonly servername?: string } | null;
  readonly connectTimeoutMs: number;
  /** From the request written to the response head (undici's headersTimeout). */
  readonly headersTimeoutMs: number;
  /** Between two body chunks (undici's bodyTimeout); not counted while the handler paused reading. */
  readonly bodyTimeoutMs: number;
  /** An idle kept-alive connection is closed after this long (or before the origin's own Keep-Alive timeout). */
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderSize: number;
  /** Connections at most; requests beyond wait in a FIFO queue. */
  readonly connections: number;
}
