// The Raft driver: runs one RawNode against real time, a durable storage, a transport
// and the application's state machine, following the Ready contract of @weldr/raft:
//
//   1. persist the Ready's snapshot, entries and hard state (one synced batch),
//   2. only then send its messages,
//   3. restore the snapshot / apply the committed entries, in order,
//   4. release linearizable reads whose index is applied,
//   5. advance.
//
// Every call into the RawNode happens while no Ready is outstanding: ticks, peer
// messages, proposals and read requests that arrive during a disk write wait in a
// queue and run, in arrival order, right after advance(). The core thus never sees
// input between ready() and advance(), which keeps its reasoning that of the
// simulator's.
//
// Time: the tick is derived from the monotonic clock and caught up before anything
// acts on the lease — a late timer or a paused process counts every missed tick, so
// a stale leader can never believe in a lease that has run out (packages/raft/README).
import { randomBytes } from 'node:crypto';
import {
  RawNode,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Snapshot,
  type Transport,
} from '@weldr/raft';
import type { LevelRaftStorage } from '@weldr/store';

/** What the driver applies committed entries to. */
export interface ReplicatedStateMachine<R> {
  /** The last index whose effect is durable in the application's own storage. */
  readonly appliedIndex: number;
  /** Apply committed entries (every type, in order; no-ops and conf changes advance the index). One result per entry. */
  apply(entries: readonly Entry[]): Promise<R[]>;
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

export interface RaftDriverOptions<R> {
  readonly id: NodeId;
  readonly storage: LevelRaftStorage;
  readonly app: ReplicatedStateMachine<R>;
  readonly log: DriverLogger;
  /** Heartbeat interval = one tick. Default 50 ms. */
  readonly tickMs?: number;
  /** Election timeout in ticks, randomized to [E, 2E). Default 10 (500 ms … 1 s). */
  readonly electionTick?: number;
  /** Take a snapshot every this many applied entries. Default 1000. */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot for slow followers. Default 200. */
  readonly snapshotKeep?: number;
  /** Injected for tests; default performance.now and Math.random. */
  readonly now?: () => number;
  readonly random?: () => number;
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

interface Waiter<R> {
  readonly term: number;
  resolve(v: { index: number; result: R }): void;
  reject(err: Error): void;
}

interface PendingRead {
  readonly context: string;
  /** When it was asked (now()); unanswered reads are dropped after READ_EXPIRY_MS. */
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

const READ_EXPIRY_MS = 30_000;

export class RaftDriver<R> {
  readonly node: RawNode;
  private transport: Transport | null = null;
  private readonly tickMs: number;
  private readonly now: () => number;
  private lastTickAt: number;
  private timer: NodeJS.Timeout | null = null;
  /** A Ready is between ready() and advance(). */
  private busy = false;
  private readonly queue: (() => void)[] = [];
  private readonly waiters = new Map<number, Waiter<R>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly readPrefix = randomBytes(6).toString('hex');
  private readSeq = 0;
  private applied: number;
  private stopped = false;
  private failed: Error | null = null;
  private lastRole: Role;
  private lastLeader: NodeId | null;
  private readonly roleListeners = new Set<(role: Role, leader: NodeId | null) => void>();

  private constructor(private readonly opts: RaftDriverOptions<R>) {
    this.tickMs = opts.tickMs ?? 50;
    this.now = opts.now ?? (() => performance.now());
    this.lastTickAt = this.now();
    this.applied = opts.app.appliedIndex;
    this.node = new RawNode({
      id: opts.id,
      storage: opts.storage,
      random: opts.random ?? Math.random,
      electionTick: opts.electionTick ?? 10,
      heartbeatTick: 1,
      applied: this.applied,
      checkQuorum: true,
      preVote: true,
    });
    this.lastRole = this.node.role;
    this.lastLeader = this.node.leader;
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
    this.timer = setInterval(() => this.run(() => this.expireReads()), this.tickMs);
    this.timer.unref();
    this.run(() => undefined);
  }

  /** A validated message from a peer. */
  receive(m: Message): void {
    this.run(() => {
      this.node.step(m);
    });
  }

  /** The transport could not reach `id`. */
  unreachable(id: NodeId): void {
    this.run(() => this.node.reportUnreachable(id));
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
    return new Promise((resolve, reject) => {
      this.run(() => {
        const res = this.node.propose(data);
        if (!res.ok) {
          reject(new NotLeaderError(res.leader, res.reason === 'notLeader' || res.reason === 'noLeader' ? undefined : `proposal refused: ${res.reason}`));
          return;
        }
        this.waiters.set(res.index, { term: res.term, resolve, reject });
      }, reject);
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
      }, reject);
    });
  }

  /** Resolves once this node has applied everything committed before the call (ReadIndex). */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.run(() => {
        const context = `${this.readPrefix}-${++this.readSeq}`;
        const res = this.node.readIndex(context);
        if (!res.ok) {
          reject(new NotLeaderError(res.leader));
          return;
        }
        this.reads.set(context, { context, at: this.now(), index: -1, resolve, reject });
      }, reject);
    });
  }

  /** Hand leadership to `to` (thesis §3.10); the outcome shows in onRoleChange. */
  transferLeadership(to: NodeId): void {
    this.run(() => {
      this.node.transferLeadership(to);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const err = new OutcomeUnknownError('the node is stopping; the write may still be applied');
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    for (const r of this.reads.values()) r.reject(new NotLeaderError(null, 'the node is stopping'));
    this.reads.clear();
    // Let an in-flight write finish before the caller closes the database.
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    await this.opts.storage.flush().catch(() => undefined);
  }

  // ---- the loop --------------------------------------------------------------------

  /** Run `fn` against the core now, or right after the outstanding Ready. */
  private run(fn: () => void, onRefused?: (err: Error) => void): void {
    if (this.stopped || this.failed !== null) {
      onRefused?.(this.failed ?? new NotLeaderError(null, 'the node is stopped'));
      return;
    }
    if (this.busy) {
      this.queue.push(fn);
      return;
    }
    this.catchUpTicks();
    fn();
    void this.drain();
  }

  /** Ticks owed to real time, applied now; returns how many. */
  private catchUpTicks(): number {
    const now = this.now();
    let n = 0;
    while (now - this.lastTickAt >= this.tickMs) {
      this.node.tick();
      this.lastTickAt += this.tickMs;
      n++;
    }
    return n;
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (;;) {
        if (this.node.hasReady()) {
          await this.handle(this.node.ready());
          continue;
        }
        if (this.queue.length === 0) break;
        this.catchUpTicks();
        for (const fn of this.queue.splice(0)) fn();
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.busy = false;
    }
  }

  private async handle(rd: Ready): Promise<void> {
    const { storage, app, log } = this.opts;
    // 1. durable before anything depends on it
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
      await storage.save({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
    }
    // 2.
    if (rd.messages.length > 0) this.transport?.send(rd.messages);
    if (rd.softState !== undefined) this.roleChanged(rd.softState.role, rd.softState.leader);
    // 3.
    if (rd.snapshot !== undefined) {
      await app.restore(rd.snapshot);
      this.applied = rd.snapshot.metadata.index;
      log.info({ index: this.applied, term: rd.snapshot.metadata.term }, 'raft snapshot installed');
      // Waiters at or below the snapshot cannot learn their result: it is in the snapshot.
      for (const [index, w] of this.waiters) {
        if (index <= this.applied) {
          this.waiters.delete(index);
          w.reject(new OutcomeUnknownError('a snapshot replaced the log; the write may have been applied'));
        }
      }
    }
    if (rd.committedEntries.length > 0) {
      const results = await app.apply(rd.committedEntries);
      for (let i = 0; i < rd.committedEntries.length; i++) {
        const e = rd.committedEntries[i]!;
        const w = this.waiters.get(e.index);
        if (w === undefined) continue;
        this.waiters.delete(e.index);
        if (e.term === w.term) w.resolve({ index: e.index, result: results[i]! });
        else w.reject(new ProposalLostError(`another leader's entry took index ${e.index}; the write was not applied`));
      }
      this.applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
    }
    // 4.
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context);
      if (r !== undefined) r.index = rs.index;
    }
    this.releaseReads();
    // 5.
    this.node.advance(rd);
    this.maybeSnapshot();
  }

  /**
   * A read whose request or answer was lost (Raft messages may be dropped) would wait
   * forever; its caller has long given up. Fail it so the map cannot grow.
   */
  private expireReads(): void {
    if (this.reads.size === 0) return;
    const cutoff = this.now() - READ_EXPIRY_MS;
    for (const [ctx, r] of this.reads) {
      if (r.index >= 0 || r.at > cutoff) continue;
      this.reads.delete(ctx);
      r.reject(new NotLeaderError(this.node.leader, 'the read was not confirmed in time; retry'));
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
      for (const [ctx, r] of this.reads) {
        if (r.index >= 0) continue;
        this.reads.delete(ctx);
        r.reject(new NotLeaderError(leader, 'leadership changed while reading; retry'));
      }
    }
    for (const l of this.roleListeners) l(role, leader);
  }

  private maybeSnapshot(): void {
    const { storage, app } = this.opts;
    const every = this.opts.snapshotEvery ?? 1000;
    const keep = this.opts.snapshotKeep ?? 200;
    const snapIndex = storage.snapshot().metadata.index;
    if (this.applied - snapIndex < every || app.appliedIndex !== this.applied) return;
    const conf = this.node.confStateAt(this.applied);
    if (conf === undefined) return;
    storage.createSnapshot(this.applied, conf, app.snapshotData());
    const upTo = this.applied - keep;
    if (upTo >= storage.firstIndex()) storage.compact(upTo);
    this.opts.log.debug({ index: this.applied }, 'raft snapshot taken');
  }

  private fail(err: Error): void {
    this.failed = err;
    this.opts.log.error({ err: err.message }, 'raft driver stopped: a write to the data directory failed');
    const e = new OutcomeUnknownError(`the node failed: ${err.message}`);
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
    for (const r of this.reads.values()) r.reject(e);
    this.reads.clear();
    for (const l of this.roleListeners) l('follower', null);
  }
}
