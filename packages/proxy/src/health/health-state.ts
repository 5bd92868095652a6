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
/** How many recent check outcomes each origin keeps for stats (the status page's history). */
export const RECENT_CHECKS = 10;

export class HealthState {
  health: Health = 'unknown';
  lastCheck: CheckResult | undefined = undefined;
  /** Checks since the origin was added: passed and failed (weldr_health_checks_total). */
  passed = 0;
  failed = 0;
  #passes = 0;
  #failures = 0;
  // The last RECENT_CHECKS outcomes as bits (1 = passed, newest lowest): two numbers per
  // origin rather than a list of objects, as pools may hold thousands of origins.
  #recentBits = 0;
  #recentCount = 0;

  /** The last RECENT_CHECKS outcomes, oldest first (true = passed). */
  recentChecks(): boolean[] {
    const out: boolean[] = [];
    for (let i = this.#recentCount - 1; i >= 0; i--) out.push(((this.#recentBits >> i) & 1) === 1);
    return out;
  }

  /** Apply one check result; true when `health` changed. */
  record(result: CheckResult, spec: Pick<HealthCheckSpec, 'healthyThreshold' | 'unhealthyThreshold'>): boolean {
    this.lastCheck = result;
    if (result.ok) this.passed++;
    else this.failed++;
    this.#recentBits = ((this.#recentBits << 1) | (result.ok ? 1 : 0)) & ((1 << RECENT_CHECKS) - 1);
    this.#recentCount = Math.min(RECENT_CHECKS, this.#recentCount + 1);
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
    this.#recentBits = 0;
    this.#recentCount = 0;
    this.#passes = 0;
    this.#failures = 0;
  }
}
