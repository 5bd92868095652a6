import type { RequestTableLimits } from '../pool/idempotency.js';
import { applyCommand, type Applied, type ApplyOptions } from '../pool/state-machine.js';
import { snapshotOf, type PoolState } from '../pool/state.js';
import type { ApplyResult, CommandEnvelope, PoolCommand, PoolSnapshot, PoolStore, ProposeOptions } from '../pool/types.js';
import { prepareEnvelope, stoppedError } from './proposal.js';
import { Subscribers, type ListenerErrorHandler } from './subscribers.js';

export interface LocalStoreOptions {
  /** Idempotency-table bounds; tests shrink them to exercise eviction. */
  readonly limits?: RequestTableLimits;
  /** Audit entries kept (AUDIT_RETENTION); tests shrink it to exercise eviction. */
  readonly auditRetention?: number;
  /** Epoch milliseconds for the audit log's entries (default Date.now); tests fix it. */
  readonly now?: () => number;
  /** Called when a subscriber throws; default rethrows asynchronously. */
  readonly onListenerError?: ListenerErrorHandler;
}

/**
 * What every single-node store shares: the current state, subscribers, and applying a
 * proposal at appliedIndex + 1. Because this node alone decides the order, every
 * acknowledged write is already in `current`, so the local snapshot is linearizable.
 * Subclasses decide how (and whether) a new state is made durable before publishing it.
 */
export abstract class LocalPoolStore implements PoolStore {
  protected closed = false;
  private readonly subscribers: Subscribers;
  private readonly applyOptions: ApplyOptions;
  private readonly now: () => number;

  protected constructor(
    private current: PoolState,
    options: LocalStoreOptions,
  ) {
    this.subscribers = new Subscribers(options.onListenerError);
    this.now = options.now ?? Date.now;
    this.applyOptions = { ...(options.limits === undefined ? {} : { limits: options.limits }), ...(options.auditRetention === undefined ? {} : { auditRetention: options.auditRetention }) };
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

  async linearizableSnapshot(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PoolSnapshot> {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    return this.snapshot();
  }

  abstract propose(command: PoolCommand, options?: ProposeOptions): Promise<ApplyResult>;
  abstract close(): Promise<void>;

  /** Checks that the store is open and the caller still waits; validates. */
  protected prepare(command: PoolCommand, options: ProposeOptions): CommandEnvelope {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    return prepareEnvelope(command, options, this.now);
  }

  /** The state after `envelope`, from `base` (default: the current state); nothing is published yet. */
  protected applyNext(envelope: CommandEnvelope, base: PoolState = this.current): Applied {
    return applyCommand(base, base.appliedIndex + 1, envelope, this.applyOptions);
  }

  protected publish(state: PoolState): void {
    this.current = state;
    this.subscribers.notify(snapshotOf(state));
  }

  protected stopNotifying(): void {
    this.subscribers.clear();
  }
}
