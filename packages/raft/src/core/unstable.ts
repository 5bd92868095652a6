import type { Entry, Snapshot } from '../types.js';

/**
 * The tail of the log not yet durable: entries (and possibly a snapshot from
 * the leader) the driver has been handed in a Ready but has not acknowledged
 * with advance(). `offset` is the index of entries[0].
 */
export class Unstable {
  offset: number;
  entries: Entry[] = [];
  snapshot: Snapshot | undefined;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.metadata.index === i ? s.metadata.term : undefined;
    }
    const k = i - this.offset;
    return k < this.entries.length ? this.entries[k]!.term : undefined;
  }

  /** Entries up to (i, t) became durable. A mismatched term means they were since overwritten. */
  stableTo(i: number, t: number): void {
    if (i < this.offset || this.maybeTerm(i) !== t) return;
    const keep = this.entries.length - (i + 1 - this.offset);
    // Usually everything is stable at once: avoid copying in that case.
    this.entries = keep === 0 ? [] : this.entries.slice(this.entries.length - keep);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Append, discarding any unstable entries at or after ents[0].index (§5.3 conflict rule). */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    const end = this.offset + this.entries.length;
    if (after === end) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail and some stored entries; the driver's
      // save() discards stored entries from `after` on.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries.length = after - this.offset;
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
