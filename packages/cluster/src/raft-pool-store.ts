// The Raft-backed PoolStore: proposals go through the Raft log (RaftDriver), committed
// entries are applied to the pool state in LevelDB, and every node publishes the same
// sequence of snapshots to its proxy.
//
// The pool state lives under pool/ in the node's database (the layout of LevelPoolStore),
// the Raft log under raft/ (LevelRaftStorage). Each apply writes the changed keys and the
// applied index in one batch, so a restart resumes exactly after the last applied entry;
// a Raft snapshot is the serialized pool state (serializeState).
import { decodeConfChange, type ConfState, type Entry, type NodeId, type Snapshot } from '@weldr/raft';
import {
  StoreError,
  Subscribers,
  advanceIndex,
  applyCommand,
  applyConfChangeEntry,
  awaitWithDeadline,
  deserializeState,
  fullStateOps,
  initialState,
  loadState,
  prepareEnvelope,
  replaceStateOps,
  serializeState,
  snapshotOf,
  stateWriteOps,
  stoppedError,
  UTF8,
  type ApplyResult,
  type CommandEnvelope,
  type ListenerErrorHandler,
  type PoolBatchOp,
  type PoolCommand,
  type PoolDb,
  type PoolSnapshot,
  type PoolState,
  type PoolStore,
  type ProposeOptions,
} from '@weldr/store';
import { DriverFailedError, NotLeaderError, OutcomeUnknownError, OverloadedError, ProposalLostError, type RaftDriver, type ReplicatedStateMachine } from './driver.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Where the replica writes what an apply changed: in order with the Raft log's writes,
 * after the entries it was applied from (LevelRaftStorage.write). A failure there must
 * stop the node (the storage reports it to the driver).
 */
export type PoolWriter = (ops: readonly PoolBatchOp[]) => Promise<void>;

export interface PoolReplicaOptions {
  readonly onListenerError?: ListenerErrorHandler;
  /** Default: the database directly, awaited (apply then answers only once written). */
  readonly write?: PoolWriter;
}

/** The pool state machine as the Raft driver sees it. */
export class PoolReplica implements ReplicatedStateMachine<ApplyResult | null> {
  private readonly memberListeners = new Set<(state: PoolState) => void>();

  private constructor(
    private readonly db: PoolDb,
    private state: PoolState,
    private readonly subscribers: Subscribers,
    private readonly writer: PoolWriter | undefined,
    private readonly onListenerError: ListenerErrorHandler | undefined,
  ) {}

  static async open(db: PoolDb, options: PoolReplicaOptions = {}): Promise<PoolReplica> {
    let state = await loadState(db);
    if (state === undefined) {
      state = initialState();
      await db.batch(fullStateOps(state), { ...UTF8, sync: true } as never);
    }
    return new PoolReplica(db, state, new Subscribers(options.onListenerError), options.write, options.onListenerError);
  }

  get appliedIndex(): number {
    return this.state.appliedIndex;
  }

  get current(): PoolState {
    return this.state;
  }

  subscribe(listener: (snapshot: PoolSnapshot) => void): () => void {
    return this.subscribers.add(listener);
  }

  apply(entries: readonly Entry[]): (ApplyResult | null)[] | Promise<(ApplyResult | null)[]> {
    const prev = this.state;
    let next = prev;
    const results: (ApplyResult | null)[] = [];
    for (const e of entries) {
      if (e.index <= next.appliedIndex) {
        results.push(null); // already applied before a restart
        continue;
      }
      if (e.type === 'confChange') {
        // Member records change with the Raft configuration, at the same index.
        const applied = applyConfChangeEntry(next, e.index, decodeConfChange(e.data));
        next = applied.state;
        results.push(applied.result);
        continue;
      }
      if (e.type !== 'normal') {
        next = advanceIndex(next, e.index);
        results.push(null);
        continue;
      }
      let envelope: CommandEnvelope;
      try {
        envelope = JSON.parse(decoder.decode(e.data)) as CommandEnvelope;
      } catch {
        // applyCommand turns an unreadable envelope into an INVALID outcome.
        envelope = {} as CommandEnvelope;
      }
      const applied = applyCommand(next, e.index, envelope);
      next = applied.state;
      results.push(applied.result);
    }
    if (next === prev) return results;
    // Not synced: the Raft log holds every applied entry durably; a crash replays them.
    const ops = stateWriteOps(prev, next);
    if (this.writer === undefined) {
      return this.db.batch(ops as never, UTF8 as never).then(() => this.publish(next, results));
    }
    // Ordered after the log write of these entries; a failure reaches the driver through
    // the storage (fail-stop), so nobody needs to wait here.
    this.writer(ops).catch(() => undefined);
    return this.publish(next, results);
  }

  private publish(next: PoolState, results: (ApplyResult | null)[]): (ApplyResult | null)[] {
    const prev = this.state;
    this.state = next;
    this.subscribers.notify(snapshotOf(next));
    if (next.cluster !== prev.cluster) this.notifyMembers(next);
    return results;
  }

  /** Called after every applied change of the cluster id or the member records. */
  onMembersChange(listener: (state: PoolState) => void): () => void {
    this.memberListeners.add(listener);
    return () => this.memberListeners.delete(listener);
  }

  private notifyMembers(state: PoolState): void {
    for (const l of this.memberListeners) {
      try {
        l(state);
      } catch (err) {
        this.onListenerError?.(err);
      }
    }
  }

  /**
   * A cluster whose state predates member records (state format 1) has a Raft
   * configuration but no records: give every member in `conf` — the configuration at
   * the applied index, the same on every replica that applied it — a record without
   * addresses. The leader fills in the addresses as for a new cluster.
   */
  async adoptConfiguration(conf: ConfState): Promise<boolean> {
    if (this.state.cluster.members.size > 0 || this.state.appliedIndex === 0 || conf.voters.length + conf.learners.length === 0) return false;
    let next = this.state;
    for (const [ids, type] of [[conf.voters, 'addVoter'], [conf.learners, 'addLearner']] as const) {
      for (const nodeId of ids) {
        const at = next.appliedIndex;
        // Applied "again" at the current index: only the records move, not the index.
        const applied = applyConfChangeEntry({ ...next, appliedIndex: at - 1 }, at, { type, nodeId });
        next = applied.state;
      }
    }
    await this.db.batch(stateWriteOps(this.state, next), { ...UTF8, sync: true } as never);
    const prev = this.state;
    this.state = next;
    if (next.cluster !== prev.cluster) this.notifyMembers(next);
    return true;
  }

  async restore(snapshot: Snapshot): Promise<void> {
    const next = snapshot.data.byteLength === 0 ? initialState() : deserializeState(decoder.decode(snapshot.data));
    const at = snapshot.metadata.index;
    const state = next.appliedIndex === at ? next : Object.freeze({ ...next, appliedIndex: at });
    await this.db.batch(await replaceStateOps(this.db, state), { ...UTF8, sync: true } as never);
    this.state = state;
    this.subscribers.notify(snapshotOf(state));
    this.notifyMembers(state);
  }

  snapshotData(): Uint8Array {
    return encoder.encode(serializeState(this.state));
  }

  clearSubscribers(): void {
    this.subscribers.clear();
  }
}

export interface RaftPoolStoreOptions {
  /** Default deadline of a proposal or a linearizable read. Default 5000 ms. */
  readonly timeoutMs?: number;
}

/** PoolStore over Raft. Writes on a follower fail with NOT_LEADER (leaderId set) for the admin API to forward. */
export class RaftPoolStore implements PoolStore {
  private closed = false;
  private readonly timeoutMs: number;

  constructor(
    private readonly driver: RaftDriver<ApplyResult | null>,
    private readonly replica: PoolReplica,
    options: RaftPoolStoreOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  snapshot(): PoolSnapshot {
    return snapshotOf(this.replica.current);
  }

  subscribe(listener: (snapshot: PoolSnapshot) => void): () => void {
    return this.replica.subscribe(listener);
  }

  async propose(command: PoolCommand, options: ProposeOptions = {}): Promise<ApplyResult> {
    if (this.closed) throw stoppedError();
    options.signal?.throwIfAborted();
    const envelope = prepareEnvelope(command, options);
    const data = encoder.encode(JSON.stringify(envelope));
    const work = this.driver.propose(data).then(
      ({ result }) => {
        if (result === null) throw new StoreError('TIMEOUT', 'the write was applied before a restart; its outcome is not known here');
        return result;
      },
      (err: unknown) => {
        throw toStoreError(err);
      },
    );
    return awaitWithDeadline(work, { timeoutMs: options.timeoutMs ?? this.timeoutMs, signal: options.signal }, 'the write');
  }

  async linearizableSnapshot(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PoolSnapshot> {
    if (this.closed) throw stoppedError();
    const work = this.driver.readBarrier().then(
      () => this.snapshot(),
      (err: unknown) => {
        throw toStoreError(err);
      },
    );
    return awaitWithDeadline(work, { timeoutMs: options.timeoutMs ?? this.timeoutMs, signal: options.signal }, 'the read');
  }

  leader(): NodeId | null {
    return this.driver.node.leader;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.replica.clearSubscribers();
  }
}

/** The driver's errors in the store's vocabulary (StoreError codes the admin API maps). */
export function toStoreError(err: unknown): Error {
  if (err instanceof NotLeaderError) {
    return new StoreError('NOT_LEADER', err.message, err.leader === null ? {} : { leaderId: err.leader });
  }
  if (err instanceof DriverFailedError) return new StoreError('NODE_FAILED', err.message, { cause: err });
  if (err instanceof OutcomeUnknownError) return new StoreError('TIMEOUT', err.message, { cause: err });
  if (err instanceof OverloadedError) return new StoreError('OVERLOADED', err.message, { cause: err });
  if (err instanceof ProposalLostError) return new StoreError('NO_QUORUM', err.message, { cause: err });
  return err as Error;
}
