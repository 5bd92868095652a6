import type { Balancer, Peer, RandomFn } from './balancer.js';

/**
 * Power of two choices (Mitzenmacher): sample two distinct candidates at random and
 * take the one with less weighted load. Nearly as good as least-connections without a
 * full scan, and without the herd effect of every proxy picking the same minimum.
 */
export class PowerOfTwo<T extends Peer = Peer> implements Balancer<T> {
  readonly #random: RandomFn;

  constructor(random: RandomFn) {
    this.#random = random;
  }

  pick(candidates: readonly T[]): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    if (n === 1) return candidates[0]!;
    const i = Math.floor(this.#random() * n) % n;
    // Second index drawn from the other n-1 slots so the two are always distinct.
    let j = Math.floor(this.#random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.active / b.weight < a.active / a.weight ? b : a;
  }
}
