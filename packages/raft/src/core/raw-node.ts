import { hardStateEqual } from '../storage.js';
import type {
  ConfChange,
  ConfState,
  HardState,
  NodeId,
  ProposeResult,
  Ready,
  RequestResult,
  Role,
  SoftState,
} from '../types.js';
import type { RaftConfig } from './config.js';
import type { ProgressState } from './progress.js';
import { Raft } from './raft.js';
import { validateMessage } from './validate.js';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly role: Role;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly tick: number;
  readonly leaseValidUntil: number | null;
  readonly leadTransferee: NodeId | null;
  readonly config: ConfState;
  /** Per-member replication progress; only on the leader. */
  readonly progress?: Readonly<Record<NodeId, ProgressStatus>>;
}

function softEqual(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

/**
 * The driver's handle on one Raft server (etcd's RawNode). Single-threaded:
 * call tick/step/propose/… freely, then ready() → persist → send → apply →
 * advance(ready). Only one Ready is outstanding at a time.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding = false;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advance the logical clock by one tick (the driver calls this every heartbeat interval / heartbeatTick). */
  tick(): void {
    this.raft.tick();
  }

  /**
   * Feed one message from a peer. Validates it first: malformed, misaddressed,
   * stale or out-of-place messages are dropped and false is returned; peer
   * input never throws.
   */
  step(m: unknown): boolean {
    const v = validateMessage(m);
    if (v instanceof Error) return false;
    return this.raft.step(v);
  }

  /** Propose one command. Leader only; see ProposeResult for refusals. */
  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose([data]);
  }

  /** Propose several commands as one batch (consecutive indexes, shared MsgApps). */
  proposeBatch(data: readonly Uint8Array[]): ProposeResult {
    return this.raft.propose(data);
  }

  /** Propose one membership change; refused while a previous change is not yet applied. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(cc);
  }

  /** Request a linearizable read point; the answer is a ReadState with this context in a later Ready. */
  readIndex(context: string): RequestResult {
    return this.raft.readIndex(context);
  }

  /** Hand leadership to `to` (thesis §3.10). Proposals are refused until it completes or aborts. */
  transferLeadership(to: NodeId): RequestResult {
    return this.raft.transferLeadership(to);
  }

  /** Leader only: abdicate at once, as if the quorum were lost (no transfer; see Raft.stepDown). */
  stepDown(): RequestResult {
    return this.raft.stepDown();
  }

  /** Start an election now (with pre-vote when enabled). Refused inside a leader's lease. */
  campaign(): RequestResult {
    return this.raft.campaignNow();
  }

  /**
   * The driver has evidence that the process of `leaderId`, leader of `term`, is gone
   * (README, "Fast failover"): this follower waives the promise it made to that leader
   * in that term — nothing else — and campaigns soon (pre-vote still on). Returns
   * whether the promise was waived; false for evidence about another leader or term,
   * a promise made before a restart, or evidence already acted on.
   */
  leaderGone(term: number, leaderId: NodeId): boolean {
    return this.raft.leaderGone(term, leaderId);
  }

  /** Tell the leader its transport failed to reach `id` (a closed connection, a send error). */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /** See Raft.leaseValidUntil: this server's tick until which its leader lease holds, or null. */
  leaseValidUntil(): number | null {
    return this.raft.leaseValidUntil();
  }

  hasLease(): boolean {
    return this.raft.leaseValidUntil() !== null;
  }

  /** This server's tick count (its logical clock). */
  currentTick(): number {
    return this.raft.tickCount;
  }

  /** The configuration in force at `index`; use it for a snapshot's ConfState. */
  confStateAt(index: number): ConfState | undefined {
    return this.raft.membership.at(index);
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.unstable.entries.length > 0 ||
      r.log.unstable.snapshot !== undefined ||
      r.log.hasNextCommittedEntries() ||
      !softEqual(r.softState(), this.prevSoft) ||
      !hardStateEqual(r.hardState(), this.prevHard)
    );
  }

  ready(): Ready {
    if (this.outstanding) throw new Error('raft: ready() called again before advance()');
    this.outstanding = true;
    const r = this.raft;
    const soft = r.softState();
    const hard = r.hardState();
    const entries = r.log.unstableEntries().slice();
    const hardChanged = !hardStateEqual(hard, this.prevHard);
    const rd: {
      -readonly [K in keyof Ready]: Ready[K];
    } = {
      entries,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      readStates: r.readStates,
      // A snapshot replaces the log and is acknowledged like entries: the
      // leader then counts it as held (match) and tells us to commit up to it.
      // A new lease promise goes out with an acknowledgement the leader's
      // lease counts: it must survive a crash (the restart window keeps it).
      mustSync:
        entries.length > 0 ||
        r.log.unstable.snapshot !== undefined ||
        hard.term !== this.prevHard.term ||
        hard.vote !== this.prevHard.vote ||
        (hard.lease ?? 0) !== (this.prevHard.lease ?? 0),
    };
    if (!softEqual(soft, this.prevSoft)) rd.softState = soft;
    if (hardChanged) rd.hardState = hard;
    if (r.log.unstable.snapshot !== undefined) rd.snapshot = r.log.unstable.snapshot;
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** The Ready's state is durable, its messages sent and its committed entries applied. */
  advance(rd: Ready): void {
    if (!this.outstanding) throw new Error('raft: advance() without ready()');
    this.outstanding = false;
    const log = this.raft.log;
    if (rd.softState !== undefined) this.prevSoft = rd.softState;
    if (rd.hardState !== undefined) this.prevHard = rd.hardState;
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      log.stableTo(last.index, last.term);
      // A leader's own copy counts toward commitment only now (thesis §10.2.1).
      this.raft.persisted(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    this.raft.compactMembership();
  }

  status(): Status {
    const r = this.raft;
    let progress: Record<NodeId, ProgressStatus> | undefined;
    if (r.role === 'leader') {
      // fromEntries defines own properties: an id like "__proto__" stays a key.
      progress = Object.fromEntries(
        r.tracker.members.map((id) => {
          const pr = r.tracker.progress.get(id)!;
          return [id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner }];
        }),
      );
    }
    const s: Status = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      tick: r.tickCount,
      leaseValidUntil: r.leaseValidUntil(),
      leadTransferee: r.leadTransferee,
      config: r.confState(),
    };
    return progress === undefined ? s : { ...s, progress };
  }

  /** Cheap accessors for hot loops (simulation checks, metrics). */
  get role(): Role {
    return this.raft.role;
  }
  get term(): number {
    return this.raft.term;
  }
  /** The member this leader hands its leadership to (thesis §3.10), while it does; null otherwise. */
  get leadTransferee(): NodeId | null {
    return this.raft.leadTransferee;
  }

  get leader(): NodeId | null {
    return this.raft.lead;
  }
  get commitIndex(): number {
    return this.raft.log.committed;
  }
  get lastIndex(): number {
    return this.raft.log.lastIndex();
  }
  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }
  get config(): ConfState {
    return this.raft.confState();
  }
}
