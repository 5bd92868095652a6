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

/**
 * A single-node durable PoolStore on LevelDB. Each proposal is applied and its changes
 * (plus the applied index) written in ONE synced batch before the caller hears back, so
 * an acknowledged write survives a crash, and reopening restores the exact state.
 * Proposals run one at a time in arrival order: the next state is computed from the
 * previous one, so interleaving would lose writes.
 */
export class LevelPoolStore extends LocalPoolStore {
  private tail: Promise<unknown> = Promise.resolve();
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
    const run = this.tail.then(() => this.applyDurably(envelope));
    this.tail = run.catch(() => undefined);
    return awaitWithDeadline(run, options, 'the write');
  }

  /** Stops accepting proposals, lets queued ones finish, then closes the database. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.tail;
      this.stopNotifying();
      if (this.ownsDb) await this.db.close();
    })();
    return this.closing;
  }

  private async applyDurably(envelope: CommandEnvelope): Promise<ApplyResult> {
    const prev = this.state;
    const { state, result } = this.applyNext(envelope);
    // A failed batch writes nothing (LevelDB batches are atomic), so the published
    // state still matches the disk and the next proposal can proceed.
    await this.db.batch(stateWriteOps(prev, state), DURABLE);
    this.publish(state);
    return result;
  }
}
