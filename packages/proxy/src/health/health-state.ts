import type { HealthCheckSpec } from '@weldr/store';

export type Health = 'healthy' | 'unhealthy' | 'unknown';

/** The outcome of the most recent active check, as shown in stats. */
export interface CheckResult {
  /** Epoch milliseconds when the check finished. */
  readonly at: number;
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
}

/**
 * Active health state of one origin, driven only by check results (no clock, no I/O).
 *
 * A server starts `unknown` and is routable at once, so adding a server changes routing
 * on the next request rather than after `healthyThreshold` intervals. Its first failed
 * check demotes it to `unhealthy` immediately — an unknown server has earned no benefit
 * of the doubt. `healthyThreshold` consecutive passes make any non-healthy server
 * healthy; a healthy one needs `unhealthyThreshold` consecutive failures to go down
 * (RFC-free, HAProxy's `rise`/`fall`).
 */
export class HealthState {
  health: Health = 'unknown';
  lastCheck: CheckResult | undefined = undefined;
  #passes = 0;
  #failures = 0;

  /** Apply one check result; true when `health` changed. */
  record(result: CheckResult, spec: Pick<HealthCheckSpec, 'healthyThreshold' | 'unhealthyThreshold'>): boolean {
    this.lastCheck = result;
    const before = this.health;
    if (result.ok) {
      this.#failures = 0;
      this.#passes++;
      if (this.health !== 'healthy' && this.#passes >= Math.max(1, spec.healthyThreshold)) this.health = 'healthy';
    } else {
      this.#passes = 0;
      this.#failures++;
      if (this.health === 'unknown' || (this.health === 'healthy' && this.#failures >= Math.max(1, spec.unhealthyThreshold))) {
        this.health = 'unhealthy';
      }
    }
    return this.health !== before;
  }

  /** Forget check history (active checks were disabled for the server). */
  reset(): void {
    this.health = 'unknown';
    this.#passes = 0;
    this.#failures = 0;
  }
}
