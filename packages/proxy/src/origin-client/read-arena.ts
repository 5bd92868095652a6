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
 * (`OriginHandler.holdsChunks`; a handler without it holds them for ever): until then
 * each read goes after the last one, and an arena that fills up, or whose bytes were
 * lent to two handlers still holding them, is left to them (the garbage collector
 * frees it once their writes are done) and a new one is taken.
 */
export class ReadArena {
  readonly buf: Buffer;
  /** Where the next read goes: bytes before it may be lent. */
  off = 0;
  /** The handler bytes of this arena were last lent to, or null: none lent since `off` was reset. */
  lentTo: OriginHandler | null = null;
  /** Lent to two handlers that both held them: never reset, never pooled. */
  pinned = false;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
    arenaCounts.made[size === BIG_ARENA ? 1 : 0]++;
  }

  /** The region for the next read: at most READ_MAX bytes from `off`. */
  region(): Buffer {
    const buf = this.buf;
    const end = Math.min(buf.length, this.off + READ_MAX);
    return this.off === 0 && end === buf.length ? buf : buf.subarray(this.off, end);
  }

  /** `handler` is given bytes of this arena. */
  lend(handler: OriginHandler): void {
    const lent = this.lentTo;
    if (lent === handler) return;
    if (lent !== null && holds(lent)) this.pinned = true;
    this.lentTo = handler;
  }

  /**
   * Before a read: forget the lent bytes if their handler no longer holds them (the
   * next read may overwrite them). false: the arena cannot take another read.
   */
  settle(): boolean {
    if (this.pinned) return false;
    const lent = this.lentTo;
    if (lent !== null && !holds(lent)) this.lentTo = null;
    if (this.lentTo === null) {
      this.off = 0;
      return true;
    }
    // Held: the next read goes after the lent bytes, if a useful read still fits.
    return this.buf.length - this.off >= this.buf.length / 4;
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
    if (arena.settle() && arena.off === 0) {
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
