// Frames on the Raft peer connections: a 4-byte big-endian length, then that many bytes
// of UTF-8 JSON. Byte arrays (entry data, snapshot chunks) travel as {"$b64": "..."}.
// JSON keeps the wire readable with tcpdump and costs nothing that matters at the rate
// of pool commands; the length prefix bounds what a peer can make us buffer.

/** Largest frame accepted: a MsgApp is bounded by maxSizePerMsg (1 MiB) and a snapshot chunk by snapshotChunkSize (1 MiB), plus JSON/base64 overhead. */
export const MAX_FRAME_BYTES = 16 << 20;

/**
 * Largest frame accepted before the other side has authenticated (challenge, hello,
 * welcome: a few hundred bytes each). A stranger cannot make a node buffer more.
 */
export const PRE_AUTH_MAX_FRAME_BYTES = 4096;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

// `this[key]` is the value before toJSON: a Buffer (a Uint8Array, as LevelDB hands back)
// would otherwise arrive here already turned into {"type":"Buffer","data":[…]}.
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array) return { $b64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b = (value as { $b64?: unknown }).$b64;
    if (typeof b === 'string' && Object.keys(value).length === 1) return new Uint8Array(Buffer.from(b, 'base64'));
  }
  return value;
}

export function encodeFrame(value: unknown): Buffer {
  const json = JSON.stringify(value, replacer);
  const body = Buffer.from(json, 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new FrameError(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Splits a byte stream into decoded frames. `push` returns the complete frames so far
 * and throws FrameError on a length over the limit or a body that is not JSON: the
 * connection is then unusable and must be closed.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** `limit`: the largest frame accepted; it may be raised later (after authentication). */
  constructor(public limit: number = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > this.limit) throw new FrameError(`frame length ${len} exceeds ${this.limit}`);
      if (this.buffered < 4 + len) return out;
      const frame = this.take(4 + len).subarray(4);
      try {
        out.push(JSON.parse(frame.toString('utf8'), reviver));
      } catch {
        throw new FrameError('frame is not JSON');
      }
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    const rest = first.subarray(n);
    this.chunks[0] = rest;
    if (rest.length === 0) this.chunks.shift();
    this.buffered -= n;
    return out;
  }
}
