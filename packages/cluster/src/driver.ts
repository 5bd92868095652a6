// The Raft driver: runs one RawNode against real time, a durable storage, a transport
// and the application's state machine, following the Ready contract of @weldr/raft:
//
//   1. send the messages that may precede the write (the leader's appends: thesis
//      §10.2.1, the leader writes its log in parallel with replicating it) — except
//      bare commit notices in a Ready that answers writers here: those leave at the end
//      of the event-loop turn, after the answers (deferSend),
//   2. start the write of the Ready's snapshot, entries and hard state (one batch,
//      synced when Ready.mustSync says so),
//   3. apply the committed entries meanwhile and answer their proposers (they are
//      committed: durable on a quorum, which a leader counts itself in only once its
//      own write is done); a snapshot is restored only after the write,
//   4. once the write is durable (synced Readies only), send the other messages —
//      acknowledgements and votes promise what was written,
//   5. release linearizable reads whose index is applied, and advance.
//
// The state machine's own writes go through the same ordered write queue as the
// log's (LevelRaftStorage.write), after the write of the entries they were applied
// from, so what is on disk never has the pool ahead of the log.
//
// Every call into the RawNode happens while no Ready is outstanding: ticks, peer
// messages, proposals and read requests that arrive during a disk write wait in a
// queue and run, in arrival order, right after advance() — each after the ticks that
// were due when it arrived. The core thus never sees input between ready() and
// advance(), which keeps its reasoning that of the simulator's.
//
// Time: the tick is derived from a clock that counts suspended time (clock.ts) and is
// caught up before anything acts on the lease — a late timer, a paused process or a
// suspended host counts every missed tick, so a stale leader can never believe in a
// lease that has run out (packages/raft/README).
//
// Failure: if a write to the data directory fails, the state machine cannot apply, or a
// listener throws inside the loop, the driver stops for good (fail()): it gives up every
// role, answers every waiting caller, sends and acknowledges nothing more, and reports
// the failure once through onFatal so that the process can exit. Carrying on would let
// a later write land after a torn one, or leave a node that looks alive but is not.
//
// Bounds: requests queued behind a disk write, peer messages queued likewise, and reads
// waiting for their index are all bounded; the excess fails at once with
// OverloadedError (retryable) and is counted in stats().
import { randomBytes } from 'node:crypto';
import {
  mayPrecedePersistence,
  RawNode,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type PersistentStorage,
  type Ready,
  type Role,
  type Snapshot,
  type StorageUpdate,
  type Transport,
} from '@weldr/raft';
import { SuspendAwareClock } from './clock.js';

/**
 * What the driver needs of its durable storage (LevelRaftStorage; a recording double in
 * tests): the core's reads, plus the writes the loop issues.
 */
export interface DriverStorage extends PersistentStorage {
  /**
   * One atomic write of a Ready's snapshot, entries and hard state, in order with every
   * write issued before; synced unless `sync` is false (a commit-only change, which a
   * crash may lose). Resolves once done (durable, when synced).
   */
  save(update: StorageUpdate, options?: { readonly sync?: boolean }): Promise<void>;
  /** Record the application's snapshot at `index`; the disk write may finish later. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot;
  /** Discard entries up to `index`; the disk write may finish later. */
  compact(index: number): void;
  /** Resolves when every write issued so far is durable; rejects if any failed. */
  flush(): Promise<void>;
  /** `listener` hears of the first failed write, including background ones (createSnapshot, compact). */
  onFailure?(listener: (err: Error) => void): void;
}

/** What the driver applies committed entries to. */
export interface ReplicatedStateMachine<R> {
  /** The last index whose effect is durable in the application's own storage. */
  readonly appliedIndex: number;
  /**
   * Apply committed entries (every type, in order; no-ops and conf changes advance the
   * index). One result per entry. May answer at once (an array) and write its own state
   * later, ordered after every storage write issued before the call.
   */
  apply(entries: readonly Entry[]): R[] | Promise<R[]>;
  /** Replace the state with a snapshot's. */
  restore(snapshot: Snapshot): Promise<void>;
  /** The state at appliedIndex, serialized for a Raft snapshot. */
  snapshotData(): Uint8Array;
}

export interface DriverLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Why the driver stopped for good. */
export type DriverFailureKind =
  /** A write to the data directory failed (disk full, read-only file system, I/O error). */
  | 'storage'
  /** The state machine could not apply committed entries or restore a snapshot. */
  | 'apply'
  /** A role listener or pool subscriber threw inside the loop. */
  | 'listener'
  /** Anything else that escaped the loop (a bug). */
  | 'internal';

export interface DriverFailure {
  readonly kind: DriverFailureKind;
  readonly error: Error;
}

/** Counters of work the driver refused or dropped (exposed as metrics). */
export interface DriverStats {
  /** Proposals refused because the request queue was full. */
  readonly proposalsRejected: number;
  /** Linearizable reads refused: request queue or pending reads full. */
  readonly readsRejected: number;
  /** Reads failed because they outlived readTimeoutMs. */
  readonly readsExpired: number;
  /** Peer messages dropped because the message queue was full (Raft tolerates loss). */
  readonly messagesDropped: number;
  /** Requests and messages waiting for the current disk write. */
  readonly queued: number;
  /** Reads waiting for their read index or for it to be applied. */
  readonly pendingReads: number;
  /** Snapshots this node took of its state (compaction) and installed from a leader. */
  readonly snapshotsTaken: number;
  readonly snapshotsInstalled: number;
  /** Proposals made on this node (the leader's writes): outcomes and time to apply. */
  readonly proposals: ProposalStatsView;
}

/** Upper bounds (seconds) of the propose → applied histogram. */
export const PROPOSAL_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface ProposalStatsView {
  /** Proposals applied here (resolved). */
  readonly applied: number;
  /** Proposals that failed: refused (not the leader, overloaded), lost, or outcome unknown. */
  readonly failed: number;
  /** In flight now. */
  readonly pending: number;
  /** Seconds from propose() to applied, applied proposals only: cumulative bucket counts per PROPOSAL_BUCKETS, then sum and count. */
  readonly buckets: readonly number[];
  readonly sum: number;
}

/** Counts proposals and times them from propose() to applied: plain numbers, read at scrape time. */
class ProposalStats {
  applied = 0;
  failed = 0;
  pending = 0;
  sum = 0;
  private readonly counts = new Array<number>(PROPOSAL_BUCKETS.length).fill(0);

  track<T>(now: () => number, work: Promise<T>): Promise<T> {
    const at = now();
    this.pending++;
    return work.then(
      (value) => {
        this.pending--;
        this.applied++;
        const seconds = Math.max(0, now() - at) / 1000;
        this.sum += seconds;
        const i = PROPOSAL_BUCKETS.findIndex((b) => seconds <= b);
        if (i >= 0) this.counts[i]!++;
        return value;
      },
      (err: unknown) => {
        this.pending--;
        this.failed++;
        throw err;
      },
    );
  }

  view(): ProposalStatsView {
    let acc = 0;
    return { applied: this.applied, failed: this.failed, pending: this.pending, buckets: this.counts.map((c) => (acc += c)), sum: this.sum };
  }
}

export interface RaftDriverOptions<R> {
  readonly id: NodeId;
  readonly storage: DriverStorage;
  readonly app: ReplicatedStateMachine<R>;
  readonly log: DriverLogger;
  /** Heartbeat interval = one tick. Default 50 ms. */
  readonly tickMs?: number;
  /** Election timeout in ticks, randomized to [E, 2E). Default 10 (500 ms … 1 s). */
  readonly electionTick?: number;
  /** False holds this node's own campaigns back (RaftConfig.mayCampaign): a new cluster's seed that has not reached every seed. */
  readonly mayCampaign?: () => boolean;
  /**
   * Take a snapshot every this many applied entries at most. Default 1000. A snapshot
   * costs in proportion to the state's size (10,000 servers: tens of ms, synchronous), so
   * it also waits until the entries applied since the last one add up to at least
   * `snapshotLogRatio` × that snapshot's size: the cost per write stays bounded as the
   * pool grows, and the log kept between snapshots stays near the state's own size.
   */
  readonly snapshotEvery?: number;
  /** See snapshotEvery. Default 1; 0 snapshots every snapshotEvery entries whatever the state's size. */
  readonly snapshotLogRatio?: number;
  /** Entries kept behind a snapshot for slow followers. Default 200. */
  readonly snapshotKeep?: number;
  /**
   * Milliseconds for ticks, read ages and the lease; injected in tests. Default: a
   * SuspendAwareClock (performance.now plus time the host spent suspended).
   */
  readonly now?: () => number;
  readonly random?: () => number;
  /** Start a timer that ticks every tickMs (default true; deterministic tests drive tick() themselves). */
  readonly timer?: boolean;
  /** Proposals, read requests and transfers that may wait behind a disk write. Default 1024. */
  readonly maxQueuedRequests?: number;
  /** Peer messages that may wait behind a disk write; more are dropped. Default 4096. */
  readonly maxQueuedMessages?: number;
  /** Linearizable reads in flight (waiting for their index or its apply). Default 1024. */
  readonly maxPendingReads?: number;
  /** A read not released after this long fails (retryable). Default 30 000 ms. */
  readonly readTimeoutMs?: number;
  /**
   * Called once when the driver stops for good (see fail()); the embedder decides what
   * to do — the node exits. Without it the failure is logged at error level.
   */
  readonly onFatal?: (failure: DriverFailure) => void;
}

/** A write or read this node cannot serve: not the leader (leader id if known), or stopped. */
export class NotLeaderError extends Error {
  constructor(
    readonly leader: NodeId | null,
    message = leader === null ? 'no leader is known' : `not the leader; the leader is ${leader}`,
  ) {
    super(message);
    this.name = 'NotLeaderError';
  }
}

/** The outcome of a proposal is unknown: it may or may not be applied. */
export class OutcomeUnknownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutcomeUnknownError';
  }
}

/** A membership change was refused because another one is not yet applied (thesis §4.1: one at a time). */
export class ConfChangePendingError extends Error {
  constructor(message = 'another membership change is in flight') {
    super(message);
    this.name = 'ConfChangePendingError';
  }
}

/** The core refused a membership change as invalid against its current configuration. */
export class InvalidConfChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidConfChangeError';
  }
}

/** The proposal was certainly not applied (another leader's entry took its index). */
export class ProposalLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProposalLostError';
  }
}

/** Refused for lack of room (a queue or the pending reads are full); nothing was done: retry later. */
export class OverloadedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OverloadedError';
  }
}

/**
 * Thrown by the state machine when one of its own listeners (a pool subscriber) threw
 * while it applied: the driver stops with kind 'listener', not 'apply'.
 */
export class ListenerFailure extends Error {
  constructor(message: string, cause: unknown) {
    super(`${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ListenerFailure';
  }
}

/** The driver stopped after a fatal failure; the outcome of writes in flight is unknown. */
export class DriverFailedError extends OutcomeUnknownError {
  constructor(readonly failure: DriverFailure) {
    super(`the node stopped after a fatal failure (${failure.error.message}); the write may have been applied`);
    this.name = 'DriverFailedError';
  }
}
interface Waiter<R> {
  readonly term: number;
  resolve(v: { index: number; result: R }): void;
  reject(err: Error): void;
}

interface PendingRead {
  readonly context: string;
  /** When it was asked (now()); reads still pending readTimeoutMs later fail. */
  readonly at: number;
  index: number;
  resolve(): void;
  reject(err: Error): void;
}

export interface DriverStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly config: ConfState;
}

/** Work waiting for the outstanding Ready: a client request (refusable) or a peer message (droppable). */
interface Queued {
  readonly fn: () => void;
  /** When it arrived (now()): the ticks due before then are applied before it runs. */
  readonly at: number;
  /** Requests only: how to tell the caller it will not run. */
  readonly refuse?: (err: Error) => void;
}

const DEFAULTS = Object.freeze({ maxQueuedRequests: 1024, maxQueuedMessages: 4096, maxPendingReads: 1024, readTimeoutMs: 30_000 });

export class RaftDriver<R> {
  readonly node: RawNode;
  private transport: Transport | null = null;
  private readonly tickMs: number;
  private readonly now: () => number;
  private lastTickAt: number;
  private timer: NodeJS.Timeout | null = null;
  /** A Ready is between ready() and advance(). */
  private busy = false;
  private queue: Queued[] = [];
  private queuedRequests = 0;
  private queuedMessages = 0;
  private tickQueued = false;
  private readonly limits: { maxQueuedRequests: number; maxQueuedMessages: number; maxPendingReads: number; readTimeoutMs: number };
  private readonly counts = { proposalsRejected: 0, readsRejected: 0, readsExpired: 0, messagesDropped: 0, snapshotsTaken: 0, snapshotsInstalled: 0 };
  private readonly proposals = new ProposalStats();
  private readonly waiters = new Map<number, Waiter<R>>();
  private readonly reads = new Map<string, PendingRead>();
  /** Commit notices held back until this turn's answers are out (deferSend). */
  private deferred: Message[] = [];
  private deferTimer: NodeJS.Immediate | null = null;
  private readonly readPrefix = randomBytes(6).toString('hex');
  private readSeq = 0;
  private applied: number;
  /** Bytes of entry data applied since the last snapshot (taken or installed): see snapshotEvery. */
  private appliedBytesSinceSnapshot = 0;
  private stopped = false;
  private failed: DriverFailure | null = null;
  private lastRole: Role;
  private lastLeader: NodeId | null;
  private readonly roleListeners = new Set<(role: Role, leader: NodeId | null) => void>();

  private constructor(private readonly opts: RaftDriverOptions<R>) {
    this.tickMs = opts.tickMs ?? 50;
    if (opts.now !== undefined) this.now = opts.now;
    else {
      const clock = new SuspendAwareClock();
      this.now = () => clock.now();
    }
    this.limits = {
      maxQueuedRequests: positive('maxQueuedRequests', opts.maxQueuedRequests ?? DEFAULTS.maxQueuedRequests),
      maxQueuedMessages: positive('maxQueuedMessages', opts.maxQueuedMessages ?? DEFAULTS.maxQueuedMessages),
      maxPendingReads: positive('maxPendingReads', opts.maxPendingReads ?? DEFAULTS.maxPendingReads),
      readTimeoutMs: positive('readTimeoutMs', opts.readTimeoutMs ?? DEFAULTS.readTimeoutMs),
    };
    this.lastTickAt = this.now();
    this.applied = opts.app.appliedIndex;
    this.node = new RawNode({
      id: opts.id,
      storage: opts.storage,
      random: opts.random ?? Math.random,
      electionTick: opts.electionTick ?? 10,
      heartbeatTick: 1,
      // The lease is stated to followers in ms: they may tick at another rate.
      tickMs: this.tickMs,
      applied: this.applied,
      checkQuorum: true,
      preVote: true,
      ...(opts.mayCampaign === undefined ? {} : { mayCampaign: opts.mayCampaign }),
    });
    this.lastRole = this.node.role;
    this.lastLeader = this.node.leader;
    // A background write (snapshot, compaction) that fails is as fatal as a failed save.
    opts.storage.onFailure?.((err) => this.fail('storage', err));
  }

  /**
   * Build a driver over storage and an application that may have crashed between
   * persisting a snapshot and restoring it: the application catches up first.
   */
  static async create<R>(opts: RaftDriverOptions<R>): Promise<RaftDriver<R>> {
    const snap = opts.storage.snapshot();
    if (opts.app.appliedIndex < snap.metadata.index) await opts.app.restore(snap);
    if (opts.app.appliedIndex > opts.storage.lastIndex()) {
      throw new Error(`the state machine applied index ${opts.app.appliedIndex} is beyond the Raft log (last ${opts.storage.lastIndex()}): the data directory is inconsistent`);
    }
    return new RaftDriver(opts);
  }

  /** Start ticking and sending through `transport`. */
  start(transport: Transport): void {
    this.transport = transport;
    this.lastTickAt = this.now();
    if (this.opts.timer ?? true) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
    this.run(() => undefined);
  }

  /** Catch up the ticks owed to the clock and fail reads past their deadline (the timer's job). */
  tick(): void {
    if (this.busy) {
      // One queued tick is enough: it catches up every tick owed when it runs.
      if (this.tickQueued || this.stopped || this.failed !== null) return;
      this.tickQueued = true;
      this.queue.push({
        fn: () => {
          this.tickQueued = false;
          this.expireReads();
        },
        at: this.now(),
      });
      return;
    }
    this.run(() => this.expireReads());
  }

  /** A validated message from a peer. */
  receive(m: Message): void {
    this.runMessage(() => {
      this.node.step(m);
    });
  }

  /**
   * Evidence that the process of `leader`, leader of `term`, is gone (leader-death.ts):
   * the core waives the promise made to it and campaigns (RawNode.leaderGone). Resolves
   * with whether it did.
   */
  leaderGone(term: number, leader: NodeId): Promise<boolean> {
    return new Promise((resolve) => this.run(() => resolve(this.node.leaderGone(term, leader)), () => resolve(false)));
  }

  /** The transport could not reach `id`. */
  unreachable(id: NodeId): void {
    this.runMessage(() => this.node.reportUnreachable(id));
  }

  onRoleChange(listener: (role: Role, leader: NodeId | null) => void): () => void {
    this.roleListeners.add(listener);
    return () => this.roleListeners.delete(listener);
  }

  /**
   * True only while this node is the leader *and* holds its check-quorum lease, counted
   * with every tick owed to real time, and has applied its own term's first entry: the
   * test to pass before acting as the active node.
   */
  isActive(): boolean {
    if (this.stopped || this.failed !== null) return false;
    // Not before this leader has applied an entry of its own term (its no-op): only then
    // does its state include every write earlier leaders acknowledged.
    if (this.node.termAt(this.applied) !== this.node.term) return false;
    if (!this.busy) {
      // What the ticks produced (heartbeats, a step-down) goes out now, not at the next timer.
      if (this.catchUpTicks() > 0) void this.drain();
      return this.node.role === 'leader' && this.node.hasLease();
    }
    // A disk write is in flight: don't tick the core, count the owed ticks instead.
    const until = this.node.leaseValidUntil();
    if (until === null) return false;
    const owed = Math.floor((this.now() - this.lastTickAt) / this.tickMs);
    return this.node.currentTick() + owed < until;
  }

  /**
   * When (on the now() clock) this node's lease runs out unless a quorum acknowledges it
   * again; null while not active. Tick `until` falls at lastTickAt + (until - tick)·tickMs,
   * owed ticks included, so the answer holds for a process that stops right after asking.
   */
  leaseExpiresAt(): number | null {
    if (!this.isActive()) return null;
    const until = this.node.leaseValidUntil();
    if (until === null) return null;
    return this.lastTickAt + (until - this.node.currentTick()) * this.tickMs;
  }

  /** What the driver refused or dropped so far, and what waits now. */
  stats(): DriverStats {
    return { ...this.counts, queued: this.queue.length, pendingReads: this.reads.size, proposals: this.proposals.view() };
  }

  /** The storage the driver writes to (what is durable: its hard state, log and snapshot). */
  get storage(): DriverStorage {
    return this.opts.storage;
  }

  /** The failure that stopped the driver, if any. */
  get failure(): DriverFailure | null {
    return this.failed;
  }

  status(): DriverStatus {
    return {
      id: this.opts.id,
      role: this.node.role,
      leader: this.node.leader,
      term: this.node.term,
      commitIndex: this.node.commitIndex,
      appliedIndex: this.applied,
      lastIndex: this.node.lastIndex,
      config: this.node.config,
    };
  }

  /** Replicate `data`; resolves once it is applied here, with the application's result. */
  propose(data: Uint8Array): Promise<{ index: number; result: R }> {
    return this.proposals.track(this.now, this.proposeUntracked(data));
  }

  private proposeUntracked(data: Uint8Array): Promise<{ index: number; result: R }> {
    return new Promise((resolve, reject) => {
      this.run(
        () => {
          const res = this.node.propose(data);
          if (!res.ok) {
            reject(new NotLeaderError(res.leader, res.reason === 'notLeader' || res.reason === 'noLeader' ? undefined : `proposal refused: ${res.reason}`));
            return;
          }
          this.waiters.set(res.index, { term: res.term, resolve, reject });
        },
        reject,
        'proposal',
      );
    });
  }

  /**
   * Propose a membership change (one at a time, thesis §4.1); resolves once it is
   * applied here, with the application's result for the entry.
   */
  proposeConfChange(cc: ConfChange): Promise<{ index: number; result: R }> {
    return new Promise((resolve, reject) => {
      this.run(() => {
        const res = this.node.proposeConfChange(cc);
        if (!res.ok) {
          if (res.reason === 'confChangePending') reject(new ConfChangePendingError());
          else if (res.reason === 'invalidConfChange') reject(new InvalidConfChangeError(`${cc.type} ${cc.nodeId} is not a valid change of the configuration ${JSON.stringify(this.node.config)}`));
          else reject(new NotLeaderError(res.leader, res.reason === 'notLeader' || res.reason === 'noLeader' ? undefined : `membership change refused: ${res.reason}`));
          return;
        }
        this.waiters.set(res.index, { term: res.term, resolve, reject });
      }, reject, 'proposal');
    });
  }

  /** Resolves once this node has applied everything committed before the call (ReadIndex). */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.run(
        () => {
          if (this.reads.size >= this.limits.maxPendingReads) {
            this.counts.readsRejected++;
            reject(new OverloadedError(`${this.reads.size} linearizable reads are already waiting; retry shortly`));
            return;
          }
          const context = `${this.readPrefix}-${++this.readSeq}`;
          const res = this.node.readIndex(context);
          if (!res.ok) {
            reject(new NotLeaderError(res.leader));
            return;
          }
          this.reads.set(context, { context, at: this.now(), index: -1, resolve, reject });
        },
        reject,
        'read',
      );
    });
  }

  /** Hand leadership to `to` (thesis §3.10); the outcome shows in onRoleChange. */
  transferLeadership(to: NodeId): void {
    this.run(() => {
      this.node.transferLeadership(to);
    });
  }

  /**
   * Failover drills: abdicate at once, without a transfer, as if the quorum were lost
   * (RawNode.stepDown). Resolves with false when this node was not the leader.
   */
  stepDown(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.run(() => resolve(this.node.stepDown().ok), reject);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.flushDeferred();
    const stopping = new NotLeaderError(null, 'the node is stopping');
    this.rejectAll(new OutcomeUnknownError('the node is stopping; the write may still be applied'), stopping, stopping);
    // Let an in-flight write finish before the caller closes the database.
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    await this.opts.storage.flush().catch(() => undefined);
  }

  // ---- the loop --------------------------------------------------------------------

  /**
   * Run `fn` against the core now, or right after the outstanding Ready. A request
   * (`kind` set) that finds the queue full is refused with OverloadedError.
   */
  private run(fn: () => void, onRefused?: (err: Error) => void, kind?: 'proposal' | 'read'): void {
    if (this.stopped || this.failed !== null) {
      // Certainly not applied: the request never reaches the core.
      onRefused?.(new NotLeaderError(null, this.failed === null ? 'the node is stopped' : `the node stopped after a fatal failure (${this.failed.error.message})`));
      return;
    }
    if (this.busy) {
      if (this.queuedRequests >= this.limits.maxQueuedRequests) {
        if (kind === 'read') this.counts.readsRejected++;
        else if (kind === 'proposal') this.counts.proposalsRejected++;
        onRefused?.(new OverloadedError(`${this.queuedRequests} requests are already waiting for the disk; retry shortly`));
        return;
      }
      this.queuedRequests++;
      this.queue.push({ fn, refuse: onRefused ?? (() => undefined), at: this.now() });
      return;
    }
    this.catchUpTicks();
    this.guarded(fn);
    void this.drain();
  }

  /** Run a peer message now, or queue it; when the queue is full it is dropped (Raft tolerates loss). */
  private runMessage(fn: () => void): void {
    if (this.stopped || this.failed !== null) return;
    if (this.busy) {
      if (this.queuedMessages >= this.limits.maxQueuedMessages) {
        this.counts.messagesDropped++;
        return;
      }
      this.queuedMessages++;
      this.queue.push({ fn, at: this.now() });
      return;
    }
    this.catchUpTicks();
    this.guarded(fn);
    void this.drain();
  }

  /** Input to the core outside drain(): anything it throws stops the driver like a loop failure. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail('internal', err);
    }
  }

  /** Ticks owed to real time up to `now` (default: the clock), applied now; returns how many. */
  private catchUpTicks(now: number = this.now()): number {
    let n = 0;
    while (now - this.lastTickAt >= this.tickMs) {
      this.node.tick();
      this.lastTickAt += this.tickMs;
      n++;
    }
    return n;
  }

  private async drain(): Promise<void> {
    if (this.busy || this.failed !== null) return;
    this.busy = true;
    try {
      for (;;) {
        if (this.failed !== null || this.stopped) break;
        if (this.node.hasReady()) {
          await this.handle(this.node.ready());
          continue;
        }
        if (this.queue.length === 0) break;
        const batch = this.queue;
        this.queue = [];
        this.queuedRequests = 0;
        this.queuedMessages = 0;
        this.tickQueued = false;
        // Each waited behind the disk write: it runs after the ticks that were due when it
        // arrived, and before those that fell due while it waited. A leader whose fsync
        // stalled thus counts the acknowledgements that came in meanwhile before its
        // check-quorum tick looks for them (no step-down for a slow disk), and a follower
        // keeps its promise from the moment the leader's round arrived.
        for (const q of batch) {
          this.catchUpTicks(q.at);
          q.fn();
        }
        this.catchUpTicks();
      }
    } catch (err) {
      this.fail(err instanceof LoopFailure ? err.kind : 'internal', err instanceof LoopFailure ? err.cause : err);
    } finally {
      this.busy = false;
    }
  }

  private async handle(rd: Ready): Promise<void> {
    const { storage, app, log } = this.opts;
    // 1. The leader's appends and heartbeats go now: it writes its log meanwhile (thesis
    // §10.2.1) and counts its own copy only once that write is done (advance below).
    let after: Message[] = [];
    if (rd.messages.length > 0) {
      const now: Message[] = [];
      for (const m of rd.messages) (mayPrecedePersistence(m) ? now : after).push(m);
      if (now.length > 0) {
        if (this.answersHere(rd) && now.every(isCommitNotice)) this.deferSend(now);
        else this.send(now);
      }
    }
    // 2. Start the write.
    let saved: Promise<void> | undefined;
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
      saved = storage.save({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState }, { sync: rd.mustSync });
      // A write nobody waits for (commit-only) still stops the driver if it fails: the
      // storage reports it through onFailure.
      if (!rd.mustSync) saved.catch(() => undefined);
    }
    if (rd.snapshot !== undefined) {
      // A snapshot replaces the state machine's state: only once it is on disk.
      await step('storage', () => saved!);
      if (this.failed !== null) return;
      const snap = rd.snapshot;
      await step('apply', () => app.restore(snap));
      this.applied = rd.snapshot.metadata.index;
      this.appliedBytesSinceSnapshot = 0;
      this.counts.snapshotsInstalled++;
      log.info({ index: this.applied, term: rd.snapshot.metadata.term }, 'raft snapshot installed');
      // Waiters at or below the snapshot cannot learn their result: it is in the snapshot.
      for (const [index, w] of this.waiters) {
        if (index <= this.applied) {
          this.waiters.delete(index);
          w.reject(new OutcomeUnknownError('a snapshot replaced the log; the write may have been applied'));
        }
      }
    }
    // 3. Committed entries are durable on a quorum: apply them while our write runs.
    if (rd.committedEntries.length > 0) {
      const applied = stepSync('apply', () => app.apply(rd.committedEntries));
      const results = Array.isArray(applied) ? applied : await step('apply', () => applied);
      for (let i = 0; i < rd.committedEntries.length; i++) {
        const e = rd.committedEntries[i]!;
        const w = this.waiters.get(e.index);
        if (w === undefined) continue;
        this.waiters.delete(e.index);
        if (e.term === w.term) w.resolve({ index: e.index, result: results[i]! });
        else w.reject(new ProposalLostError(`another leader's entry took index ${e.index}; the write was not applied`));
      }
      this.applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
      for (const e of rd.committedEntries) this.appliedBytesSinceSnapshot += e.data.byteLength;
    }
    // 4. What promises durable state waits for the disk.
    if (rd.mustSync && saved !== undefined && rd.snapshot === undefined) await step('storage', () => saved);
    // A background write may have failed meanwhile: then nothing leaves this node.
    if (this.failed !== null) return;
    if (after.length > 0) this.send(after);
    if (rd.softState !== undefined) this.roleChanged(rd.softState.role, rd.softState.leader);
    // 5.
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context);
      if (r !== undefined) r.index = rs.index;
    }
    this.releaseReads();
    this.node.advance(rd);
    this.maybeSnapshot();
  }

  /** Messages out, after any deferred ones (each peer gets its messages in the order the core made them). */
  private send(messages: readonly Message[]): void {
    if (this.deferred.length > 0) this.flushDeferred();
    this.transport?.send(messages);
  }

  /**
   * A Ready that only tells the followers the new commit index, while it answers writers
   * here: the answers go first. Sending wakes the followers, which then apply the entries
   * too; on a busy host they take the CPU the HTTP answer needs. The notices leave at the
   * end of this event-loop turn (setImmediate), or before anything else is sent. Sending
   * later is always allowed (a message may be delayed anyway); the commit index reaches
   * the followers a few microseconds later, off the writer's path.
   */
  private deferSend(messages: readonly Message[]): void {
    this.deferred.push(...messages);
    this.deferTimer ??= setImmediate(() => {
      this.deferTimer = null;
      this.flushDeferred();
    });
  }

  private flushDeferred(): void {
    if (this.deferTimer !== null) clearImmediate(this.deferTimer);
    this.deferTimer = null;
    const out = this.deferred;
    this.deferred = [];
    if (out.length > 0 && this.failed === null && !this.stopped) this.transport?.send(out);
  }

  /** Whether applying this Ready answers a proposal made here. */
  private answersHere(rd: Ready): boolean {
    if (this.waiters.size === 0) return false;
    for (const e of rd.committedEntries) if (this.waiters.has(e.index)) return true;
    return false;
  }

  /**
   * A read whose request or answer was lost (Raft messages may be dropped) would wait
   * forever, and so would one whose index this node cannot reach (cut off from the
   * leader after the index came back); its caller has long given up. Fail both kinds
   * so the map cannot grow.
   */
  private expireReads(): void {
    if (this.reads.size === 0) return;
    const cutoff = this.now() - this.limits.readTimeoutMs;
    for (const [ctx, r] of this.reads) {
      if (r.at > cutoff) continue;
      this.reads.delete(ctx);
      this.counts.readsExpired++;
      r.reject(new NotLeaderError(this.node.leader, r.index < 0 ? 'the read was not confirmed in time; retry' : `the read's index ${r.index} was not applied in time; retry`));
    }
  }

  private releaseReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index >= 0 && r.index <= this.applied) {
        this.reads.delete(ctx);
        r.resolve();
      }
    }
  }

  private roleChanged(role: Role, leader: NodeId | null): void {
    if (role === this.lastRole && leader === this.lastLeader) return;
    const leaderChanged = leader !== this.lastLeader;
    this.lastRole = role;
    this.lastLeader = leader;
    this.opts.log.info({ role, leader, term: this.node.term }, `raft: ${role}${leader === null ? '' : ` (leader ${leader})`}`);
    if (leaderChanged) {
      // Reads not yet answered were asked of (or by) the old leader, which drops them
      // with its term: fail them now, retryable, instead of at the caller's timeout.
      // Reads that have their index stay: it is still a valid linearization point, and
      // they are released once it is applied (or expire).
      for (const [ctx, r] of this.reads) {
        if (r.index >= 0) continue;
        this.reads.delete(ctx);
        r.reject(new NotLeaderError(leader, 'leadership changed while reading; retry'));
      }
    }
    for (const l of [...this.roleListeners]) {
      try {
        l(role, leader);
      } catch (err) {
        throw new LoopFailure('listener', err);
      }
    }
  }

  private maybeSnapshot(): void {
    const { storage, app } = this.opts;
    const every = this.opts.snapshotEvery ?? 1000;
    const keep = this.opts.snapshotKeep ?? 200;
    const last = storage.snapshot();
    const since = this.applied - last.metadata.index;
    if (since < every || app.appliedIndex !== this.applied) return;
    // A large state waits for a log as large as its last snapshot (bounded: 100 × every).
    const ratio = this.opts.snapshotLogRatio ?? 1;
    if (this.appliedBytesSinceSnapshot < ratio * last.data.byteLength && since < 100 * every) return;
    const conf = this.node.confStateAt(this.applied);
    if (conf === undefined) return;
    storage.createSnapshot(this.applied, conf, app.snapshotData());
    this.appliedBytesSinceSnapshot = 0;
    this.counts.snapshotsTaken++;
    const upTo = this.applied - keep;
    if (upTo >= storage.firstIndex()) storage.compact(upTo);
    this.opts.log.debug({ index: this.applied }, 'raft snapshot taken');
  }

  /**
   * Stop for good: nothing more is sent, acknowledged or applied. Every role is given up
   * (isActive() is false from here on, listeners hear 'follower'), every caller waiting
   * is answered, then onFatal reports the failure once.
   */
  private fail(kind: DriverFailureKind, cause: unknown): void {
    if (this.failed !== null) return;
    const error = cause instanceof Error ? cause : new Error(String(cause));
    const failure: DriverFailure = { kind, error };
    this.failed = failure;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    // Proposals in the log: outcome unknown. Reads, and requests still queued (they never
    // reached the core): retryable elsewhere.
    const gone = new NotLeaderError(null, `the node stopped after a fatal failure (${error.message})`);
    this.rejectAll(new DriverFailedError(failure), gone, gone);
    if (this.lastRole !== 'follower' || this.lastLeader !== null) {
      this.lastRole = 'follower';
      this.lastLeader = null;
      for (const l of [...this.roleListeners]) {
        try {
          l('follower', null);
        } catch {
          // Already failing: a listener that throws again cannot change the outcome.
        }
      }
    }
    if (this.opts.onFatal !== undefined) this.opts.onFatal(failure);
    else this.opts.log.error({ kind, err: error.message }, `raft driver stopped (${kind}): ${error.message}`);
  }

  /** Answer everything that waits: proposals in the log, reads, and requests still queued. */
  private rejectAll(proposalErr: Error, readErr: Error, queuedErr: Error): void {
    for (const w of this.waiters.values()) w.reject(proposalErr);
    this.waiters.clear();
    for (const r of this.reads.values()) r.reject(readErr);
    this.reads.clear();
    const queued = this.queue;
    this.queue = [];
    this.queuedRequests = 0;
    this.queuedMessages = 0;
    this.tickQueued = false;
    for (const q of queued) q.refuse?.(queuedErr);
  }
}

/** A leader's append that carries no entries: it only moves the follower's commit index (or probes). */
function isCommitNotice(m: Message): boolean {
  return m.type === 'MsgApp' && (m.entries === undefined || m.entries.length === 0);
}

/** A failure inside the loop, tagged with the step that failed. */
class LoopFailure extends Error {
  constructor(
    readonly kind: DriverFailureKind,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Run one synchronous step of handle(), tagging a failure with what was being done. */
function stepSync<T>(kind: DriverFailureKind, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new LoopFailure(err instanceof ListenerFailure ? 'listener' : kind, err);
  }
}

/** Await one step of handle(), tagging a failure with what was being done. */
async function step<T>(kind: DriverFailureKind, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new LoopFailure(err instanceof ListenerFailure ? 'listener' : kind, err);
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`raft driver: ${name} must be a positive integer, got ${v}`);
  return v;
}
