import type { ConfChange, ConfState, Entry, NodeId } from '../types.js';

// Single-server membership changes (thesis §4.1). A configuration takes effect
// on a server as soon as its entry is in that server's log, committed or not,
// and is undone if that entry is truncated away. Any majority of the old and
// new configurations overlap because they differ by one voter, so no two
// leaders can be elected in one term across the change. The leader proposes a
// change only after its previous one is applied and after committing an entry
// of its own term (the no-op), which closes the gap described in Ongaro's
// 2015 raft-dev erratum on single-server changes.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Longest ConfChange.context accepted (characters): a member record, not a payload channel. */
export const MAX_CONF_CHANGE_CONTEXT = 16 * 1024;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc.context === undefined ? { type: cc.type, nodeId: cc.nodeId } : { type: cc.type, nodeId: cc.nodeId, context: cc.context }));
}

/** Decode a conf-change entry's payload; undefined if malformed. */
export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { type, nodeId, context } = v as { type?: unknown; nodeId?: unknown; context?: unknown };
  if (type !== 'addVoter' && type !== 'addLearner' && type !== 'removeNode') return undefined;
  if (typeof nodeId !== 'string' || nodeId.length === 0) return undefined;
  // A malformed context does not make the change itself malformed: the core applies
  // the change (every server alike) and the application decides what the context means.
  return typeof context === 'string' ? { type, nodeId, context } : { type, nodeId };
}

/**
 * The log a brand-new cluster starts from: one committed addVoter entry per
 * initial voter (term 1, indexes 1..n), identical on every initial member.
 * Keeping the bootstrap configuration in the log, not beside it, lets a server
 * added later derive every configuration from the log it receives.
 */
export function bootstrapEntries(voters: readonly NodeId[]): Entry[] {
  return [...new Set(voters)].sort().map((nodeId, i) => ({
    term: 1,
    index: i + 1,
    type: 'confChange' as const,
    data: encodeConfChange({ type: 'addVoter', nodeId }),
  }));
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: [], learners: [] });

export function confStateEqual(a: ConfState, b: ConfState): boolean {
  return sameIds(a.voters, b.voters) && sameIds(a.learners, b.learners);
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort();
}

export function normalizeConfState(cs: ConfState): ConfState {
  return { voters: sorted(new Set(cs.voters)), learners: sorted(new Set(cs.learners)) };
}

/** Apply one change; a string explains why the change is invalid against `cs`. */
export function applyConfChange(cs: ConfState, cc: ConfChange): ConfState | string {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case 'addVoter':
      if (isVoter) return `${cc.nodeId} is already a voter`;
      return {
        voters: sorted([...cs.voters, cc.nodeId]),
        learners: cs.learners.filter((id) => id !== cc.nodeId),
      };
    case 'addLearner':
      if (isVoter) return `${cc.nodeId} is a voter; demotion is not supported`;
      if (isLearner) return `${cc.nodeId} is already a learner`;
      return { voters: cs.voters, learners: sorted([...cs.learners, cc.nodeId]) };
    case 'removeNode':
      if (!isVoter && !isLearner) return `${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return 'cannot remove the last voter';
      return {
        voters: cs.voters.filter((id) => id !== cc.nodeId),
        learners: cs.learners.filter((id) => id !== cc.nodeId),
      };
  }
}

/**
 * The configurations in a server's log, by entry index. The first one is the
 * configuration at the snapshot (or bootstrap); later ones come from
 * conf-change entries. Kept short: entries are dropped as the log is compacted.
 */
export class ConfigHistory {
  private history: { index: number; conf: ConfState }[];

  constructor(baseIndex: number, base: ConfState) {
    this.history = [{ index: baseIndex, conf: normalizeConfState(base) }];
  }

  get current(): ConfState {
    return this.history[this.history.length - 1]!.conf;
  }

  /** Index of the entry that set the current configuration. */
  get currentIndex(): number {
    return this.history[this.history.length - 1]!.index;
  }

  /** Configuration in force at index i (the latest set at or before i). */
  at(i: number): ConfState | undefined {
    for (let k = this.history.length - 1; k >= 0; k--) {
      if (this.history[k]!.index <= i) return this.history[k]!.conf;
    }
    return undefined;
  }

  /** Conf-change entries appended to the log; returns whether the configuration changed. */
  appendEntries(ents: readonly Entry[]): boolean {
    let changed = false;
    for (const e of ents) {
      if (e.type !== 'confChange') continue;
      const cc = decodeConfChange(e.data);
      if (cc === undefined) continue;
      const next = applyConfChange(this.current, cc);
      // An invalid change is a no-op on every server alike: all see the same log prefix.
      if (typeof next === 'string') continue;
      this.history.push({ index: e.index, conf: next });
      changed = true;
    }
    return changed;
  }

  /** Entries at or after `from` were discarded; undo configurations they set. */
  truncateFrom(from: number): boolean {
    let changed = false;
    while (this.history.length > 1 && this.history[this.history.length - 1]!.index >= from) {
      this.history.pop();
      changed = true;
    }
    return changed;
  }

  /** Restore from a snapshot: the log before `index` is gone. */
  reset(index: number, conf: ConfState): void {
    this.history = [{ index, conf: normalizeConfState(conf) }];
  }

  /** Forget configurations that precede the one in force at `index` (the log before it is compacted). */
  compactTo(index: number): void {
    let k = 0;
    while (k + 1 < this.history.length && this.history[k + 1]!.index <= index) k++;
    if (k > 0) this.history = this.history.slice(k);
  }
}
