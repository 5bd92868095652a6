import type { OriginHandler } from './types.js';

/**
 * The memory a cleartext origin connection reads into (`net` sockets' `onread`), reused
 * from one read to the next instead of the fresh 64 KiB buffer node allocates for every
 * socket read. That buffer cost a malloc, an ArrayBuffer and its share of V8's external
 * memory (a scavenge every few ms at several hundred MiB/s: "external memory pressure"),
 * and the kernel copied each read into memory that had left the cache.
 *
 * A Content-Length body is handed to the handler as views of these bytes
 * (connection.ts, rawBody), and the handler may still need them after onData returns:
 * a corked write waits for the turn's check phase, a client slower than the origin
 * leaves them queued in its socket. So the bytes read since the arena was last reset
 * are kept until the handler they were lent to says it holds none
 * (`OriginHandler.holdsChunks`; a handler without it holds them for ever). The arena is a
 * ring: the bytes of the handler last lent to are held, those of an earlier one are free
 * once it no longer holds them, and the next read goes after the held bytes, or before
 * them once they reach the end (the next read is placed as the last one returns, when
 * its handler still holds what it was just given: a corked write, a small body waiting
 * for the turn's flush). An arena with no room left, or whose bytes were lent to two
 * handlers both still holding them, is left to them (the garbage collector frees it once
 * their writes are done) and a new one is taken.
 */
export class ReadArena {
  readonly buf: Buffer;
  /** Where the next read goes (the ring's tail). */
  off = 0;
  /** Where the current read began (`region`). */
  readStart = 0;
  /** Where the bytes lent to `lentTo` begin (the ring's head): bytes from here to `off` are held. */
  holdStart = 0;
  /** The handler the held bytes were lent to, or null: nothing held. */
  lentTo: OriginHandler | null = null;
  /** Lent to two handlers that both held them: never reused, never pooled. */
  pinned = false;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
    arenaCounts.made[size === BIG_ARENA ? 1 : 0]++;
  }

  /**
   * Before a read: forget the held bytes if their handler is done with them, and find
   * room for a read of at least an eighth of the arena, after the held bytes or, once
   * they reach the end, before them (a ring). false: no such room.
   */
  settle(): boolean {
    if (this.pinned) return false;
    const lent = this.lentTo;
    if (lent !== null && !holds(lent)) this.lentTo = null;
    if (this.lentTo === null) {
      this.off = 0;
      return true;
    }
    const min = this.buf.length >>> 3;
    if (this.off >= this.holdStart) {
      if (this.buf.length - this.off >= min) return true;
      if (this.holdStart < min) return false;
      this.off = 0;
      return true;
    }
    return this.holdStart - this.off >= min;
  }

  /** The region for the next read (after `settle`): at most READ_MAX bytes from `off`, never into held bytes. */
  region(): Buffer {
    const buf = this.buf;
    const limit = this.lentTo !== null && this.off < this.holdStart ? this.holdStart : buf.length;
    const end = Math.min(limit, this.off + READ_MAX);
    this.readStart = this.off;
    return this.off === 0 && end === buf.length ? buf : buf.subarray(this.off, end);
  }

  /** Let go of the handler lent to if it is done with its bytes (they are free: `off` stays, `settle` resets it). */
  forget(): void {
    const lent = this.lentTo;
    if (lent !== null && !this.pinned && !holds(lent)) this.lentTo = null;
  }

  /** `chunk` (read elsewhere) copied to the start of this unused arena and lent to `handler`: the copy. */
  lendCopy(chunk: Buffer, handler: OriginHandler): Buffer {
    const n = chunk.copy(this.buf, 0);
    this.readStart = 0;
    this.off = n;
    this.lend(handler);
    return this.buf.subarray(0, n);
  }

  /** `handler` is given bytes of the current read. */
  lend(handler: OriginHandler): void {
    const lent = this.lentTo;
    if (lent === handler) return;
    // Bytes lent before to another handler: free if it is done with them, else two
    // holders, which the ring cannot tell apart.
    if (lent !== null && holds(lent)) this.pinned = true;
    this.lentTo = handler;
    this.holdStart = this.readStart;
  }
}

function holds(handler: OriginHandler): boolean {
  return handler.holdsChunks === undefined || handler.holdsChunks();
}

/**
 * What an idle or new connection reads into: a response head and a small body. node:http
 * reads 64 KiB at a time; 16 KiB per idle connection is what a pool of 1,000 origin
 * connections holds (16 MiB).
 */
export const SMALL_ARENA = 16 * 1024;
/**
 * A connection whose read filled its region (a larger body arriving) moves to one of
 * these for the rest of the response: room for several reads while a client's writes
 * are pending (forward.ts holds up to 1 MiB for a fast client before pausing).
 */
export const BIG_ARENA = 1024 * 1024;
/** At most this much per read (fewer, larger reads: fewer parser, JS and write round trips per MiB). */
export const READ_MAX = 128 * 1024;
/** Big arenas kept for reuse by the process (connections give theirs back when idle or closed). */
const POOLED = 16;
const pool: ReadArena[] = [];

/**
 * A big arena: a pooled one whose lent bytes are no longer held, else a new one. Those
 * still held stay pooled (a slow client's writes may be done by the next time).
 */
export function takeBigArena(): ReadArena {
  for (let i = pool.length - 1; i >= 0; i--) {
    const arena = pool[i]!;
    if (arena.settle() && arena.lentTo === null) {
      pool.splice(i, 1);
      return arena;
    }
  }
  return new ReadArena(BIG_ARENA);
}

/** A connection is done with a big arena (it reads into its small one again, or is gone). */
export function giveBack(arena: ReadArena): void {
  if (arena.pinned) return;
  // The oldest goes (freed with its last write) when the pool is full.
  if (pool.push(arena) > POOLED) pool.shift();
}

/** Arenas allocated so far, [small, big] (tests). */
export const arenaCounts = { made: [0, 0] };

/** Arenas pooled now (tests). */
export function pooledArenas(): number {
  return pool.length;
}
