// A balancer picks one peer from the routable candidates. Candidates are the current
// eligible origins (healthy or unknown, not ejected, not draining) in snapshot order;
// the array is rebuilt when routing changes, never per request, and grows in place when
// servers are added (Upstream calls reset() then), so a balancer may keep per-candidate
// state keyed by position and reset it when `candidates` changes or reset() is called.

/** What a balancer may look at: the record weight and the in-flight count. */
export interface Peer {
  readonly weight: number;
  readonly active: number;
}

export interface Balancer<T extends Peer = Peer> {
  /** Pick one of `candidates` (non-empty), or null when it is empty. */
  pick(candidates: readonly T[]): T | null;
  /** The candidates changed in place (servers appended, a weight changed): forget per-candidate state. */
  reset?(): void;
}

export type RandomFn = () => number;
