import type { NodeId } from '../types.js';

/** Majority of n voters (§5.2). */
export function quorumSize(n: number): number {
  return (n >> 1) + 1;
}

/**
 * The largest value v such that a majority of voters have value >= v: the
 * commit index over matchIndex (§5.3), or the lease's quorum-acknowledged
 * send tick. Voters with no value count as `missing`.
 */
export function quorumValue(voters: readonly NodeId[], valueOf: (id: NodeId) => number, missing: number): number {
  const n = voters.length;
  if (n === 0) return missing;
  if (n === 1) return valueOf(voters[0]!);
  const vals: number[] = new Array(n);
  for (let i = 0; i < n; i++) vals[i] = valueOf(voters[i]!);
  vals.sort((a, b) => b - a);
  return vals[quorumSize(n) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Tally of a vote (or of ReadIndex heartbeat acks) among voters; other ids are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return 'won';
  if (rejected > voters.length - q) return 'lost';
  return 'pending';
}
