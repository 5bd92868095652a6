import type { HealthCheckSpec } from '@weldr/store';
import type { CheckResult } from './health-state.js';
import { HttpProbe, type ProbeOutcome, type ProbeTarget } from './http-probe.js';

export interface CheckerDeps {
  /** Where the origin listens, and how to speak TLS to it (the traffic pool's settings). */
  readonly target: ProbeTarget;
  /** Host header value for the check request. */
  readonly host: string;
  readonly random: () => number;
  readonly now: () => number;
  readonly onResult: (result: CheckResult) => void;
}

/**
 * Runs one server's active health check forever: first check at once (plus jitter;
 * spread over the interval when a whole pool starts together),
 * then every `intervalMs + random·jitterMs` after the previous one ends. A check passes
 * when a response with a status in `expectedStatus` arrives within `timeoutMs`
 * (connecting, head and body together). Checks go over a kept-alive connection of their
 * own (http-probe.ts); a check costs two timers and a few small buffers, no streams or
 * promises, so 10,000 origins every 2 s stay a small part of a core.
 */
export class ActiveChecker {
  readonly spec: HealthCheckSpec;
  readonly #deps: CheckerDeps;
  readonly #probe: HttpProbe;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(spec: HealthCheckSpec, deps: CheckerDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#probe = new HttpProbe(deps.target, { method: spec.method, path: spec.path, authority: deps.host });
  }

  /** First check after `delay` ms (plus jitter): 0 for a server just added. */
  start(delay = 0): void {
    this.#schedule(delay + this.#jitter());
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#probe.close();
  }

  #jitter(): number {
    return this.spec.jitterMs > 0 ? Math.floor(this.#deps.random() * this.spec.jitterMs) : 0;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(this.#run, delay);
    this.#timer.unref();
  }

  readonly #run = (): void => {
    if (this.#stopped) return;
    this.#timer = setTimeout(this.#timedOut, this.spec.timeoutMs);
    this.#timer.unref();
    this.#probe.check(this.#answered);
  };

  readonly #timedOut = (): void => {
    this.#timer = null;
    this.#probe.abort();
    this.#report({ at: this.#deps.now(), ok: false, error: 'timeout' });
  };

  readonly #answered = (outcome: ProbeOutcome): void => {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const { expectedStatus } = this.spec;
    const at = this.#deps.now();
    this.#report(
      'status' in outcome
        ? { at, ok: outcome.status >= expectedStatus.min && outcome.status <= expectedStatus.max, status: outcome.status }
        : { at, ok: false, error: outcome.error },
    );
  };

  #report(result: CheckResult): void {
    if (this.#stopped) return;
    this.#deps.onResult(result);
    this.#schedule(this.spec.intervalMs + this.#jitter());
  }
}
