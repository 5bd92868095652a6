// The Raft log, hard state and latest snapshot on LevelDB, in the same database as the
// pool state (layout.ts), under their own prefix:
//
//   raft/hardstate          {"term","vote","commit","lease"} JSON (lease may be absent: 0)
//   raft/snapshot           {"index","term","confState"} JSON: the latest snapshot's metadata
//   raft/snapshot-data      the latest snapshot's bytes
//   raft/log/<16 digits>    one entry: [type byte][term, float64 big-endian][data]
//
// Index keys are zero-padded to 16 decimal digits (> 2^53), so LevelDB's byte order is
// numeric order and the log loads in order with one range scan.
//
// Reads are synchronous, as the core wants them: the retained log (bounded by
// compaction) is held in a MemoryStorage that is updated only after the disk write it
// mirrors is durable. Every write goes through one queue, in call order, each a single
// batch: save() (snapshot, entries, hard state — all or nothing after a crash; synced
// unless the caller says it need not be), createSnapshot() and compact() (synced), and
// write(): the application's own keys (the pool state), unsynced, but never on disk
// before a write issued earlier — LevelDB's write-ahead log keeps the order, so after a
// crash the pool is never ahead of the log it was applied from. Writes that queue up
// behind one in progress are merged into one batch (group commit).
//
// Lazy writes: the pool's keys and a commit-only hard state (save with sync: false) need
// not reach the disk at once — a crash may lose them anyway, and the node then replays
// the committed entries from its log (the pool records the index it was applied up to).
// They wait in the queue for the next write that must go (the next Ready's entries, a
// snapshot, a flush) and go down in its batch, or after lazyFlushMs at the latest. One
// admin write thus costs each node one trip to LevelDB (its entry, synced, carrying the
// previous write's pool keys and commit index) instead of two. Order is kept: a lazy
// write is never on disk before one issued earlier, nor after one issued later.
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  MemoryStorage,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type PersistentStorage,
  type Snapshot,
  type StorageUpdate,
} from '@weldr/raft';
import { writeBatch } from './fast-batch.js';
import { padIndex, type PoolBatchOp, type PoolDb } from './layout.js';

export const RAFT_KEYS = Object.freeze({
  hardState: 'raft/hardstate',
  snapshot: 'raft/snapshot',
  snapshotData: 'raft/snapshot-data',
  logPrefix: 'raft/log/',
});

const LOG_END = 'raft/log0'; // '/' + 1: just after every log key

export function logKey(index: number): string {
  return `${RAFT_KEYS.logPrefix}${padIndex(index)}`;
}

const TYPE_CODES: Record<EntryType, number> = { normal: 0, confChange: 1, noop: 2 };
const CODE_TYPES: readonly EntryType[] = ['normal', 'confChange', 'noop'];

export function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(9 + e.data.byteLength);
  out[0] = TYPE_CODES[e.type];
  new DataView(out.buffer).setFloat64(1, e.term);
  out.set(e.data, 9);
  return out;
}

export function decodeEntry(index: number, bytes: Uint8Array): Entry {
  if (bytes.byteLength < 9) throw new RaftStorageCorrupt(`log entry ${index}: ${bytes.byteLength} bytes, shorter than its header`);
  const type = CODE_TYPES[bytes[0]!];
  const term = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(1);
  if (type === undefined || !Number.isSafeInteger(term) || term < 1) {
    throw new RaftStorageCorrupt(`log entry ${index}: bad header (type ${bytes[0]}, term ${term})`);
  }
  // A plain Uint8Array copy: LevelDB may hand back a Buffer view of a larger allocation.
  return { index, term, type, data: new Uint8Array(bytes.subarray(9)) };
}

/** The database holds Raft state this code cannot read: refuse to start rather than guess. */
export class RaftStorageCorrupt extends Error {
  constructor(message: string) {
    super(`raft storage is corrupt: ${message}`);
    this.name = 'RaftStorageCorrupt';
  }
}

type Op =
  | { type: 'put'; key: string; value: string | Uint8Array; keyEncoding: 'utf8'; valueEncoding: 'utf8' | 'view' }
  | { type: 'del'; key: string; keyEncoding: 'utf8' };

const put = (key: string, value: string): Op => ({ type: 'put', key, value, keyEncoding: 'utf8', valueEncoding: 'utf8' });
const putBytes = (key: string, value: Uint8Array): Op => ({ type: 'put', key, value, keyEncoding: 'utf8', valueEncoding: 'view' });
const del = (key: string): Op => ({ type: 'del', key, keyEncoding: 'utf8' });

// `sync` is ClassicLevel's option (memory-level ignores it): without it an acknowledged
// append could sit in the page cache and vanish with a power cut.
const SYNC = { sync: true } as const;

/** How long a lazy write (pool keys, a commit-only hard state) may wait for a batch to join. */
export const LAZY_FLUSH_MS = 20;

export interface LevelRaftStorageOptions {
  /** Voters of a brand-new cluster (bootstrapEntries); ignored when the database already has Raft state. */
  readonly bootstrap?: readonly string[];
  /** Or: the configuration of an empty log (tests; a joining server passes neither). */
  readonly confState?: ConfState;
}

/**
 * A PersistentStorage for @weldr/raft on LevelDB. Use `open` (loads and checks what is
 * on disk), then hand it to RawNode as its storage; the driver awaits `save(ready)`
 * before sending the Ready's messages, calls `createSnapshot`/`compact` after applying,
 * and `flush()` when it must know those are on disk too.
 */
/** One write waiting in the queue: its ops are planned when it runs (a save reads what earlier writes left in memory). */
interface QueuedWrite {
  readonly plan: () => { ops: Op[]; then: () => void; sync?: boolean };
  /**
   * A save() of entries or a snapshot: at most one per merged batch (its plan reads the
   * log in memory, which only its predecessor's then() updates). A hard-state-only save
   * reads nothing of it and may share a batch with one.
   */
  readonly save: boolean;
  /** May wait for the next batch that must go (see the file comment). */
  readonly lazy: boolean;
  resolve(): void;
  reject(err: Error): void;
}

export class LevelRaftStorage implements PersistentStorage {
  private readonly pending: QueuedWrite[] = [];
  private writing = false;
  /** The first failed write: every later write fails with it too (the log on disk may be behind). */
  private failed: Error | null = null;
  private readonly failureListeners: ((err: Error) => void)[] = [];
  /** Writes in `pending` that are not lazy: while there is none, lazy writes wait. */
  private urgent = 0;
  private lazyTimer: NodeJS.Timeout | null = null;
  private lazyDue = false;

  private constructor(
    private readonly db: PoolDb,
    private readonly mem: MemoryStorage,
  ) {}

  static async open(db: PoolDb, options: LevelRaftStorageOptions = {}): Promise<LevelRaftStorage> {
    if (db.status !== 'open') await db.open();
    const hardText = await db.get(RAFT_KEYS.hardState, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    const snapText = await db.get(RAFT_KEYS.snapshot, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    if (hardText === undefined && snapText === undefined) {
      const fresh = await firstLogKey(db);
      if (fresh !== undefined) throw new RaftStorageCorrupt(`log entries (${fresh}) without a hard state`);
      const s = new LevelRaftStorage(db, new MemoryStorage({ bootstrap: options.bootstrap, confState: options.confState }));
      await s.writeAll();
      return s;
    }
    if (hardText === undefined || snapText === undefined) throw new RaftStorageCorrupt('hard state and snapshot metadata must both be present');
    const hardState = parseHardState(hardText);
    const meta = parseSnapshotMeta(snapText);
    const mem = new MemoryStorage({ confState: meta.confState, hardState });
    if (meta.index > 0) {
      const data = await db.get(RAFT_KEYS.snapshotData, { keyEncoding: 'utf8', valueEncoding: 'view' });
      if (data === undefined) throw new RaftStorageCorrupt(`snapshot ${meta.index} has no data`);
      mem.applySnapshot({ metadata: meta, data: Uint8Array.from(data as unknown as Uint8Array) });
      mem.setHardState(hardState);
    }
    // The log restarts right after the snapshot: entries it covers (kept by a compaction
    // to an earlier index, or left by one cut short) are not loaded, and are deleted.
    const stale: string[] = [];
    for await (const key of db.keys({ gte: RAFT_KEYS.logPrefix, lte: logKey(meta.index), keyEncoding: 'utf8' })) stale.push(key);
    if (stale.length > 0) await db.batch(stale.map((key) => del(key)) as never);
    const entries: Entry[] = [];
    let expected = meta.index + 1;
    for await (const [key, value] of db.iterator({ gt: logKey(meta.index), lt: LOG_END, keyEncoding: 'utf8', valueEncoding: 'view' })) {
      const index = Number(key.slice(RAFT_KEYS.logPrefix.length));
      if (index !== expected) throw new RaftStorageCorrupt(`log has a gap: entry ${index} follows ${expected - 1}`);
      const e = decodeEntry(index, value as unknown as Uint8Array);
      const prevTerm = entries.length > 0 ? entries[entries.length - 1]!.term : meta.term;
      if (e.term < prevTerm) throw new RaftStorageCorrupt(`entry ${index} has term ${e.term} below its predecessor's ${prevTerm}`);
      entries.push(e);
      expected++;
    }
    mem.append(entries);
    if (hardState.commit > mem.lastIndex()) {
      throw new RaftStorageCorrupt(`commit index ${hardState.commit} beyond the last entry ${mem.lastIndex()}`);
    }
    return new LevelRaftStorage(db, mem);
  }

  // ---- Storage (reads from memory) ------------------------------------------------

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(i: number): number | undefined {
    return this.mem.term(i);
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  // ---- writes ----------------------------------------------------------------------

  /**
   * One batch for a Ready's snapshot, entries and hard state, synced unless `sync` is
   * false (only for a commit-only change: Ready.mustSync); memory follows once written.
   */
  save(u: StorageUpdate, options: { readonly sync?: boolean } = {}): Promise<void> {
    const logChange = u.snapshot !== undefined || u.entries.length > 0;
    // A commit-only hard state (unsynced) is lazy: a lost commit index is learnt again from the leader.
    return this.enqueue(logChange, () => {
      const ops: Op[] = [];
      // Against what will be in memory when this write runs (writes run in order).
      let last = this.mem.lastIndex();
      if (u.snapshot !== undefined) {
        // The snapshot replaces the whole log.
        ops.push(...this.deleteRange(this.mem.firstIndex(), last));
        ops.push(...snapshotOps(u.snapshot));
        last = u.snapshot.metadata.index;
      }
      if (u.entries.length > 0) {
        // Entries a snapshot already covers are not stored (MemoryStorage skips them too).
        const floor = u.snapshot !== undefined ? u.snapshot.metadata.index : this.mem.firstIndex() - 1;
        const first = Math.max(u.entries[0]!.index, floor + 1);
        // A conflicting suffix is replaced.
        ops.push(...this.deleteRange(first, last));
        for (const e of u.entries) if (e.index > floor) ops.push(putBytes(logKey(e.index), encodeEntry(e)));
      }
      if (u.hardState !== undefined) ops.push(put(RAFT_KEYS.hardState, JSON.stringify(u.hardState)));
      return { ops, then: () => this.mem.save(u), sync: options.sync ?? true };
    }, !logChange && options.sync === false);
  }

  /**
   * The application's own keys (outside raft/), written unsynced in order with the log's
   * writes: a crash may lose it, never reorder it before a write issued earlier.
   */
  write(ops: readonly PoolBatchOp[]): Promise<void> {
    return this.enqueue(
      false,
      () => ({
        ops: ops.map((op): Op => (op.type === 'put' ? put(op.key, op.value) : del(op.key))),
        then: () => undefined,
        sync: false,
      }),
      true,
    );
  }

  /**
   * Record the application's snapshot at applied index `index` (memory at once, disk in
   * order with other writes). Entries stay until `compact`.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const before = this.mem.snapshot();
    const snap = this.mem.createSnapshot(index, confState, data);
    if (snap !== before) this.enqueue(false, () => ({ ops: snapshotOps(snap), then: () => undefined })).catch(() => undefined);
    return snap;
  }

  /** Discard entries up to `index` (at most the snapshot's). Memory at once, disk in order. */
  compact(index: number): void {
    const first = this.mem.firstIndex();
    this.mem.compact(index);
    if (index >= first) this.enqueue(false, () => ({ ops: this.deleteRange(first, index), then: () => undefined })).catch(() => undefined);
  }

  /**
   * `listener` is called once with the first failed write — also one nobody awaits
   * (createSnapshot, compact) — so the driver can stop at once rather than at its next save.
   */
  onFailure(listener: (err: Error) => void): void {
    const failed = this.failed;
    if (failed !== null) queueMicrotask(() => listener(failed));
    else this.failureListeners.push(listener);
  }

  /** Resolves when every write issued so far is durable; rejects if any failed. */
  flush(): Promise<void> {
    return this.enqueue(false, () => ({ ops: [], then: () => undefined }));
  }

  private enqueue(save: boolean, plan: QueuedWrite['plan'], lazy = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ plan, save, lazy, resolve, reject });
      if (!lazy) this.urgent++;
      this.kick();
    });
  }

  /** Start writing what is queued — unless it is all lazy and not yet due: then make sure it will be. */
  private kick(): void {
    if (this.writing || this.pending.length === 0) return;
    if (this.urgent === 0 && !this.lazyDue && this.failed === null) {
      if (this.lazyTimer === null) {
        this.lazyTimer = setTimeout(() => {
          this.lazyTimer = null;
          this.lazyDue = true;
          this.kick();
        }, LAZY_FLUSH_MS);
      }
      return;
    }
    if (this.lazyTimer !== null) clearTimeout(this.lazyTimer);
    this.lazyTimer = null;
    void this.writeQueued();
  }

  /**
   * Group commit: the writes that queued up while one was on its way to the disk go
   * down together as one batch (synced if any of them must be) — one fsync and one trip
   * to LevelDB's thread instead of one each. A batch holds at most one save(): a save's
   * ops are planned against the memory its predecessor's completion updates.
   */
  private async writeQueued(): Promise<void> {
    this.writing = true;
    // Lazy writes ride along with the next urgent one (or go once due); alone, they wait.
    while (this.pending.length > 0 && (this.urgent > 0 || this.lazyDue || this.failed !== null)) {
      this.lazyDue = false;
      const batch: QueuedWrite[] = [];
      let saves = 0;
      while (this.pending.length > 0 && !(this.pending[0]!.save && saves > 0)) {
        const w = this.pending.shift()!;
        if (w.save) saves++;
        if (!w.lazy) this.urgent--;
        batch.push(w);
      }
      if (this.failed !== null) {
        for (const w of batch) w.reject(this.failed);
        continue;
      }
      const planned = batch.map((w) => w.plan());
      const ops = planned.length === 1 ? planned[0]!.ops : planned.flatMap((p) => p.ops);
      const sync = planned.some((p) => p.sync ?? true);
      try {
        if (ops.length > 0) await writeBatch(this.db, ops, sync);
      } catch (err) {
        this.failed = err as Error;
        for (const listener of this.failureListeners.splice(0)) listener(this.failed);
        for (const w of batch) w.reject(this.failed);
        continue;
      }
      for (let i = 0; i < batch.length; i++) {
        planned[i]!.then();
        batch[i]!.resolve();
      }
    }
    this.writing = false;
    // Lazy writes left behind wait for the next urgent write, or their timer.
    this.kick();
  }

  private deleteRange(from: number, to: number): Op[] {
    const ops: Op[] = [];
    for (let i = from; i <= to; i++) ops.push(del(logKey(i)));
    return ops;
  }

  /** A fresh database: everything in memory (bootstrap entries, hard state, metadata). */
  private async writeAll(): Promise<void> {
    const ops: Op[] = [put(RAFT_KEYS.hardState, JSON.stringify(this.mem.hardState())), ...snapshotOps(this.mem.snapshot())];
    const last = this.mem.lastIndex();
    if (last > 0) for (const e of this.mem.entries(1, last + 1, Infinity)) ops.push(putBytes(logKey(e.index), encodeEntry(e)));
    await this.db.batch(ops as never, SYNC as never);
  }
}

function snapshotOps(s: Snapshot): Op[] {
  const { index, term, confState } = s.metadata;
  return [put(RAFT_KEYS.snapshot, JSON.stringify({ index, term, confState })), putBytes(RAFT_KEYS.snapshotData, s.data)];
}

async function firstLogKey(db: PoolDb): Promise<string | undefined> {
  for await (const key of db.keys({ gte: RAFT_KEYS.logPrefix, lt: LOG_END, limit: 1, keyEncoding: 'utf8' })) return key;
  return undefined;
}

function parseJson(what: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RaftStorageCorrupt(`${what} is not JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new RaftStorageCorrupt(`${what} is not an object`);
  return v as Record<string, unknown>;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseHardState(text: string): HardState {
  const o = parseJson('hard state', text);
  if (!isIndex(o.term) || !isIndex(o.commit) || !(o.vote === null || (typeof o.vote === 'string' && o.vote.length > 0))) {
    throw new RaftStorageCorrupt(`hard state ${text}`);
  }
  // lease (the promise kept after a restart) came later: absent in older data directories, read as 0.
  if (o.lease !== undefined && !isIndex(o.lease)) throw new RaftStorageCorrupt(`hard state ${text}`);
  if (o.term === 0 && o.vote === null && o.commit === 0 && (o.lease ?? 0) === 0) return EMPTY_HARD_STATE;
  return o.lease === undefined ? { term: o.term, vote: o.vote, commit: o.commit } : { term: o.term, vote: o.vote, commit: o.commit, lease: o.lease };
}

function parseSnapshotMeta(text: string): Snapshot['metadata'] {
  const o = parseJson('snapshot metadata', text);
  const cs = o.confState as Record<string, unknown> | undefined;
  const ids = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0);
  if (!isIndex(o.index) || !isIndex(o.term) || cs === undefined || cs === null || !ids(cs.voters) || !ids(cs.learners)) {
    throw new RaftStorageCorrupt(`snapshot metadata ${text}`);
  }
  const confState: ConfState = o.index === 0 && cs.voters.length === 0 && cs.learners.length === 0 ? EMPTY_CONF_STATE : { voters: cs.voters, learners: cs.learners };
  return { index: o.index, term: o.term, confState };
}
