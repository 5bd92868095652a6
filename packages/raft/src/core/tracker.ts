import type { ConfState, NodeId } from '../types.js';
import { Progress } from './progress.js';

/** The current configuration and, on a leader, a Progress per member. */
export class ProgressTracker {
  voters: readonly NodeId[] = [];
  learners: readonly NodeId[] = [];
  /** voters then learners, each sorted: the deterministic iteration order. */
  members: readonly NodeId[] = [];
  readonly progress = new Map<NodeId, Progress>();
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  /** Switch configuration; new members start probing from nextIndex = lastIndex + 1 (§5.3). */
  setConf(cs: ConfState, lastIndex: number): void {
    this.voters = cs.voters;
    this.learners = cs.learners;
    this.members = [...cs.voters, ...cs.learners];
    const keep = new Set(this.members);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    for (const id of cs.voters) this.ensure(id, false, lastIndex);
    for (const id of cs.learners) this.ensure(id, true, lastIndex);
  }

  private ensure(id: NodeId, isLearner: boolean, lastIndex: number): void {
    const pr = this.progress.get(id);
    if (pr === undefined) {
      this.progress.set(id, new Progress(lastIndex + 1, isLearner, this.maxInflight, this.maxInflightBytes));
    } else {
      pr.isLearner = isLearner;
    }
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  /** Fresh progress for a new leader term (§5.3 "reinitialized after election"). */
  resetAll(lastIndex: number): void {
    for (const id of this.members) {
      this.progress.set(id, new Progress(lastIndex + 1, !this.isVoter(id), this.maxInflight, this.maxInflightBytes));
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }
}
