import type { PassiveHealthSpec } from '@weldr/store';

/**
 * Passive health (outlier detection, after Envoy): `consecutiveFailures` failed proxied
 * attempts in a row (connect error, reset, timeout, malformed response — not an origin's
 * own 5xx, which is a valid answer) eject the server for `baseEjectionMs × 2^k`, capped
 * at `maxEjectionMs`, where k counts earlier ejections. k decays back to 0 once the
 * server serves a success more than `maxEjectionMs` after its last ejection ended, so a
 * server that recovered for good starts again from the base duration.
 */
export class PassiveHealth {
  /** Epoch ms until which the server is ejected; 0 when it is not. */
  ejectedUntil = 0;
  #consecutive = 0;
  #ejections = 0;
  #lastEnd = 0;

  get ejections(): number {
    return this.#ejections;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil !== 0 && now < this.ejectedUntil;
  }

  /** A proxied attempt got a response. Branch-light: it runs on every request. */
  success(spec: PassiveHealthSpec, now: () => number): void {
    if (this.#consecutive !== 0) this.#consecutive = 0;
    if (this.#ejections !== 0 && this.ejectedUntil === 0 && now() >= this.#lastEnd + spec.maxEjectionMs) this.#ejections = 0;
  }

  /** A proxied attempt failed; true when this failure ejected the server. */
  failure(spec: PassiveHealthSpec, now: number): boolean {
    if (!spec.enabled || this.isEjected(now)) return false;
    if (++this.#consecutive < Math.max(1, spec.consecutiveFailures)) return false;
    const duration = Math.min(spec.baseEjectionMs * 2 ** this.#ejections, spec.maxEjectionMs);
    this.ejectedUntil = now + duration;
    this.#ejections++;
    this.#consecutive = 0;
    return true;
  }

  /** Called once the ejection period is over; true when it ended just now. */
  expire(now: number): boolean {
    if (this.ejectedUntil === 0 || now < this.ejectedUntil) return false;
    this.#lastEnd = this.ejectedUntil;
    this.ejectedUntil = 0;
    return true;
  }
}
