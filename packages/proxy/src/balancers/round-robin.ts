import type { Balancer, Peer } from './balancer.js';

/** Plain rotation over the candidates; weights are ignored. */
export class RoundRobin<T extends Peer = Peer> implements Balancer<T> {
  #next: number;

  /** `phase`: where the rotation starts (see createBalancer). */
  constructor(phase = 0) {
    this.#next = phase;
  }

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (this.#next >= n) this.#next %= n;
    return candidates[this.#next++]!;
  }
}
