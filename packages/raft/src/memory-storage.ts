import { EMPTY_HARD_STATE, entrySize, type PersistentStorage, type StorageUpdate } from './storage.js';
import { bootstrapEntries, EMPTY_CONF_STATE, normalizeConfState } from './core/membership.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * In-memory stable storage. Everything passed to save() counts as durable: a
 * simulated crash keeps this object and discards the RawNode, so whatever the
 * driver had not saved is lost. A disk-backed storage (@weldr/store's
 * LevelRaftStorage) keeps one as its cache and updates it only after the disk
 * write is durable.
 *
 * The retained log is an array with a moving head: append and lookup by index
 * are O(1), and compaction is amortized O(1) per entry (the array is re-based
 * only when the dead prefix outweighs the live part).
 */
export class MemoryStorage implements PersistentStorage {
  private hard: HardState;
  private snap: Snapshot;
  /** Entry at dummyIndex (compacted) is known only by its term. */
  private dummyIndex: number;
  private dummyTerm: number;
  private ents: Entry[] = [];
  private head = 0;

  /**
   * `bootstrap`: the voters of a brand-new cluster, written as the committed
   * log prefix (see bootstrapEntries). Leave it out for a server that joins an
   * existing cluster: it starts empty and learns everything from the leader.
   */
  constructor(opts: { bootstrap?: readonly string[]; confState?: ConfState; hardState?: HardState } = {}) {
    this.hard = opts.hardState ?? EMPTY_HARD_STATE;
    this.snap = {
      metadata: { index: 0, term: 0, confState: normalizeConfState(opts.confState ?? EMPTY_CONF_STATE) },
      data: new Uint8Array(0),
    };
    this.dummyIndex = 0;
    this.dummyTerm = 0;
    if (opts.bootstrap !== undefined && opts.bootstrap.length > 0) {
      const ents = bootstrapEntries(opts.bootstrap);
      this.append(ents);
      this.hard = { term: 1, vote: null, commit: ents.length };
    }
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  firstIndex(): number {
    return this.dummyIndex + 1;
  }

  lastIndex(): number {
    return this.dummyIndex + this.ents.length - this.head;
  }

  term(i: number): number | undefined {
    if (i === this.dummyIndex) return this.dummyTerm;
    if (i < this.dummyIndex || i > this.lastIndex()) return undefined;
    return this.ents[this.head + i - this.dummyIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.dummyIndex || hi > this.lastIndex() + 1 || lo > hi) {
      throw new RangeError(`entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`);
    }
    const base = this.head - this.dummyIndex - 1;
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[base + i]!;
      size += entrySize(e);
      if (size > maxBytes && out.length > 0) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  hardState(): HardState {
    return this.hard;
  }

  /** One atomic write: snapshot, then entries, then hard state (the Ready order). */
  save(u: StorageUpdate): void {
    if (u.snapshot !== undefined) this.applySnapshot(u.snapshot);
    if (u.entries.length > 0) this.append(u.entries);
    if (u.hardState !== undefined) this.hard = u.hardState;
  }

  /**
   * An independent copy of everything stored: what a crash would leave if no
   * write after this point reached the disk (tests of unsynced writes).
   */
  clone(): MemoryStorage {
    const c = new MemoryStorage();
    c.hard = this.hard;
    c.snap = this.snap;
    c.dummyIndex = this.dummyIndex;
    c.dummyTerm = this.dummyTerm;
    c.ents = this.ents.slice(this.head);
    c.head = 0;
    return c;
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  /** Append, discarding stored entries at or after entries[0].index. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    let first = entries[0]!.index;
    if (first > this.lastIndex() + 1) throw new RangeError(`append at ${first} leaves a gap after ${this.lastIndex()}`);
    let k = 0;
    if (first <= this.dummyIndex) {
      // Already compacted: those entries are covered by the snapshot.
      k = this.dummyIndex + 1 - first;
      first = this.dummyIndex + 1;
    }
    this.ents.length = this.head + (first - this.dummyIndex - 1);
    for (; k < entries.length; k++) this.ents.push(entries[k]!);
  }

  /** Replace storage with a snapshot received from a leader. */
  applySnapshot(s: Snapshot): void {
    if (s.metadata.index <= this.snap.metadata.index && this.snap.metadata.index > 0) {
      throw new RangeError(`snapshot ${s.metadata.index} is older than ${this.snap.metadata.index}`);
    }
    this.snap = s;
    this.dummyIndex = s.metadata.index;
    this.dummyTerm = s.metadata.term;
    this.ents = [];
    this.head = 0;
  }

  /** Record the application's snapshot of its state at applied index `index`. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap;
    const term = this.term(index);
    if (term === undefined) throw new RangeError(`createSnapshot(${index}) outside the log`);
    this.snap = { metadata: { index, term, confState: normalizeConfState(confState) }, data };
    return this.snap;
  }

  /** Discard entries up to and including `index` (at most the snapshot index). */
  compact(index: number): void {
    if (index <= this.dummyIndex) return;
    if (index > this.snap.metadata.index) throw new RangeError(`compact(${index}) beyond snapshot ${this.snap.metadata.index}`);
    const term = this.term(index)!;
    this.head += index - this.dummyIndex;
    this.dummyIndex = index;
    this.dummyTerm = term;
    if (this.head > 1024 && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }
}
