import { entrySize, type Storage } from '../storage.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ProposeResult,
  ReadState,
  Refusal,
  RefusalReason,
  RequestResult,
  Role,
  Snapshot,
  SnapshotChunk,
  SoftState,
} from '../types.js';
import { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.js';
import { leaseMs, leaseTicks, promiseTicks, quorumAckTick } from './lease.js';
import { RaftLog } from './log.js';
import { applyConfChange, ConfigHistory, encodeConfChange, MAX_CONF_CHANGE_CONTEXT } from './membership.js';
import type { Progress } from './progress.js';
import { quorumValue, voteResult } from './quorum.js';
import { ReadOnly, type PendingRead } from './read-only.js';
import { SnapshotReceiver, SnapshotSender } from './snapshot-transfer.js';
import { ProgressTracker } from './tracker.js';
import { MAX_TERM_JUMP } from './validate.js';

const EMPTY = new Uint8Array(0);
/** context of a vote forced by MsgTimeoutNow (thesis §3.10): voters skip the in-lease check. */
export const TRANSFER_CONTEXT = 'transfer';
/**
 * Context of a vote request from a candidate that waived its promise to a leader whose
 * process is gone (leaderGone): `leader-gone <term> <leader>`. A voter skips its own
 * promise to that leader only if it saw the same evidence itself.
 */
export const LEADER_GONE_CONTEXT_PREFIX = 'leader-gone ';
/** The leader and term a `leader-gone` vote request names; undefined for any other context. */
export function parseLeaderGoneContext(context: string | undefined): { term: number; leader: NodeId } | undefined {
  if (context === undefined || !context.startsWith(LEADER_GONE_CONTEXT_PREFIX)) return undefined;
  const rest = context.slice(LEADER_GONE_CONTEXT_PREFIX.length);
  const space = rest.indexOf(' ');
  const term = Number(rest.slice(0, space));
  const leader = rest.slice(space + 1);
  return space > 0 && Number.isSafeInteger(term) && leader.length > 0 ? { term, leader } : undefined;
}
/** `tick` of a response that echoes no leader round (e.g. the answer to a stale-term message). */
const NO_TICK = 0;

type CampaignKind = 'preElection' | 'election' | 'transfer';

interface MessageFields {
  term?: number;
  logTerm?: number;
  index?: number;
  commit?: number;
  reject?: boolean;
  rejectHint?: number;
  tick?: number;
  lease?: number;
  entries?: readonly Entry[];
  snapshot?: SnapshotChunk;
  context?: string | undefined;
}

/**
 * The Raft state machine (§5, thesis ch. 3–6, 9). Pure: no clock, timer,
 * randomness, disk or network of its own. Inputs are tick(), step() and the
 * local requests; outputs accumulate in `msgs`, `readStates` and the log's
 * unstable part until RawNode hands them out in a Ready.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  readonly membership: ConfigHistory;
  private readonly random: () => number;
  private readonly mayCampaign: (() => boolean) | undefined;
  /** L: ticks of this server's clock its lease lasts after an acknowledged round (lease.ts). */
  private readonly leaseDuration: number;
  /** The promise (ms of the follower's clock) this server asks for in every round it sends as leader. */
  readonly statedLease: number;

  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since this server started (its local clock). */
  tickCount = 0;
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Until this tick (of our clock) we grant no vote or pre-vote and do not
   * campaign: the promise made to the leaders whose rounds we accepted, to
   * our own lease while leader, and after a restart to whatever we may have
   * promised before it.
   */
  promiseUntil: number;
  /** The promise (ms) we made to the leader of the latest round we accepted; persisted in HardState.lease. */
  private promisedLease = 0;
  /**
   * The part of promiseUntil no evidence can waive: our own lease while leader, the
   * restart window, and what we promised every leader before `promisedTo`.
   */
  private basePromiseUntil: number;
  /** The leader, and its term, whose rounds the rest of promiseUntil was promised to. */
  private promisedTo: { readonly term: number; readonly leader: NodeId } | null = null;
  /**
   * The driver saw evidence that promisedTo's process is gone (leaderGone): that promise
   * no longer binds our own campaign, nor our vote for a candidate that saw the same.
   * Cleared by the next round we accept, from whichever leader.
   */
  private waived = false;
  /** Until this tick a waiver draws short, staggered election timeouts (fastElectionTimeout). */
  private fastUntil = 0;

  private readonly votes = new Map<NodeId, boolean>();
  leadTransferee: NodeId | null = null;
  /** A MsgTimeoutNow left this leader in its term: its lease is gone for the rest of the term. */
  private leaseRevoked = false;
  private becameLeaderTick = 0;
  /** Index of the last conf change the leader appended (or its first index of the term). */
  private pendingConfIndex = 0;
  /** Bytes of this term's proposals not yet committed (maxUncommittedBytes), and their batches in index order. */
  private uncommittedBytes = 0;
  private readonly uncommittedBatches: { last: number; bytes: number }[] = [];
  private readonly readOnly = new ReadOnly();
  /** ReadIndex requests that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private pendingReadIndex: { from: NodeId; context: string }[] = [];
  private readonly snapshotReceiver = new SnapshotReceiver();

  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.random = config.random;
    this.mayCampaign = config.mayCampaign;
    this.leaseDuration = leaseTicks(this.cfg.electionTick, this.cfg.maxClockDrift);
    this.statedLease = leaseMs(this.leaseDuration, this.cfg.tickMs, this.cfg.maxClockDrift);
    const storage: Storage = config.storage;
    this.log = new RaftLog(storage, this.cfg.maxCommittedSizePerReady);
    const { hardState, confState } = storage.initialState();

    // Configurations take effect when appended (thesis §4.1), so rebuild them
    // from the snapshot's configuration and the conf-change entries after it.
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.membership = new ConfigHistory(first - 1, confState);
    for (let lo = first; lo <= last; ) {
      const batch = storage.entries(lo, last + 1, 4 << 20);
      this.membership.appendEntries(batch);
      lo += batch.length;
    }
    this.tracker = new ProgressTracker(this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    this.tracker.setConf(this.membership.current, last);

    if (hardState.term > 0 || hardState.commit > 0) {
      if (hardState.commit > last) throw new RangeError(`raft: stored commit ${hardState.commit} beyond the last index ${last}`);
      // A commit-only change may be written without fsync (Ready.mustSync) and
      // lost; the snapshot (firstIndex - 1) is committed regardless.
      this.log.commitTo(hardState.commit);
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    this.promisedLease = hardState.lease ?? 0;
    // The state machine restarts from the latest snapshot unless told otherwise.
    const applied = config.applied ?? storage.snapshot().metadata.index;
    if (!Number.isSafeInteger(applied) || applied < first - 1 || applied > last) {
      throw new RangeError(`raft: applied ${applied} outside the log [${first - 1}, ${last}]`);
    }
    // What the state machine applied was committed, even if the commit index
    // saying so was lost with an unsynced write: never hand it out again.
    this.log.commitTo(applied);
    this.log.appliedTo(applied);
    // A restarted server may have acknowledged a leader just before it went
    // down; it forgot when, so it assumes "just now" and keeps the promise it
    // made then (persisted before that acknowledgement left, measured with
    // today's tick length), and at least a full election timeout, before
    // granting a vote. (A fresh server pays the same wait; it would not
    // campaign sooner anyway.)
    this.promiseUntil = promiseTicks(this.promisedLease, this.cfg.electionTick, this.cfg.tickMs);
    // Whom it was made to is not persisted: no evidence can waive the restart window.
    this.basePromiseUntil = this.promiseUntil;
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------- state

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed, lease: this.promisedLease };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  confState(): ConfState {
    return this.tracker.confState();
  }

  /** Voters may campaign; learners and removed servers may not (thesis §4.2.1, §4.2.2). */
  promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  /**
   * §9.6 / §6.2 / thesis §6.4.1: we are inside a promise — a leader's round
   * accepted less than its stated lease (and at least our election timeout)
   * ago, our own lease while leader, or the window after a restart.
   */
  private inLease(gone = false): boolean {
    return this.cfg.checkQuorum && this.tickCount < this.promiseEnd(gone);
  }

  /**
   * The tick our promises run to; with `gone`, leaving out the promise waived on
   * evidence that its leader's process is gone (leaderGone), if it was.
   */
  private promiseEnd(gone: boolean): number {
    return gone && this.waived ? this.basePromiseUntil : this.promiseUntil;
  }

  /**
   * Refuse votes and campaigns for `ticks` more ticks at least (a promise never
   * shortens): our own lease, or the restart window. No evidence waives these.
   */
  private keepPromise(ticks: number): void {
    this.promiseUntil = Math.max(this.promiseUntil, this.tickCount + ticks);
    this.basePromiseUntil = Math.max(this.basePromiseUntil, this.tickCount + ticks);
  }

  /** `leader-gone <term> <leader>` for the promise we waived; undefined without a waiver. */
  private goneContext(): string | undefined {
    const p = this.promisedTo;
    return this.waived && p !== null ? `${LEADER_GONE_CONTEXT_PREFIX}${p.term} ${p.leader}` : undefined;
  }

  /**
   * The context of our vote requests: the waiver's while the waived promise would still
   * bind us without it (the campaign rests on our evidence, and only voters that saw
   * the same may grant it); none once that promise has run out by itself (an ordinary
   * campaign, which any voter out of its promise may grant).
   */
  private campaignContext(): string | undefined {
    return this.inLease(false) ? this.goneContext() : undefined;
  }

  /**
   * Whether our promises forbid granting `m` (a vote or pre-vote request that is not
   * forced). A request made on a waiver is granted only by a voter that waived the same
   * promise on its own evidence — even one whose promise has run out, so that an
   * election against a promise always rests on a quorum that each saw the death, never
   * on one member's word; any other request meets every promise we made.
   */
  private promiseForbids(m: Message): boolean {
    if (m.context !== undefined && m.context.startsWith(LEADER_GONE_CONTEXT_PREFIX)) {
      return m.context !== this.goneContext() || this.inLease(true);
    }
    return this.inLease(false);
  }

  /**
   * The driver has evidence that the process of `leader`, leader of `term`, is gone
   * (its connections closed and its Raft port refuses connections: packages/raft
   * README, "Fast failover"). Waive the promise made to that leader in that term only
   * — not the restart window, not our own lease, not a promise to anyone else or in
   * another term — and campaign soon, staggered by rank so that the survivors do not
   * split the vote. Returns whether the promise was waived (false: the evidence is
   * stale, about someone else, or already acted on).
   */
  leaderGone(term: number, leader: NodeId): boolean {
    const p = this.promisedTo;
    if (!this.cfg.checkQuorum || this.waived || p === null || p.term !== term || p.leader !== leader) return false;
    if (this.term !== term || this.role === 'leader' || this.role === 'candidate' || leader === this.id) return false;
    this.waived = true;
    this.fastUntil = this.tickCount + 2 * this.cfg.electionTick;
    if (!this.promotable()) return true;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    // The first in rank campaigns at once; the others wait their staggered timeout.
    if (this.rankAmongSurvivors() === 0 && !this.inLease(true)) this.hup();
    return true;
  }

  /** Our place among the voters other than the leader we waived our promise to (ids in order). */
  private rankAmongSurvivors(): number {
    const gone = this.promisedTo?.leader;
    const rank = [...this.tracker.voters]
      .filter((id) => id !== gone)
      .sort()
      .indexOf(this.id);
    return Math.max(0, rank);
  }

  // ---------------------------------------------------------------- time

  tick(): void {
    this.tickCount++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (!this.promotable() || this.electionElapsed < this.randomizedElectionTimeout) return;
    // Our own evidence that the leader is gone frees our own campaign (leaderGone).
    if (this.inLease(true)) {
      // A promise outlasts our own timeout (a leader stated a longer lease, or
      // the restart window covers one): keep it, then wait a fresh random part
      // of E so that servers that heard the same round do not all campaign at
      // the same moment (§5.2).
      const wait = this.promiseEnd(true) - this.tickCount + Math.floor(this.random() * this.cfg.electionTick);
      this.electionElapsed = this.randomizedElectionTimeout - wait;
      return;
    }
    this.electionElapsed = 0;
    this.hup();
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    // The in-lease rule for the leader itself: deposed by a stray higher
    // term, it does not vote for E ticks, like a follower that just heard from
    // a leader. (Not needed for the lease: a deposed leader holds none.)
    this.keepPromise(this.cfg.electionTick);
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.leadTransferee !== null) {
        // §3.10: the transfer did not finish within an election timeout; resume.
        this.leadTransferee = null;
        if (this.leaseRevoked) {
          // TimeoutNow went out, so some server may still campaign with a
          // forced vote in this term: this leader can never hold a lease in it
          // again. Re-elect ourselves (forced, like a transfer to self) so a
          // leader with a lease exists again.
          if (this.promotable()) this.campaign('transfer');
          else this.becomeFollower(this.term, null);
          return;
        }
      }
    }
    // §6.2 check-quorum: step down when no quorum answered within an election timeout.
    if (this.cfg.checkQuorum && this.tickCount - this.quorumActiveTick() >= this.cfg.electionTick) {
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  /** Check-quorum counts every follower as heard from when this term began. */
  private quorumActiveTick(): number {
    return quorumAckTick(this.tracker, this.id, this.tickCount, this.becameLeaderTick);
  }

  /**
   * The tick (of this server's clock) until which this leader may act as the
   * only leader without asking anyone: lease = send tick of the latest round a
   * quorum acknowledged with this leader's promise + leaseTicks(E, ρ). null
   * when not leader, not yet acknowledged in this term, transferring, or
   * expired.
   */
  leaseValidUntil(): number | null {
    if (this.role !== 'leader' || !this.cfg.checkQuorum || this.leaseRevoked || this.leadTransferee !== null) return null;
    if (!this.tracker.isVoter(this.id)) return null;
    const q = quorumAckTick(this.tracker, this.id, this.tickCount, -1, true);
    if (q < this.becameLeaderTick) return null; // no quorum acknowledged this term yet
    const until = q + this.leaseDuration;
    return until > this.tickCount ? until : null;
  }

  // ---------------------------------------------------------------- roles

  private resetRandomizedElectionTimeout(): void {
    if (this.waived && this.tickCount < this.fastUntil) {
      this.randomizedElectionTimeout = this.fastElectionTimeout();
      return;
    }
    // §5.2: randomized in [E, 2E) so that split votes are rare.
    const e = this.cfg.electionTick;
    this.randomizedElectionTimeout = e + Math.min(e - 1, Math.floor(this.random() * e));
  }

  /**
   * After a waiver (leaderGone) the election timeout only spaces retries: the promise,
   * not the timeout, is what keeps the lease. The survivors saw the death within a few
   * ms of each other, so a random draw from a short range would split votes often;
   * instead the r-th in rank waits 3r + 2 … 3r + 3 ticks (the first campaigns at once
   * and retries after 2–3 ticks), so that a pre-vote and a vote round trip, each with a
   * synced write, fit between two ranks even on a loaded host. A candidate (it won the
   * pre-vote: its term and vote are written, the votes are being written) waits 2 ticks
   * more before giving up on its election: a driver that lags catches ticks up in a
   * burst, and abandoning a vote in flight costs a whole round. For 2E ticks; then the
   * usual [E, 2E).
   */
  private fastElectionTimeout(): number {
    const candidate = this.role === 'candidate' ? 2 : 0;
    return 2 + candidate + 3 * this.rankAmongSurvivors() + Math.floor(this.random() * 2);
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    this.readOnly.reset();
    this.pendingReadIndex = [];
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.uncommittedBatches.length = 0;
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    // §9.6: a pre-candidate keeps its term and vote; only a won pre-vote costs a term.
    this.role = 'preCandidate';
    this.votes.clear();
    this.lead = null;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    if (this.waived) this.resetRandomizedElectionTimeout(); // a candidate's longer fast timeout
  }

  private becomeLeader(): void {
    this.waived = false;
    this.promisedTo = null;
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.leaseRevoked = false;
    this.becameLeaderTick = this.tickCount;
    this.keepPromise(this.cfg.electionTick);
    const last = this.log.lastIndex();
    this.tracker.resetAll(last);
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) {
      // Only what is on our disk counts as held (persisted() below); the rest of our
      // log is acknowledged to ourselves once the driver has written it.
      self.match = this.log.stableLastIndex();
      self.becomeReplicate();
    }
    // No conf change until everything up to our no-op is applied (thesis §4.1 erratum).
    this.pendingConfIndex = last + 1;
    // §8: commit an entry of the new term so earlier entries become committed too.
    this.appendEntries([{ type: 'noop', data: EMPTY }]);
  }

  private hup(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.mayCampaign !== undefined && !this.mayCampaign()) return;
    this.campaign(this.cfg.preVote ? 'preElection' : 'election');
  }

  /** Local request to start an election now (tests, operator tooling). Respects pre-vote and the lease. */
  campaignNow(): RequestResult {
    if (this.role === 'leader') return { ok: true };
    if (!this.promotable()) return this.refuse('notMember');
    // A server inside a lease would break the lease with its own vote.
    if (this.inLease()) return this.refuse('inLease');
    if (this.mayCampaign !== undefined && !this.mayCampaign()) return this.refuse('campaignHeld');
    this.hup();
    return { ok: true };
  }

  private campaign(kind: CampaignKind): void {
    let voteType: MessageType;
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'MsgPreVote';
      term = this.term + 1; // §9.6: ask about the term we would use
    } else {
      this.becomeCandidate();
      voteType = 'MsgVote';
      term = this.term;
    }
    const result = this.poll(this.id, true);
    if (result === 'won') {
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeaderAndBroadcast();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    const context = kind === 'transfer' ? TRANSFER_CONTEXT : this.campaignContext();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send(voteType, id, {
        term,
        index: lastIndex,
        logTerm: lastTerm,
        context,
      });
    }
  }

  private becomeLeaderAndBroadcast(): void {
    this.becomeLeader();
    this.bcastAppend();
  }

  private poll(id: NodeId, granted: boolean) {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.tracker.voters, this.votes);
  }

  // ---------------------------------------------------------------- messages out

  private send(type: MessageType, to: NodeId, f: MessageFields): void {
    const m: {
      -readonly [K in keyof Message]: Message[K];
    } = {
      type,
      from: this.id,
      to,
      term: f.term ?? this.term,
      logTerm: f.logTerm ?? 0,
      index: f.index ?? 0,
      commit: f.commit ?? 0,
      reject: f.reject ?? false,
      rejectHint: f.rejectHint ?? 0,
      tick: f.tick ?? 0,
      lease: f.lease ?? 0,
    };
    if (f.entries !== undefined) m.entries = f.entries;
    if (f.snapshot !== undefined) m.snapshot = f.snapshot;
    if (f.context !== undefined) m.context = f.context;
    this.msgs.push(m);
  }

  /**
   * Answer a leader's message, echoing its send tick (it dates the leader's
   * lease) and the promise we keep for it (only such echoes count for a
   * lease; without check-quorum we keep none, so we echo none).
   */
  private respond(to: Message, type: MessageType, f: MessageFields): void {
    f.tick = to.tick;
    f.lease = this.cfg.checkQuorum ? to.lease : 0;
    this.send(type, to.from, f);
  }

  private bcastAppend(): void {
    for (const id of this.tracker.members) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: string | undefined): void {
    for (const id of this.tracker.members) {
      if (id === this.id) continue;
      const pr = this.tracker.progress.get(id)!;
      // §5.3: a follower may only commit what it is known to hold.
      this.send('MsgHeartbeat', id, {
        commit: Math.min(pr.match, this.log.committed),
        tick: this.tickCount,
        lease: this.statedLease,
        context,
      });
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * §5.3 AppendEntries with flow control: at most maxSizePerMsg bytes per
   * message, pipelined in replicate state up to the inflight bounds. Falls back
   * to a snapshot when the follower needs compacted entries (§7).
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = prevTerm === undefined ? undefined : this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
    if (prevTerm === undefined || ents === undefined) return this.sendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send('MsgApp', to, {
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
      tick: this.tickCount,
      lease: this.statedLease,
    });
    if (ents.length > 0) {
      let bytes = 0;
      for (const e of ents) bytes += entrySize(e);
      pr.sentEntries(ents[ents.length - 1]!.index, bytes);
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.log.snapshot();
    if (snap.metadata.index === 0) return false;
    pr.becomeSnapshot(new SnapshotSender(snap, this.cfg.snapshotChunkSize, this.tickCount));
    this.sendSnapshotChunks(to, pr.snapshot!);
    return true;
  }

  private sendSnapshotChunks(to: NodeId, sender: SnapshotSender): void {
    for (const chunk of sender.take(this.cfg.snapshotChunksInFlight)) {
      this.send('MsgSnap', to, { tick: this.tickCount, lease: this.statedLease, snapshot: chunk });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    // The target will win votes from servers inside our lease; give it up now.
    this.leaseRevoked = true;
    this.send('MsgTimeoutNow', to, { tick: this.tickCount });
  }

  // ---------------------------------------------------------------- messages in

  /**
   * Process one peer message. Malformed, misaddressed or out-of-place messages
   * are dropped (returns false); the core never throws on peer input.
   */
  step(m: Message): boolean {
    if (m.to !== this.id || m.from === this.id) return false;
    // Never adopt a term that jumps far ahead, whoever sends it: one corrupt
    // term near the limit would leave no term to elect anyone in (validate.ts).
    if (m.term > this.term + MAX_TERM_JUMP) return false;
    if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        // §4.2.3 / §9.6: while we hear from a leader, a vote request (from a
        // removed or partitioned server) must neither disrupt us nor be granted.
        if (m.context !== TRANSFER_CONTEXT && this.promiseForbids(m)) return true;
      }
      if (m.type === 'MsgPreVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // Granted pre-votes carry the term we asked about.
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        // Figure 2: only the current leader's messages or a granted vote
        // restart the election timer. A vote request we refuse (a stale log)
        // or any other higher-term message must not, or candidates that cannot
        // win keep the servers that can from ever timing out.
        const elapsed = this.role === 'leader' ? 0 : this.electionElapsed;
        this.becomeFollower(m.term, null);
        this.electionElapsed = elapsed;
      }
    } else if (m.term < this.term) {
      if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat') {
        // A stale leader (§5.1: the reply carries currentTerm so the leader
        // updates itself): tell it our term so it steps down. Always, not only
        // with check-quorum or pre-vote as etcd does: a leader that was
        // removed meanwhile hears from nobody else. No tick echo: we
        // did not accept that leader, and a restarted leader of our term
        // counts ticks from 0 again, so an echo of an older incarnation's tick
        // would pass for an acknowledgement of its own and extend its lease.
        this.send('MsgAppResp', m.from, { tick: NO_TICK });
      } else if (m.type === 'MsgPreVote') {
        this.send('MsgPreVoteResp', m.from, { reject: true });
      }
      return true;
    }

    if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
      this.handleVoteRequest(m);
      return true;
    }
    switch (this.role) {
      case 'leader':
        return this.stepLeader(m);
      case 'candidate':
      case 'preCandidate':
        return this.stepCandidate(m);
      case 'follower':
        return this.stepFollower(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === 'MsgPreVote';
    // §5.2: one vote per term; §9.6: a pre-vote for a later term is not a vote.
    const canVote =
      this.vote === m.from || (this.vote === null && this.lead === null) || (isPre && m.term > this.term);
    const forced = m.context === TRANSFER_CONTEXT;
    // The in-lease check applies to every grant, not only higher-term ones: a
    // stray higher-term response may have moved us to a new term with no leader
    // moments after we acknowledged the old one.
    // A candidate that saw the leader's process gone is granted only if we saw the same
    // ourselves (leaderGone, promiseForbids).
    const grant = canVote && (forced || !this.promiseForbids(m)) && this.log.isUpToDate(m.index, m.logTerm);
    const respType: MessageType = isPre ? 'MsgPreVoteResp' : 'MsgVoteResp';
    if (grant) {
      this.send(respType, m.from, { term: isPre ? m.term : this.term });
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(respType, m.from, { reject: true });
    }
  }

  private stepCandidate(m: Message): boolean {
    switch (m.type) {
      case 'MsgApp':
      case 'MsgHeartbeat':
      case 'MsgSnap':
        // §5.2: a leader of our term exists.
        this.becomeFollower(m.term, m.from);
        return this.stepFollower(m);
      case 'MsgPreVoteResp':
      case 'MsgVoteResp': {
        const mine = this.role === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
        if (m.type !== mine) return false;
        // A grant counts only for the term we are asking about now.
        const granted = !m.reject && m.term === (this.role === 'preCandidate' ? this.term + 1 : this.term);
        const r = this.poll(m.from, granted);
        if (r === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else this.becomeLeaderAndBroadcast();
        } else if (r === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * A round from the leader of our term: accept it and keep its promise —
   * no vote, pre-vote or campaign for the lease it states (counted on our own
   * clock) and at least our election timeout. The promise is persisted
   * (HardState.lease) in the same Ready as our answer, so it is durable
   * before the leader can count it (the Ready contract).
   */
  private heardFromLeader(m: Message): boolean {
    if (this.lead !== null && this.lead !== m.from) return false; // two leaders in one term: not from a correct peer
    this.lead = m.from;
    this.electionElapsed = 0;
    const p = this.promisedTo;
    if (p === null || p.term !== m.term || p.leader !== m.from) {
      // A new leader: what we promised the one before (unless we waived it on evidence
      // of its death) is no longer this leader's to lose.
      if (!this.waived) this.basePromiseUntil = this.promiseUntil;
      this.promisedTo = { term: m.term, leader: m.from };
    }
    // A round we accept proves its leader alive (or is the next leader's): no waiver from here on.
    if (this.waived) {
      this.waived = false;
      this.resetRandomizedElectionTimeout();
    }
    this.promiseUntil = Math.max(this.promiseUntil, this.tickCount + promiseTicks(m.lease, this.cfg.electionTick, this.cfg.tickMs));
    this.promisedLease = m.lease;
    return true;
  }

  private stepFollower(m: Message): boolean {
    switch (m.type) {
      case 'MsgApp':
        if (!this.heardFromLeader(m)) return false;
        this.handleAppend(m);
        return true;
      case 'MsgHeartbeat':
        if (!this.heardFromLeader(m)) return false;
        this.log.commitTo(m.commit);
        this.respond(m, 'MsgHeartbeatResp', { context: m.context });
        return true;
      case 'MsgSnap':
        if (!this.heardFromLeader(m)) return false;
        this.handleSnapshotChunk(m, m.snapshot!);
        return true;
      case 'MsgTimeoutNow':
        // §3.10: start an election at once, skipping pre-vote; voters grant
        // despite their lease because the leader asked for it.
        if (m.from !== this.lead || !this.promotable()) return false;
        this.campaign('transfer');
        return true;
      case 'MsgReadIndexResp':
        if (m.from !== this.lead) return false;
        this.readStates.push({ index: m.index, context: m.context! });
        return true;
      default:
        return false;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.respond(m, 'MsgAppResp', { index: this.log.committed });
      return;
    }
    const ents = m.entries ?? [];
    const r = this.log.maybeAppend(m.index, m.logTerm, ents);
    if (r !== undefined) {
      if (r.writtenFrom > 0) {
        const written = ents.slice(r.writtenFrom - (m.index + 1));
        let changed = this.membership.truncateFrom(r.writtenFrom);
        changed = this.membership.appendEntries(written) || changed;
        if (changed) this.tracker.setConf(this.membership.current, this.log.lastIndex());
      }
      this.log.commitTo(Math.min(m.commit, r.lastNewIndex));
      this.respond(m, 'MsgAppResp', { index: r.lastNewIndex });
      return;
    }
    // §5.3 fast back-tracking: point the leader at the last index that can
    // still match, given the term it expected at m.index.
    let hint = Math.min(m.index, this.log.lastIndex());
    hint = this.log.findConflictByTerm(hint, m.logTerm);
    this.respond(m, 'MsgAppResp', {
      index: m.index,
      reject: true,
      rejectHint: hint,
      logTerm: this.log.term(hint) ?? 0,
    });
  }

  private handleSnapshotChunk(m: Message, c: SnapshotChunk): void {
    const md = c.metadata;
    if (md.index <= this.log.committed) {
      this.snapshotReceiver.reset();
      this.respond(m, 'MsgAppResp', { index: this.log.committed });
      return;
    }
    const got = this.snapshotReceiver.receive(c, m.from, m.term);
    if (typeof got === 'number') {
      // Acknowledge how many chunks we hold in order; a gap makes the leader go back.
      this.respond(m, 'MsgSnapResp', { index: md.index, rejectHint: got });
      return;
    }
    if (this.restore(got)) this.respond(m, 'MsgAppResp', { index: this.log.lastIndex() });
    else this.respond(m, 'MsgAppResp', { index: this.log.committed });
  }

  /** §7 InstallSnapshot receiver: keep a matching log suffix, else replace the log. */
  private restore(s: Snapshot): boolean {
    const md = s.metadata;
    if (md.index <= this.log.committed) return false;
    if (this.log.matchTerm(md.index, md.term)) {
      this.log.commitTo(md.index);
      return false;
    }
    this.log.restore(s);
    this.membership.reset(md.index, md.confState);
    this.tracker.setConf(this.membership.current, this.log.lastIndex());
    return true;
  }

  private stepLeader(m: Message): boolean {
    if (m.type === 'MsgReadIndex') {
      if (!this.tracker.progress.has(m.from)) return false;
      this.handleReadIndexRequest(m.from, m.context!);
      return true;
    }
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return false; // responses only count from members
    if (m.type !== 'MsgAppResp' && m.type !== 'MsgHeartbeatResp' && m.type !== 'MsgSnapResp') return false;
    // NO_TICK (0) is never taken as an echo: only a round sent at tick 0 is
    // lost by that, which can shorten the lease but never lengthen it.
    if (m.tick !== NO_TICK && m.tick <= this.tickCount) {
      if (m.tick > pr.ackTick) pr.ackTick = m.tick;
      // The lease rests only on what the follower says it promised: our
      // statement, echoed (a peer that predates the field echoes 0).
      if (m.tick > pr.leaseAckTick && m.lease >= this.statedLease) pr.leaseAckTick = m.tick;
    }
    switch (m.type) {
      case 'MsgAppResp':
        this.handleAppendResponse(m, pr);
        break;
      case 'MsgHeartbeatResp':
        this.handleHeartbeatResponse(m, pr);
        break;
      case 'MsgSnapResp':
        this.handleSnapshotResponse(m, pr);
        break;
    }
    return true;
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      let next = m.rejectHint;
      if (m.logTerm > 0) next = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.state !== 'snapshot' && pr.maybeDecrTo(m.index, next)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) return; // acknowledges entries we never sent
    const wasPaused = pr.isPaused();
    if (pr.maybeUpdate(m.index)) {
      if (pr.state === 'probe') {
        pr.becomeReplicate();
      } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'snapshot' && pr.match >= pr.snapshot!.index) {
        // That transfer is done, but we compacted past it meanwhile: probe
        // again now (a newer snapshot follows) rather than wait for the
        // transfer to time out.
        pr.becomeProbe();
      } else if (pr.state === 'replicate') {
        pr.inflights.freeLE(m.index);
      }
      if (this.maybeCommit()) {
        if (this.role !== 'leader') return; // committed our own removal and stepped down
        this.bcastAppend();
      } else if (wasPaused) {
        this.sendAppend(m.from);
      }
      // Pipelining: keep the window full.
      while (this.maybeSendAppend(m.from, false)) {
        /* sent one more */
      }
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.state === 'snapshot') this.snapshotHeartbeat(m.from, pr);
    else if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);

    // Lease-based reads fall back to this heartbeat round too when the lease
    // is not valid, so acknowledgements count whatever readOnlyOption is.
    if (m.context === undefined) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined || voteResult(this.tracker.voters, acks) !== 'won') return;
    for (const r of this.readOnly.advance(m.context)) this.respondRead(r.from, r.index, r.context);
  }

  private handleSnapshotResponse(m: Message, pr: Progress): void {
    const sender = pr.snapshot;
    if (pr.state !== 'snapshot' || sender === undefined || m.index !== sender.index) return;
    const again = sender.onAck(m.rejectHint, this.tickCount);
    if (again !== undefined) this.send('MsgSnap', m.from, { tick: this.tickCount, lease: this.statedLease, snapshot: sender.chunk(again) });
    this.sendSnapshotChunks(m.from, sender);
  }

  /** A heartbeat answered during a snapshot transfer: resend stalled chunks, or give up and re-probe. */
  private snapshotHeartbeat(to: NodeId, pr: Progress): void {
    const sender = pr.snapshot!;
    const verdict = sender.onHeartbeat(this.tickCount, this.cfg.heartbeatTick, this.cfg.electionTick);
    if (verdict === 'abort') {
      pr.becomeProbe();
      this.sendAppend(to);
    } else if (verdict === 'resend') {
      this.sendSnapshotChunks(to, sender);
    }
  }

  /** §5.3, §5.4.2: commit the quorum's match index only if it is of the current term. */
  private maybeCommit(): boolean {
    const mci = quorumValue(this.tracker.voters, (id) => this.tracker.progress.get(id)?.match ?? 0, 0);
    if (mci <= this.log.committed || this.log.term(mci) !== this.term) return false;
    this.log.commitTo(mci);
    this.releaseUncommitted(mci);
    this.afterCommit();
    return true;
  }

  /** Proposals of this term up to `committed` no longer count against maxUncommittedBytes. */
  private releaseUncommitted(committed: number): void {
    const q = this.uncommittedBatches;
    let n = 0;
    while (n < q.length && q[n]!.last <= committed) this.uncommittedBytes -= q[n++]!.bytes;
    if (n > 0) q.splice(0, n);
  }

  private afterCommit(): void {
    if (this.pendingReadIndex.length > 0) {
      const queued = this.pendingReadIndex;
      this.pendingReadIndex = [];
      for (const r of queued) this.handleReadIndexRequest(r.from, r.context);
    }
    if (!this.tracker.isVoter(this.id) && this.membership.currentIndex <= this.log.committed) {
      this.stepDownRemoved();
    }
  }

  /**
   * Thesis §4.2.2: a leader that is not in the new configuration manages the
   * cluster until that configuration is committed, then steps down. It hands
   * over to the most up-to-date voter at once instead of waiting for a timeout.
   */
  private stepDownRemoved(): void {
    this.bcastAppend();
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.tracker.voters) {
      const pr = this.tracker.progress.get(id)!;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------- local requests

  private refuse(reason: RefusalReason): Refusal {
    return { ok: false, reason, leader: this.lead };
  }

  private leaderRefusal(): Refusal | undefined {
    if (this.role !== 'leader') return this.refuse(this.lead === null ? 'noLeader' : 'notLeader');
    if (this.leadTransferee !== null) return this.refuse('transferring');
    if (!this.tracker.progress.has(this.id)) return this.refuse('notMember');
    return undefined;
  }

  private appendEntries(items: readonly { type: EntryType; data: Uint8Array }[]): number {
    let index = this.log.lastIndex();
    const ents: Entry[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      ents[i] = { term: this.term, index: ++index, type: items[i]!.type, data: items[i]!.data };
    }
    this.log.append(ents);
    if (this.membership.appendEntries(ents)) {
      this.tracker.setConf(this.membership.current, index);
      if (this.leadTransferee !== null && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = null;
    }
    // Not counted for our own match yet: the driver may send these entries before they
    // are on our disk (thesis §10.2.1); persisted() counts them once they are.
    return index;
  }

  /**
   * The driver has made this server's log durable up to `index`, whose entry has term
   * `term` (RawNode.advance). Thesis §10.2.1: a leader may send its entries while it
   * writes them to its own disk, but it counts itself toward a commit quorum only once
   * they are written — counting an unwritten copy could commit an entry a majority does
   * not hold, lost when the leader crashes before its write completes.
   */
  persisted(index: number, term: number): void {
    if (this.role !== 'leader' || this.log.term(index) !== term) return;
    const self = this.tracker.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(index)) return;
    if (this.maybeCommit() && this.role === 'leader') this.bcastAppend();
  }

  /** Append commands as one batch (one MsgApp per follower). Leader only. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    const no = this.leaderRefusal();
    if (no !== undefined) return no;
    if (data.length === 0) return { ok: true, index: this.log.lastIndex(), term: this.term };
    let bytes = 0;
    for (const d of data) bytes += d.length;
    const limit = this.cfg.maxUncommittedBytes;
    // A single voter waits on no peer, only on its own disk (its driver bounds that queue);
    // it commits each write once written, so the bound would only refuse bursts.
    const alone = this.tracker.voters.length === 1;
    if (limit > 0 && !alone && this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > limit) return this.refuse('uncommittedLimit');
    const last = this.appendEntries(data.map((d) => ({ type: 'normal' as const, data: d })));
    if (bytes > 0) {
      this.uncommittedBytes += bytes;
      this.uncommittedBatches.push({ last, bytes });
      // Committed already (a single voter re-proposing after its own entries were written)?
      this.releaseUncommitted(this.log.committed);
    }
    this.bcastAppend();
    return { ok: true, index: last, term: this.term };
  }

  /** Thesis §4.1: one change at a time, only after the previous one is applied. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const no = this.leaderRefusal();
    if (no !== undefined) return no;
    if (this.pendingConfIndex > this.log.applied) return this.refuse('confChangePending');
    const validId = typeof cc.nodeId === 'string' && cc.nodeId.length > 0 && cc.nodeId.length <= 256;
    const validContext = cc.context === undefined || (typeof cc.context === 'string' && cc.context.length <= MAX_CONF_CHANGE_CONTEXT);
    if (!validId || !validContext || typeof applyConfChange(this.membership.current, cc) === 'string') return this.refuse('invalidConfChange');
    const index = this.appendEntries([{ type: 'confChange', data: encodeConfChange(cc) }]);
    this.pendingConfIndex = index;
    if (this.role === 'leader') this.bcastAppend();
    return { ok: true, index, term: this.term };
  }

  /**
   * Thesis §6.4 ReadIndex. The answer arrives later as a ReadState with the
   * same context (unique per request); a leader change drops pending requests,
   * and the caller retries.
   */
  readIndex(context: string): RequestResult {
    if (this.role === 'leader') {
      this.handleReadIndexRequest(this.id, context);
      return { ok: true };
    }
    if (this.lead === null || this.role !== 'follower') return this.refuse('noLeader');
    this.send('MsgReadIndex', this.lead, { context });
    return { ok: true };
  }

  private handleReadIndexRequest(from: NodeId, context: string): void {
    const voters = this.tracker.voters;
    if (voters.length === 1 && voters[0] === this.id) {
      this.respondRead(from, this.log.committed, context);
      return;
    }
    // Step 1: our commit index is only known to be current once we committed in our term.
    if (this.log.term(this.log.committed) !== this.term) {
      this.pendingReadIndex.push({ from, context });
      return;
    }
    if (this.cfg.readOnlyOption === 'leaseBased' && this.leaseValidUntil() !== null) {
      this.respondRead(from, this.log.committed, context); // thesis §6.4.1
      return;
    }
    // Steps 2–3: confirm we are still leader with a heartbeat round.
    if (!this.readOnly.add(this.log.committed, context, from)) return;
    this.readOnly.recvAck(this.id, context);
    this.bcastHeartbeat(context);
  }

  private respondRead(from: NodeId, index: number, context: string): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send('MsgReadIndexResp', from, { index, context });
  }

  /** Thesis §3.10 leadership transfer. */
  transferLeadership(to: NodeId): RequestResult {
    if (this.role !== 'leader') return this.refuse(this.lead === null ? 'noLeader' : 'notLeader');
    if (to === this.id) return { ok: true };
    if (!this.tracker.isVoter(to)) return this.refuse('invalidTarget');
    if (this.leadTransferee === to) return { ok: true };
    // Abort after an election timeout, counted from now.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to); // catch the target up first
    return { ok: true };
  }

  /**
   * Abdicate at once, without a transfer: the leader becomes a follower in its
   * term, drops its lease and stops heartbeating, exactly as when check-quorum
   * finds no quorum (§6.2) — the fault an operator's failover drill injects.
   * The followers elect a new leader once their election timeout passes (they
   * still count the old leader's lease, §9.6, so nothing changes before then).
   * This server sits out one extra election timeout before it may campaign, so
   * that the drill moves the leadership rather than re-electing the same server.
   */
  stepDown(): RequestResult {
    if (this.role !== 'leader') return this.refuse(this.lead === null ? 'noLeader' : 'notLeader');
    this.becomeFollower(this.term, null);
    this.electionElapsed = -this.cfg.electionTick;
    return { ok: true };
  }

  /**
   * The transport could not deliver to `id`: stop pipelining to it and probe
   * once it answers again (appends sent meanwhile were probably lost).
   */
  reportUnreachable(id: NodeId): void {
    const pr = this.role === 'leader' ? this.tracker.progress.get(id) : undefined;
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  pendingReadCount(): number {
    return this.readOnly.size + this.pendingReadIndex.length;
  }

  /** Drop knowledge of configurations before the compacted prefix. */
  compactMembership(): void {
    this.membership.compactTo(this.log.firstIndex() - 1);
  }
}

export type { PendingRead };
