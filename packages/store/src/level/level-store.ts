import type { AbstractBatchOptions } from 'abstract-level';
import { Level } from 'level';
import type { RequestTableLimits } from '../pool/idempotency.js';
import { applyCommand } from '../pool/state-machine.js';
import { initialState, snapshotOf, type PoolState } from '../pool/state.js';
import type { ApplyResult, CommandEnvelope, PoolCommand, PoolSnapshot, PoolStore, ProposeOptions } from '../pool/types.js';
import { awaitWithDeadline, prepareEnvelope, stoppedError } from '../stores/proposal.js';
import { Subscribers, type ListenerErrorHandler } from '../stores/subscribers.js';
import { fullStateOps, loadState, stateWriteOps, UTF8, type PoolDb } from './layout.js';

export type LevelPoolStoreOptions = (
  | { /** Directory of a LevelDB database, created when missing. */ readonly location: string }
  | { /** An existing database; the store closes it only when closeDb is true. */ readonly db: PoolDb; readonly closeDb?: boolean }
) & {
  readonly limits?: RequestTableLimits;
  readonly onListenerError?: ListenerErrorHandler;
};

// `sync` is declared on ClassicLevel's options, not AbstractLevel's (TOOLCHAIN.md);
// memory-level ignores it. Without it LevelDB acknowledges a write that a power cut
// or kill -9 of the OS could still lose.
const DURABLE: AbstractBatchOptions<string, string> & { sync: boolean } = { ...UTF8, sync: true };

/**
 * A single-node durable PoolStore on LevelDB. Each proposal is applied and its changes
 * (plus the applied index) written in ONE synced batch before the caller hears back, so
 * an acknowledged write survives a crash, and reopening restores the exact state.
 * Proposals run one at a time in arrival order: the next state is computed from the
 * previous one, so interleaving would lose writes.
 */
export class LevelPoolStore implements PoolStore {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly subscribers: Subscribers;

  private constructor(
    private readonly db: PoolDb,
    private readonly ownsDb: boolean,
    private current: PoolState,
    private readonly limits: RequestTableLimits | undefined,
    onListenerError: ListenerErrorHandler | undefined,
  ) {
    this.subscribers = new Subscribers(onListenerError);
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
      return new LevelPoolStore(db, ownsDb, state, options.limits, options.onListenerError);
    } catch (err) {
      if (ownsDb) await db.close().catch(() => undefined);
      throw err;
    }
  }

  /** The full replicated state (for serialisation and tests). */
  get state(): PoolState {
    return this.current;
  }

  snapshot(): PoolSnapshot {
    return snapshotOf(this.current);
  }

  subscribe(listener: (snapshot: PoolSnapshot) => void): () => void {
    return this.subscribers.add(listener);
  }

  async propose(command: PoolCommand, options: ProposeOptions = {}): Promise<ApplyResult> {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    const envelope = prepareEnvelope(command, options);
    const run = this.tail.then(() => this.applyDurably(envelope));
    this.tail = run.catch(() => undefined);
    return awaitWithDeadline(run, options, 'the write');
  }

  /** Every acknowledged write is already in `current`, so the local snapshot is linearizable. */
  async linearizableSnapshot(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PoolSnapshot> {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    return this.snapshot();
  }

  /** Stops accepting proposals, lets queued ones finish, then closes the database. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.tail;
      this.subscribers.clear();
      if (this.ownsDb) await this.db.close();
    })();
    return this.closing;
  }

  private async applyDurably(envelope: CommandEnvelope): Promise<ApplyResult> {
    const prev = this.current;
    const { state, result } = applyCommand(prev, prev.appliedIndex + 1, envelope, this.limits === undefined ? {} : { limits: this.limits });
    // A failed batch writes nothing (LevelDB batches are atomic), so `current` still
    // matches the disk and the next proposal can proceed.
    await this.db.batch(stateWriteOps(prev, state), DURABLE);
    this.current = state;
    this.subscribers.notify(snapshotOf(state));
    return result;
  }
}
