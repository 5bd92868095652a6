import type { Balancer, Peer } from './balancer.js';

/**
 * Fewest in-flight requests relative to weight (active / weight). Ties are broken by
 * rotating the scan start, so an idle pool still spreads load instead of always
 * choosing the first candidate.
 */
export class LeastConnections<T extends Peer = Peer> implements Balancer<T> {
  #start: number;
  /** The phase still applies (no pick yet): past the end it wraps by it, later back to the first. */
  #first = true;

  /** `phase`: where the rotation of the scan start begins (see createBalancer). */
  constructor(phase = 0) {
    this.#start = phase;
  }

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (this.#start >= n) this.#start = this.#first ? this.#start % n : 0;
    this.#first = false;
    const start = this.#start++;
    let best = candidates[start]!;
    let bestLoad = best.active / best.weight;
    for (let k = 1; k < n; k++) {
      const c = candidates[(start + k) % n]!;
      const load = c.active / c.weight;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
      }
    }
    return best;
  }
}
