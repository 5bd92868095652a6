import type { AbstractBatchOptions } from 'abstract-level';
import { StoreError } from '../pool/errors.js';
import { initialState, type PoolState } from '../pool/state.js';
import type { ApplyResult, CommandEnvelope, PoolCommand, ProposeOptions } from '../pool/types.js';
import { LocalPoolStore, type LocalStoreOptions } from '../stores/local-store.js';
import { awaitWithDeadline } from '../stores/proposal.js';
import { fullStateOps, loadState, stateWriteOps, UTF8, type PoolDb } from './layout.js';
import { writeBatch } from './fast-batch.js';
import { DataDir, type DataDirLogger } from './open-data-dir.js';

export type LevelPoolStoreOptions = (
  | {
      /** A data directory (open-data-dir.ts: created when new, refused when damaged). */
      readonly location: string;
      /** The node it belongs to (recorded in, and checked against, its marker). Default 'n1'. */
      readonly nodeId?: string;
      readonly log?: DataDirLogger;
    }
  | { /** An existing database; the store closes it only when closeDb is true. */ readonly db: PoolDb; readonly closeDb?: boolean }
) &
  LocalStoreOptions & {
    /**
     * Called once when a write to the database fails. The store has stopped by then:
     * the failed writes' callers hear NODE_FAILED (they may be on disk), every later
     * proposal STOPPED. The embedder should stop the process (docs/operations.md, exit 3).
     */
    readonly onFatal?: (err: StoreWriteFailure) => void;
  };

/** A write to the store's database failed; the store accepts nothing more. */
export class StoreWriteFailure extends Error {
  override readonly name = 'StoreWriteFailure';

  constructor(
    /** The data directory, when the store opened one. */
    readonly location: string | undefined,
    cause: unknown,
  ) {
    super(`a write to ${location === undefined ? 'the pool database' : `data directory ${location}`} failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

// `sync` is declared on ClassicLevel's options, not AbstractLevel's (TOOLCHAIN.md);
// memory-level ignores it. Without it an acknowledged write sits in the OS page cache
// and a power cut or kernel crash can still lose it.
const DURABLE: AbstractBatchOptions<string, string> & { sync: boolean } = { ...UTF8, sync: true };

function stoppedByFailure(failure: StoreWriteFailure): StoreError {
  return new StoreError('STOPPED', `the pool store stopped after ${failure.message}; this write was not applied`, { cause: failure });
}

/** Proposals written together at most; bounds one LevelDB batch (and one reply burst). */
const MAX_GROUP = 256;

interface Queued {
  readonly envelope: CommandEnvelope;
  resolve(result: ApplyResult): void;
  reject(err: unknown): void;
}

/**
 * A single-node durable PoolStore on LevelDB. Proposals are applied in arrival order
 * and their changes (plus the applied index) written in synced batches before the
 * callers hear back, so an acknowledged write survives a crash, and reopening restores
 * the exact state. One batch is written at a time; proposals that arrive meanwhile
 * are applied one after the other and written together in the next batch (group
 * commit: one fsync for many writers, so a burst of concurrent writes does not queue
 * behind one fsync each). A batch is atomic, so a crash keeps a prefix of the writes.
 */
export class LevelPoolStore extends LocalPoolStore {
  private queue: Queued[] = [];
  private writing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** The first failed write: the store has stopped (see onFatal). */
  private failure: StoreWriteFailure | null = null;

  private constructor(
    private readonly db: PoolDb,
    private readonly ownsDb: boolean,
    private readonly dataDir: DataDir | undefined,
    state: PoolState,
    private readonly options: LevelPoolStoreOptions,
  ) {
    super(state, options);
  }

  static async open(options: LevelPoolStoreOptions): Promise<LevelPoolStore> {
    const dataDir = 'db' in options ? undefined : await DataDir.open({ location: options.location, nodeId: options.nodeId ?? 'n1', ...(options.log === undefined ? {} : { log: options.log }) });
    const db: PoolDb = dataDir?.db ?? (options as { db: PoolDb }).db;
    const ownsDb = 'db' in options ? options.closeDb === true : true;
    try {
      if (db.status !== 'open') await db.open();
      let state = await loadState(db);
      await dataDir?.begin({ appliedIndex: state?.appliedIndex ?? 0 });
      if (state === undefined) {
        state = initialState();
        await db.batch(fullStateOps(state), DURABLE);
      }
      return new LevelPoolStore(db, ownsDb, dataDir, state, options);
    } catch (err) {
      if (ownsDb) await db.close().catch(() => undefined);
      throw err;
    }
  }

  /** The write failure that stopped the store, if any. */
  get failed(): StoreWriteFailure | null {
    return this.failure;
  }

  async propose(command: PoolCommand, options: ProposeOptions = {}): Promise<ApplyResult> {
    if (this.failure !== null) throw stoppedByFailure(this.failure);
    const envelope = this.prepare(command, options);
    const run = new Promise<ApplyResult>((resolve, reject) => this.queue.push({ envelope, resolve, reject }));
    this.writeNext();
    return awaitWithDeadline(run, options, 'the write');
  }

  /** Stops accepting proposals, lets queued ones finish, then closes the database. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      // Each finished group starts the next one before its promise settles.
      while (this.writing !== undefined) await this.writing;
      this.stopNotifying();
      if (!this.ownsDb) return;
      // A clean stop records the final index in the marker; after a failure, write nothing more.
      if (this.dataDir !== undefined) await this.dataDir.close(this.failure === null ? { appliedIndex: this.state.appliedIndex } : undefined);
      else await this.db.close();
    })();
    return this.closing;
  }

  /** Starts writing the queued proposals unless a batch is already being written. */
  private writeNext(): void {
    if (this.failure !== null) {
      for (const queued of this.queue.splice(0)) queued.reject(stoppedByFailure(this.failure));
      return;
    }
    if (this.writing !== undefined || this.queue.length === 0) return;
    const group = this.queue.splice(0, MAX_GROUP);
    this.writing = this.writeGroup(group).finally(() => {
      this.writing = undefined;
      this.writeNext();
    });
  }

  /** Applies `group` in order and writes the result in one batch; never rejects. */
  private async writeGroup(group: readonly Queued[]): Promise<void> {
    const prev = this.state;
    let state = prev;
    const done: [Queued, ApplyResult][] = [];
    for (const queued of group) {
      try {
        const applied = this.applyNext(queued.envelope, state);
        state = applied.state;
        done.push([queued, applied.result]);
      } catch (err) {
        // A programming error in one proposal (the state machine records every
        // semantic failure as an outcome): fail it alone.
        queued.reject(err);
      }
    }
    try {
      if (done.length > 0) await writeBatch(this.db, stateWriteOps(prev, state), true);
    } catch (err) {
      // The batch may be torn in LevelDB's log, or even complete on disk (LevelDB's
      // buffered file may flush it later): its outcome is unknown. A write after it
      // would land behind a torn record, where recovery would drop it together with the
      // torn one — the write would have been acknowledged and then lost. So the store
      // stops for good: nothing more is written, and the embedder is told to stop.
      this.failure = new StoreWriteFailure(this.dataDir?.location, err);
      const unknown = new StoreError('NODE_FAILED', `${this.failure.message}; the write may have been applied — retry with the same Idempotency-Key once the node is back`, { cause: err });
      for (const [queued] of done) queued.reject(unknown);
      this.options.onFatal?.(this.failure);
      return;
    }
    if (done.length > 0) this.publish(state);
    for (const [queued, result] of done) queued.resolve(result);
  }
}
