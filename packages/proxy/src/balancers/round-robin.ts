import type { Balancer, Peer } from './balancer.js';

/** Plain rotation over the candidates; weights are ignored. */
export class RoundRobin<T extends Peer = Peer> implements Balancer<T> {
  #next: number;
  /** The phase still applies (no pick yet): past the end it wraps by it, later back to the first. */
  #first = true;

  /** `phase`: where the rotation starts (see createBalancer). */
  constructor(phase = 0) {
    this.#next = phase;
  }

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (this.#next >= n) this.#next = this.#first ? this.#next % n : 0;
    this.#first = false;
    return candidates[this.#next++]!;
  }
}
