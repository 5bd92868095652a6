import type { HealthCheckSpec } from '@weldr/store';
import type { Dispatcher } from 'undici';
import type { CheckResult } from './health-state.js';

export interface CheckerDeps {
  /** The origin's own connection pool: a check exercises the path traffic takes. */
  readonly dispatcher: Dispatcher;
  /** "http://ip:port" */
  readonly origin: string;
  /** Host header value for the check request. */
  readonly host: string;
  readonly random: () => number;
  readonly now: () => number;
  readonly onResult: (result: CheckResult) => void;
}

/**
 * Runs one server's active health check forever: first check at once (plus jitter),
 * then every `intervalMs + random·jitterMs`. A check passes when a response with a
 * status in `expectedStatus` arrives within `timeoutMs` (headers and body together).
 */
export class ActiveChecker {
  readonly spec: HealthCheckSpec;
  readonly #deps: CheckerDeps;
  #timer: NodeJS.Timeout | null = null;
  #inflight: AbortController | null = null;
  #stopped = false;

  constructor(spec: HealthCheckSpec, deps: CheckerDeps) {
    this.spec = spec;
    this.#deps = deps;
  }

  start(): void {
    this.#schedule(this.#jitter());
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#inflight?.abort();
    this.#inflight = null;
  }

  #jitter(): number {
    return this.spec.jitterMs > 0 ? Math.floor(this.#deps.random() * this.spec.jitterMs) : 0;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#run();
    }, delay);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const { spec } = this;
    const deps = this.#deps;
    const ac = new AbortController();
    this.#inflight = ac;
    const timeout = setTimeout(() => ac.abort(new Error('health check timed out')), spec.timeoutMs);
    let result: CheckResult;
    try {
      const res = await deps.dispatcher.request({
        origin: deps.origin,
        path: spec.path,
        method: spec.method,
        headers: { host: deps.host, 'user-agent': 'weldr-health-check' },
        signal: ac.signal,
        headersTimeout: spec.timeoutMs,
        bodyTimeout: spec.timeoutMs,
      });
      // Drain the body so the connection is reusable; its content is not judged.
      await res.body.dump({ limit: 64 * 1024 });
      const ok = res.statusCode >= spec.expectedStatus.min && res.statusCode <= spec.expectedStatus.max;
      result = { at: deps.now(), ok, status: res.statusCode };
    } catch (err) {
      const reason = ac.signal.aborted && !this.#stopped ? 'timeout' : errorText(err);
      result = { at: deps.now(), ok: false, error: reason };
    } finally {
      clearTimeout(timeout);
      if (this.#inflight === ac) this.#inflight = null;
    }
    if (this.#stopped) return;
    deps.onResult(result);
    this.#schedule(spec.intervalMs + this.#jitter());
  }
}

function errorText(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string') return e.code;
    if (typeof e.message === 'string') return e.message;
  }
  return String(err);
}
