import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * The read side of stable storage, as the core sees it (etcd's Storage).
 * Calls are synchronous: a real implementation keeps the retained log (bounded
 * by compaction) in memory, or a cache of it, and writes through to disk.
 *
 * Index conventions: the log holds entries [firstIndex(), lastIndex()]; the
 * entry just before firstIndex() is covered by the latest snapshot, whose
 * index and term are still answerable through term(firstIndex() - 1).
 * An empty, fresh log has firstIndex() = 1 and lastIndex() = 0.
 */
export interface Storage {
  /**
   * The durable HardState, and the configuration in force at firstIndex() - 1:
   * the latest snapshot's ConfState, or the bootstrap configuration.
   * The core derives later configurations by scanning the retained log.
   */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), firstIndex() <= lo <= hi <= lastIndex() + 1, total
   * size at most maxBytes except that at least one entry is returned if lo < hi.
   * The core never asks outside that range.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i for firstIndex() - 1 <= i <= lastIndex(); undefined outside. */
  term(i: number): number | undefined;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (index 0 with empty data if none was ever taken). */
  snapshot(): Snapshot;
}

/**
 * What the driver persists from one Ready. A real implementation writes all
 * of it in one atomic, synced batch: after a crash either all of it or none of
 * it is visible. Order inside the batch: snapshot (replaces the log), then
 * entries (discarding any stored entries at or after entries[0].index), then
 * hardState.
 */
export interface StorageUpdate {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
}

/** Storage plus the atomic write the driver performs between ready() and advance(). */
export interface PersistentStorage extends Storage {
  save(update: StorageUpdate): void | Promise<void>;
}

/** Approximate encoded size of an entry, for maxSizePerMsg / inflight byte bounds. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}

/** The HardState of a server that never voted nor saw a term. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === null && hs.commit === 0 && (hs.lease ?? 0) === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit && (a.lease ?? 0) === (b.lease ?? 0);
}
