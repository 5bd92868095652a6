import type { Balancer, Peer } from './balancer.js';

/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every candidate's
 * weight to its running score, takes the highest and subtracts the total from it. Over
 * any window of sum(weights) picks each peer is chosen exactly `weight` times, and the
 * picks are interleaved (5:1:1 gives a a b a c a a, not a a a a a b c).
 */
export class WeightedRoundRobin<T extends Peer = Peer> implements Balancer<T> {
  readonly #phase: number;
  #candidates: readonly T[] | null = null;
  #scores: number[] = [];
  /** Every candidate has the same weight: the schedule is plain rotation (see pick). */
  #uniform = false;
  #next = 0;

  /** `phase`: how many picks into its schedule a new schedule starts (see createBalancer). */
  constructor(phase = 0) {
    this.#phase = phase;
  }

  reset(): void {
    this.#candidates = null;
  }

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (n === 1) return candidates[0]!;
    if (candidates !== this.#candidates) {
      // The candidate set changed (health, update): restart the schedule.
      this.#candidates = candidates;
      this.#scores = new Array<number>(n).fill(0);
      this.#uniform = candidates.every((c) => c.weight === candidates[0]!.weight);
      this.#next = this.#phase % n;
      // Weighted: start `phase` picks into the schedule (a phase is small: a worker's number).
      if (!this.#uniform) for (let k = 0; k < this.#phase; k++) this.#smooth(candidates);
    }
    if (this.#uniform) {
      // With equal weights the smooth schedule below picks 0, 1, …, n-1 and its scores
      // are all back to 0 after n picks: the same order in O(1) instead of O(n) per
      // pick, so routing does not cost more with a larger pool (1,000 origins: one
      // index instead of a 1,000-step loop per request).
      const c = candidates[this.#next]!;
      this.#next = this.#next + 1 === n ? 0 : this.#next + 1;
      return c;
    }
    return this.#smooth(candidates);
  }

  /** One step of the smooth schedule. */
  #smooth(candidates: readonly T[]): T {
    const n = candidates.length;
    const scores = this.#scores;
    let total = 0;
    let best = 0;
    for (let i = 0; i < n; i++) {
      const w = candidates[i]!.weight;
      total += w;
      scores[i]! += w;
      if (scores[i]! > scores[best]!) best = i;
    }
    scores[best]! -= total;
    return candidates[best]!;
  }
}
