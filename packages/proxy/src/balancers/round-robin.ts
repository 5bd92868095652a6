import type { Balancer, Peer } from './balancer.js';

/** Plain rotation over the candidates; weights are ignored. */
export class RoundRobin<T extends Peer = Peer> implements Balancer<T> {
  #next = 0;

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (this.#next >= n) this.#next = 0;
    return candidates[this.#next++]!;
  }
}
