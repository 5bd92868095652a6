import type { AbstractBatchOptions } from 'abstract-level';
import { Level } from 'level';
import { initialState, type PoolState } from '../pool/state.js';
import type { ApplyResult, CommandEnvelope, PoolCommand, ProposeOptions } from '../pool/types.js';
import { LocalPoolStore, type LocalStoreOptions } from '../stores/local-store.js';
import { awaitWithDeadline } from '../stores/proposal.js';
import { fullStateOps, loadState, stateWriteOps, UTF8, type PoolDb } from './layout.js';

export type LevelPoolStoreOptions = (
  | { /** Directory of a LevelDB database, created when missing. */ readonly location: string }
  | { /** An existing database; the store closes it only when closeDb is true. */ readonly db: PoolDb; readonly closeDb?: boolean }
) &
  LocalStoreOptions;

// `sync` is declared on ClassicLevel's options, not AbstractLevel's (TOOLCHAIN.md);
// memory-level ignores it. Without it an acknowledged write sits in the OS page cache
// and a power cut or kernel crash can still lose it.
const DURABLE: AbstractBatchOptions<string, string> & { sync: boolean } = { ...UTF8, sync: true };

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

  private constructor(
    private readonly db: PoolDb,
    private readonly ownsDb: boolean,
    state: PoolState,
    options: LevelPoolStoreOptions,
  ) {
    super(state, options);
  }

  static async open(options: LevelPoolStoreOptions): Promise<LevelPoolStore> {
    const db: PoolDb = 'db' in options ? options.db : new Level<string, string>(options.location, UTF8);
    const ownsDb = 'db' in options ? options.closeDb === true : true;
    try {
      await db.open();
      let state = await loadState(db);
      if (state === undefined) {
        state = initialState();
        await db.batch(fullStateOps(state), DURABLE);
      }
      return new LevelPoolStore(db, ownsDb, state, options);
    } catch (err) {
      if (ownsDb) await db.close().catch(() => undefined);
      throw err;
    }
  }

  async propose(command: PoolCommand, options: ProposeOptions = {}): Promise<ApplyResult> {
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
      if (this.ownsDb) await this.db.close();
    })();
    return this.closing;
  }

  /** Starts writing the queued proposals unless a batch is already being written. */
  private writeNext(): void {
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
      // A failed batch writes nothing (LevelDB batches are atomic), so the published
      // state still matches the disk and the next proposals can proceed.
      if (done.length > 0) await this.db.batch(stateWriteOps(prev, state), DURABLE);
    } catch (err) {
      for (const [queued] of done) queued.reject(err);
      return;
    }
    if (done.length > 0) this.publish(state);
    for (const [queued, result] of done) queued.resolve(result);
  }
}
