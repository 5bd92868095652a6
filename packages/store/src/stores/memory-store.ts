import { applyCommand } from '../pool/state-machine.js';
import { initialState, snapshotOf, type PoolState } from '../pool/state.js';
import type { RequestTableLimits } from '../pool/idempotency.js';
import type { ApplyResult, PoolCommand, PoolSnapshot, PoolStore, ProposeOptions } from '../pool/types.js';
import { prepareEnvelope, stoppedError } from './proposal.js';
import { Subscribers, type ListenerErrorHandler } from './subscribers.js';

export interface MemoryPoolStoreOptions {
  /** Start from this state instead of the empty pool (e.g. a deserialised snapshot). */
  readonly initial?: PoolState;
  /** Idempotency-table bounds; tests shrink them to exercise eviction. */
  readonly limits?: RequestTableLimits;
  /** Called when a subscriber throws; default rethrows asynchronously. */
  readonly onListenerError?: ListenerErrorHandler;
}

/**
 * A single-node, non-durable PoolStore: each proposal is validated and applied at
 * appliedIndex + 1 synchronously, so every snapshot is trivially linearizable. Used by
 * tests everywhere and by a node that runs without persistence.
 */
export class MemoryPoolStore implements PoolStore {
  private current: PoolState;
  private closed = false;
  private readonly subscribers: Subscribers;
  private readonly limits: RequestTableLimits | undefined;

  constructor(options: MemoryPoolStoreOptions = {}) {
    this.current = options.initial ?? initialState();
    this.limits = options.limits;
    this.subscribers = new Subscribers(options.onListenerError);
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
    const { state, result } = applyCommand(this.current, this.current.appliedIndex + 1, envelope, this.applyOptions());
    this.current = state;
    this.subscribers.notify(snapshotOf(state));
    return result;
  }

  async linearizableSnapshot(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PoolSnapshot> {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    return this.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
  }

  private applyOptions(): { limits?: RequestTableLimits } {
    return this.limits === undefined ? {} : { limits: this.limits };
  }
}
