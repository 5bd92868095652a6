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

// Byte arrays are swapped for {"$b64": …} by a walk of our own before JSON.stringify, and
// back after JSON.parse, rather than by a replacer and a reviver: V8 calls those for every
// key of every frame (a MsgApp has a few dozen), and with them the two calls took most of
// a frame's cost — about 60 µs per frame on these machines, several frames per write. The
// walk copies only the objects on the way to a byte array and leaves the rest shared.

/** `value` with every Uint8Array (a Buffer too, as LevelDB hands back) replaced by {"$b64": …}. */
function toWire(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return { $b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const w = toWire(v);
      if (w !== v && out === null) out = value.slice(0, i);
      if (out !== null) out.push(w);
    }
    return out ?? value;
  }
  // toJSON (a Date, say) wins, as it would in JSON.stringify.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  let out: Record<string, unknown> | null = null;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    const w = toWire(v);
    if (w !== v) {
      out ??= { ...(value as Record<string, unknown>) };
      setOwn(out, key, w);
    }
  }
  return out ?? value;
}

/** The inverse of toWire, in place (the value was just parsed: nobody else holds it). */
function fromWire(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v !== null && typeof v === 'object') value[i] = fromWire(v);
    }
    return value;
  }
  const o = value as Record<string, unknown>;
  const b = o.$b64;
  if (typeof b === 'string') {
    let keys = 0;
    for (const _ in o) keys++;
    if (keys === 1) return new Uint8Array(Buffer.from(b, 'base64'));
  }
  for (const key in o) {
    const v = o[key];
    if (v === null || typeof v !== 'object') continue;
    const w = fromWire(v);
    if (w !== v) setOwn(o, key, w);
  }
  return o;
}

/** o[key] = v, also for a key named "__proto__" (a peer may send one: it must stay data, never a prototype). */
function setOwn(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}

export function encodeFrame(value: unknown): Buffer {
  const json = JSON.stringify(toWire(value));
  const size = Buffer.byteLength(json, 'utf8');
  if (size > MAX_FRAME_BYTES) throw new FrameError(`frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(4 + size);
  out.writeUInt32BE(size, 0);
  out.write(json, 4, 'utf8');
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
        out.push(fromWire(JSON.parse(frame.toString('utf8'))));
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
