// Safety invariants of Raft (§5.2–5.4, Figure 3), checked while the
// simulation runs: after every step, and on every persist and apply.

import type { Entry, Ready, ReadState } from '../../src/index.js';
import { mixHash, type Cluster, type SimNode } from './cluster.js';

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

interface EntryInfo {
  readonly prevTerm: number | undefined;
  readonly type: string;
  readonly data: Uint8Array;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface Acked {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

export class Checker {
  private readonly c: Cluster;
  /** Election safety: the one leader of each term. */
  private readonly leaders = new Map<number, string>();
  private readonly leaderLast = new Map<string, { term: number; last: number }>();
  /** Log matching: per (index, term), the predecessor's term and the payload. */
  private readonly entries = new Map<number, EntryInfo>();
  /** Entries known committed (some server persisted a commit index covering them). */
  private readonly committedTerm: number[] = [];
  /**
   * Per committed index, the lowest term at which some server was seen
   * knowing it committed: the commit happened in that term or earlier. Non-
   * decreasing in the index (whoever knows i committed knows every j < i).
   */
  private readonly commitSeenTerm: number[] = [];
  maxCommitted = 0;
  private readonly recordedCommit = new Map<string, number>();
  /** State-machine safety: what was applied at each index, and the state after it. */
  private readonly applied: (Entry | undefined)[] = [];
  private readonly hashAt: number[] = [];
  /** Reads in flight: the highest acknowledged write when each was issued. */
  readonly pendingReads = new Map<string, { node: string; minIndex: number }>();
  /** Proposals in flight, by "node:index". */
  readonly pendingProposals = new Map<string, Acked>();
  readonly acked: Acked[] = [];
  maxAckedIndex = 0;
  readsServed = 0;
  leaseHolderSteps = 0;

  constructor(c: Cluster) {
    this.c = c;
    c.hooks = {
      beforePersist: (n, rd) => this.beforePersist(n, rd),
      afterPersist: (n, rd) => this.afterPersist(n, rd),
      onApply: (n, e) => this.onApply(n, e),
      onRestore: (n, index, hash) => this.onRestore(n, index, hash),
      onReadState: (n, rs) => this.onReadState(n, rs),
    };
  }

  private fail(msg: string): never {
    throw new InvariantViolation(msg);
  }

  /** Checks over the whole cluster, after every simulation step. */
  afterStep(): void {
    let holders = 0;
    let holder = '';
    for (const n of this.c.nodes.values()) {
      const raw = n.raw;
      if (raw === null || raw.role !== 'leader') continue;
      const term = raw.term;
      const prev = this.leaders.get(term);
      if (prev === undefined) {
        this.leaders.set(term, n.id);
        this.checkLeaderCompleteness(n);
      } else if (prev !== n.id) {
        this.fail(`election safety: ${prev} and ${n.id} both leaders of term ${term}`);
      }
      // Leader append-only (§5.3): a leader's log never shrinks during its term.
      const last = raw.lastIndex;
      const lt = this.leaderLast.get(n.id);
      if (lt !== undefined && lt.term === term && last < lt.last) {
        this.fail(`leader append-only: ${n.id} lastIndex ${lt.last} -> ${last} in term ${term}`);
      }
      this.leaderLast.set(n.id, { term, last });
      if (raw.hasLease()) {
        holders++;
        if (holders > 1) this.fail(`lease: ${holder} and ${n.id} both hold a leader lease at time ${this.c.now}`);
        holder = n.id;
      }
    }
    if (holders > 0) this.leaseHolderSteps++;
  }

  /**
   * §5.4 leader completeness: a leader holds every entry committed in an
   * earlier term. (A leader of a term below the commit's may still be elected
   * by votes granted before the voters moved on; it can commit nothing.)
   */
  private checkLeaderCompleteness(n: SimNode): void {
    const raw = n.raw!;
    const k = this.lastCommittedBefore(raw.term);
    if (k === 0) return;
    if (k > raw.lastIndex) this.fail(`leader completeness: ${n.id} (term ${raw.term}) lacks committed index ${k}`);
    const t = raw.termAt(k);
    if (t === undefined) return; // compacted: covered by its snapshot
    if (t !== this.committedTerm[k]) {
      this.fail(`leader completeness: ${n.id} has term ${t} at committed index ${k}, expected ${this.committedTerm[k]}`);
    }
  }

  private beforePersist(n: SimNode, rd: Ready): void {
    const raw = n.raw!;
    if (raw.role !== 'leader') return;
    for (const e of rd.entries) {
      const old = n.storage.term(e.index);
      if (old === raw.term && e.term !== old) this.fail(`leader append-only: ${n.id} overwrites its own entry ${e.index}`);
    }
  }

  private afterPersist(n: SimNode, rd: Ready): void {
    const s = n.storage;
    for (const e of rd.entries) {
      const key = e.index * 2097152 + e.term; // terms stay far below 2^21 in a run
      const prevTerm = s.term(e.index - 1);
      const info = this.entries.get(key);
      if (info === undefined) {
        this.entries.set(key, { prevTerm, type: e.type, data: e.data });
      } else {
        // Log matching (§5.3): same index and term ⇒ same entry and same predecessor.
        if (info.prevTerm !== undefined && prevTerm !== undefined && info.prevTerm !== prevTerm) {
          this.fail(`log matching: entry ${e.index}/${e.term} follows term ${prevTerm} on ${n.id}, ${info.prevTerm} elsewhere`);
        }
        if (info.type !== e.type || !sameBytes(info.data, e.data)) {
          this.fail(`log matching: entry ${e.index}/${e.term} differs on ${n.id}`);
        }
      }
    }
    const hs = rd.hardState;
    if (hs === undefined) return;
    const from = Math.max(this.recordedCommit.get(n.id) ?? 0, s.firstIndex() - 1) + 1;
    if (hs.commit > s.lastIndex()) this.fail(`commit: ${n.id} commits ${hs.commit} beyond its durable log ${s.lastIndex()}`);
    for (let i = from; i <= hs.commit; i++) this.recordCommitted(n, i, s.term(i)!, hs.term);
    if (hs.commit > (this.recordedCommit.get(n.id) ?? 0)) this.recordedCommit.set(n.id, hs.commit);
  }

  private recordCommitted(n: SimNode, i: number, t: number, seenInTerm: number): void {
    const known = this.committedTerm[i];
    if (known === undefined) this.committedTerm[i] = t;
    else if (known !== t) this.fail(`committed entry changed: index ${i} term ${known} -> ${t} on ${n.id}`);
    const seen = this.commitSeenTerm[i];
    if (seen === undefined || seenInTerm < seen) this.commitSeenTerm[i] = seenInTerm;
    if (i > this.maxCommitted) this.maxCommitted = i;
  }

  /** The highest index known committed in a term before `term` (0 if none). */
  private lastCommittedBefore(term: number): number {
    let lo = 0;
    let hi = this.maxCommitted;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const seen = this.commitSeenTerm[mid];
      if (seen !== undefined && seen < term) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private onApply(n: SimNode, e: Entry): void {
    if (e.index !== n.appliedIndex + 1) this.fail(`apply order: ${n.id} applies ${e.index} after ${n.appliedIndex}`);
    this.recordCommitted(n, e.index, e.term, n.raw!.term);
    const prev = this.applied[e.index];
    if (prev === undefined) {
      this.applied[e.index] = e;
    } else if (prev.term !== e.term || prev.type !== e.type || !sameBytes(prev.data, e.data)) {
      // State-machine safety (§5.4.3).
      this.fail(`state machine safety: ${n.id} applies ${e.index}/${e.term}, another server applied ${prev.index}/${prev.term}`);
    }
    const h = mixHash(n.hash, e);
    const known = this.hashAt[e.index];
    if (known === undefined) this.hashAt[e.index] = h;
    else if (known !== h) this.fail(`state machine safety: ${n.id} state after ${e.index} differs`);

    const key = `${n.id}:${e.index}`;
    const p = this.pendingProposals.get(key);
    if (p !== undefined) {
      this.pendingProposals.delete(key);
      if (p.term === e.term && sameBytes(p.data, e.data)) {
        this.acked.push(p);
        if (p.index > this.maxAckedIndex) this.maxAckedIndex = p.index;
      }
    }
  }

  private onRestore(n: SimNode, index: number, hash: number): void {
    const known = this.hashAt[index];
    if (known !== undefined && known !== hash) this.fail(`snapshot: ${n.id} restores state at ${index} that no server had`);
  }

  private onReadState(n: SimNode, rs: ReadState): void {
    const p = this.pendingReads.get(rs.context);
    if (p === undefined || p.node !== n.id) return;
    this.pendingReads.delete(rs.context);
    this.readsServed++;
    // Linearizability (thesis §6.4): the read point covers every write acknowledged before the read began.
    if (rs.index < p.minIndex) this.fail(`stale read: ${rs.context} on ${n.id} at ${rs.index} < acknowledged ${p.minIndex}`);
  }

  proposed(node: string, index: number, term: number, data: Uint8Array): void {
    this.pendingProposals.set(`${node}:${index}`, { index, term, data });
  }

  /** Every acknowledged write is applied, identically, on every listed server. */
  checkAckedAppliedEverywhere(members: readonly SimNode[]): void {
    for (const a of this.acked) {
      const e = this.applied[a.index];
      if (e === undefined || e.term !== a.term || !sameBytes(e.data, a.data)) {
        this.fail(`durability: acknowledged write at ${a.index}/${a.term} was lost`);
      }
      for (const m of members) {
        if (m.appliedIndex < a.index) this.fail(`durability: ${m.id} never applied acknowledged write ${a.index}`);
      }
    }
  }

  appliedAt(index: number): Entry | undefined {
    return this.applied[index];
  }
}
