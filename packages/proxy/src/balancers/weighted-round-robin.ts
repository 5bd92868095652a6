import type { Balancer, Peer } from './balancer.js';

/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every candidate's
 * weight to its running score, takes the highest and subtracts the total from it. Over
 * any window of sum(weights) picks each peer is chosen exactly `weight` times, and the
 * picks are interleaved (5:1:1 gives a a b a c a a, not a a a a a b c).
 */
export class WeightedRoundRobin<T extends Peer = Peer> implements Balancer<T> {
  #candidates: readonly T[] | null = null;
  #scores: number[] = [];

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (n === 1) return candidates[0]!;
    if (candidates !== this.#candidates) {
      // The candidate set changed (health, update): restart the schedule.
      this.#candidates = candidates;
      this.#scores = new Array<number>(n).fill(0);
    }
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
