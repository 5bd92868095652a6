import { entrySize, type Storage } from '../storage.js';
import type { Entry, Snapshot } from '../types.js';
import { Unstable } from './unstable.js';

/**
 * The Raft log as one sequence: durable entries (read through Storage) then
 * the unstable tail. Tracks commitIndex and lastApplied (§5.3, Figure 2).
 */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  private readonly maxApplyBytes: number;

  constructor(storage: Storage, maxApplyBytes: number) {
    this.storage = storage;
    this.maxApplyBytes = maxApplyBytes;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i, or undefined when i is compacted away or beyond the log. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** §5.4.1: a log is at least as up-to-date if its last term is later, or equal with an index at least as long. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * §5.3 AppendEntries receiver: if the log matches (index, logTerm), append
   * `ents` after discarding a conflicting suffix and return the last new index
   * and the index from which entries were (re)written (0 if none were).
   * Returns undefined if the log does not match, or if the leader would
   * overwrite a committed entry (only a faulty peer can ask that).
   */
  maybeAppend(
    index: number,
    logTerm: number,
    ents: readonly Entry[],
  ): { lastNewIndex: number; writtenFrom: number } | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci === 0) return { lastNewIndex, writtenFrom: 0 };
    if (ci <= this.committed) return undefined;
    this.append(ents.slice(ci - (index + 1)));
    return { lastNewIndex, writtenFrom: ci };
  }

  append(ents: readonly Entry[]): void {
    if (ents.length > 0) this.unstable.truncateAndAppend(ents);
  }

  /** First entry whose term differs from ours, or the first new one; 0 if all are present. */
  private findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      const t = this.term(e.index);
      if (t !== e.term) return e.index;
    }
    return 0;
  }

  /**
   * Fast back-tracking (§5.3 "the follower can include the term of the
   * conflicting entry and the first index it stores for that term"): the
   * largest index <= i whose term is <= t. Entries above it cannot match a log
   * whose entry at i has term t.
   *
   * Terms never decrease along a log, so "term <= t" holds for a prefix of it
   * and the boundary is found by binary search: O(log n) term lookups where a
   * scan would walk every entry of a long divergent term, once per rejection.
   */
  findConflictByTerm(i: number, t: number): number {
    const dummy = this.firstIndex() - 1;
    if (i <= dummy) return i;
    const ti = this.term(i);
    if (ti === undefined || ti <= t) return i;
    // Largest j in [dummy + 1, i - 1] with term(j) <= t, else dummy.
    let lo = dummy + 1;
    let hi = i - 1;
    let found = dummy;
    while (lo <= hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const tm = this.term(mid);
      if (tm === undefined) return mid; // not expected inside the log; stop at the gap
      if (tm <= t) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  commitTo(c: number): void {
    if (c > this.committed) this.committed = Math.min(c, this.lastIndex());
  }

  appliedTo(i: number): void {
    if (i > this.applied && i <= this.committed) this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Entries from lo to the end, bounded by maxBytes; undefined if lo is compacted. */
  entriesFrom(lo: number, maxBytes: number): Entry[] | undefined {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** Entries [lo, hi) within maxBytes (at least one); undefined if lo is compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    hi = Math.min(hi, this.lastIndex() + 1);
    if (lo >= hi) return [];
    const off = this.unstable.offset;
    let out: Entry[];
    if (lo < off) {
      out = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      // Storage stopped at the byte bound: do not continue into unstable.
      if (out.length < Math.min(hi, off) - lo || hi <= off) return out;
      let size = 0;
      for (const e of out) size += entrySize(e);
      for (let i = off; i < hi; i++) {
        const e = this.unstable.entries[i - off]!;
        size += entrySize(e);
        if (size > maxBytes) break;
        out.push(e);
      }
      return out;
    }
    out = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.unstable.entries[i - off]!;
      size += entrySize(e);
      if (size > maxBytes && out.length > 0) break;
      out.push(e);
    }
    return out;
  }

  /**
   * The last index of the log that is durable: below the unstable entries (which may
   * also replace stored ones from their first index on). 0 while a snapshot waits to be
   * written: the stored log is about to be replaced, nothing of it can be counted.
   */
  stableLastIndex(): number {
    const u = this.unstable;
    if (u.snapshot !== undefined) return 0;
    return u.entries.length > 0 ? u.offset - 1 : this.lastIndex();
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  nextCommittedEntries(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, this.maxApplyBytes) ?? [];
  }

  /** The snapshot the leader would send: a pending one from the leader first, else storage's latest. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replace the whole log by a snapshot (§7 InstallSnapshot receiver step 7). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
