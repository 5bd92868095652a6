import { effectiveHealthCheck } from '@weldr/store';
import type { BalancerKind, HealthCheckSpec, PoolSnapshot } from '@weldr/store';
import { createBalancer, type Balancer } from './balancers/index.js';
import { ActiveChecker } from './health/active-checker.js';
import type { OriginFailure } from './errors.js';
import { Origin, type OriginPoolOptions } from './origin-pool.js';
import type { Logger } from './types.js';

export interface UpstreamDeps extends OriginPoolOptions {
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
  readonly healthChecks: boolean;
}

/**
 * The upstream-peer phase: owns one Origin per server of the current snapshot, the list
 * of routable candidates and the balancer. The hot path reads `candidates` (an array
 * rebuilt only when a snapshot, a health verdict or an ejection changes routing) and
 * calls `select()`; nothing here allocates per request except on retries.
 */
export class Upstream {
  snapshot: PoolSnapshot;
  /** Origins of the current snapshot, in snapshot order. */
  origins: Origin[] = [];
  readonly #byId = new Map<string, Origin>();
  /** Where new requests may go. */
  candidates: readonly Origin[] = [];
  /** Active health checks finished since the start, by outcome (weldr_health_checks_total). */
  checksPassed = 0;
  checksFailed = 0;
  /** True when no server is healthy and every non-draining one is routed to anyway. */
  failOpen = false;
  #balancer: Balancer<Origin>;
  #balancerKind: BalancerKind;
  readonly #deps: UpstreamDeps;
  #closed = false;

  constructor(snapshot: PoolSnapshot, deps: UpstreamDeps) {
    this.#deps = deps;
    this.snapshot = snapshot;
    this.#balancerKind = snapshot.settings.balancer;
    this.#balancer = createBalancer<Origin>(this.#balancerKind, deps.random);
    this.update(snapshot);
  }

  /** Swap in a new snapshot. Removed servers drain; new ones are routable at once. */
  update(snapshot: PoolSnapshot): void {
    if (this.#closed) return;
    const { log } = this.#deps;
    this.snapshot = snapshot;
    if (snapshot.settings.balancer !== this.#balancerKind) {
      this.#balancerKind = snapshot.settings.balancer;
      this.#balancer = createBalancer<Origin>(this.#balancerKind, this.#deps.random);
    }
    const next: Origin[] = [];
    const seen = new Set<string>();
    for (const record of snapshot.servers) {
      seen.add(record.id);
      let origin = this.#byId.get(record.id);
      if (origin === undefined) {
        origin = new Origin(record, this.#deps);
        this.#byId.set(record.id, origin);
        log.info({ server: record.id, weight: record.weight, draining: record.draining }, 'origin added');
      } else if (origin.record !== record) {
        if (origin.record.draining !== record.draining) {
          log.info({ server: record.id, draining: record.draining }, record.draining ? 'origin draining' : 'origin undrained');
        }
        origin.record = record;
        origin.weight = Math.max(1, record.weight);
      }
      this.#configureChecker(origin, effectiveHealthCheck(snapshot.settings, record));
      next.push(origin);
    }
    for (const [id, origin] of this.#byId) {
      if (seen.has(id)) continue;
      this.#byId.delete(id);
      log.info({ server: id, active: origin.active }, 'origin removed, draining');
      void origin.drain().then(() => log.debug({ server: id }, 'origin drained'));
    }
    this.origins = next;
    this.refresh();
  }

  /** Recompute candidates and fail-open after any routing-relevant change. */
  refresh(): void {
    const now = this.#deps.now();
    const live: Origin[] = [];
    const eligible: Origin[] = [];
    for (const o of this.origins) {
      if (o.draining) continue;
      live.push(o);
      if (o.health.health !== 'unhealthy' && !o.passive.isEjected(now)) eligible.push(o);
    }
    const failOpen = eligible.length === 0 && live.length > 0;
    if (failOpen !== this.failOpen) {
      // Logged once per transition, not per request.
      if (failOpen) this.#deps.log.warn({ servers: live.length }, 'all origins unhealthy: failing open to every non-draining origin');
      else this.#deps.log.info({ healthy: eligible.length }, 'fail-open ended: healthy origins available');
    }
    this.failOpen = failOpen;
    this.candidates = failOpen ? live : eligible;
  }

  /**
   * Pick an origin for a new attempt, avoiding those already tried by this request.
   * With `sameIfLast`, an already tried origin may be picked again when no other is
   * left: a reset on a reused keep-alive connection usually means the origin closed it
   * just as the request went out, and a fresh connection to the same origin succeeds.
   */
  select(tried: readonly Origin[] | null, sameIfLast = false): Origin | null {
    if (tried === null) return this.#balancer.pick(this.candidates);
    const rest = this.candidates.filter((o) => !tried.includes(o));
    if (rest.length === 0 && sameIfLast) return this.#balancer.pick(this.candidates);
    return this.#balancer.pick(rest);
  }

  /** An attempt on `origin` produced a response (passive health, per request). */
  succeeded(origin: Origin): void {
    origin.success++;
    origin.passive.success(this.snapshot.settings.passiveHealth, this.#deps.now);
  }

  /** An attempt on `origin` failed at the transport level. */
  failed(origin: Origin, reason: string): void {
    origin.failed++;
    if (origin.removed) return;
    const now = this.#deps.now();
    const spec = this.snapshot.settings.passiveHealth;
    if (!origin.passive.failure(spec, now)) return;
    const ms = origin.passive.ejectedUntil - now;
    this.#deps.log.warn({ server: origin.id, reason, ejectedMs: ms, ejections: origin.passive.ejections }, 'origin ejected after consecutive failures');
    if (origin.ejectionTimer !== null) clearTimeout(origin.ejectionTimer);
    origin.ejectionTimer = setTimeout(() => this.#endEjection(origin), Math.max(0, ms));
    origin.ejectionTimer.unref();
    this.refresh();
  }

  #endEjection(origin: Origin): void {
    origin.ejectionTimer = null;
    if (origin.removed) return;
    // The injected clock may lag the timer slightly; end the ejection regardless.
    origin.passive.expire(Math.max(this.#deps.now(), origin.passive.ejectedUntil));
    this.#deps.log.info({ server: origin.id }, 'origin ejection ended');
    this.refresh();
  }

  #configureChecker(origin: Origin, spec: HealthCheckSpec): void {
    const enabled = this.#deps.healthChecks && spec.enabled;
    if (origin.checker !== null && enabled && sameSpec(origin.checker.spec, spec)) return;
    origin.checker?.stop();
    origin.checker = null;
    origin.checkSpec = enabled ? spec : null;
    if (!enabled) {
      if (origin.health.health !== 'unknown') origin.health.reset();
      return;
    }
    const checker = new ActiveChecker(spec, {
      dispatcher: origin.pool,
      origin: origin.url,
      host: origin.authority,
      random: this.#deps.random,
      now: this.#deps.now,
      onResult: (result) => {
        if (origin.checker !== checker) return;
        if (result.ok) this.checksPassed++;
        else this.checksFailed++;
        const before = origin.health.health;
        if (origin.health.record(result, spec)) {
          const level = origin.health.health === 'unhealthy' ? 'warn' : 'info';
          this.#deps.log[level](
            { server: origin.id, from: before, to: origin.health.health, status: result.status, error: result.error },
            'origin health changed',
          );
          this.refresh();
        }
      },
    });
    origin.checker = checker;
    checker.start();
  }

  /** Stop every checker and timer; close pools gracefully or not. */
  async close(graceful: boolean): Promise<void> {
    this.#closed = true;
    const all = [...this.#byId.values()];
    this.#byId.clear();
    this.origins = [];
    this.candidates = [];
    await Promise.all(all.map((o) => (graceful ? o.drain() : o.destroy())));
  }
}

function sameSpec(a: HealthCheckSpec, b: HealthCheckSpec): boolean {
  return (
    a.enabled === b.enabled &&
    a.method === b.method &&
    a.path === b.path &&
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.expectedStatus.min === b.expectedStatus.min &&
    a.expectedStatus.max === b.expectedStatus.max &&
    a.healthyThreshold === b.healthyThreshold &&
    a.unhealthyThreshold === b.unhealthyThreshold &&
    a.jitterMs === b.jitterMs
  );
}

/** RFC 9110 §9.2.2: methods whose repetition has the same intended effect. */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'PUT':
    case 'DELETE':
    case 'TRACE':
      return true;
    default:
      return false;
  }
}

/**
 * Retry policy. Another origin may be tried when nothing of the request reached the
 * failed one (connect refused / connect timeout: any method), or when the method is
 * idempotent and has no body to replay (the body of a request is streamed, never kept).
 * A response timeout is not retried: the origin may still be working on it, and a retry
 * would double both its load and the client's wait. Nothing is retried once any
 * response byte has gone to the client; the caller checks that.
 */
export function mayRetry(failure: OriginFailure, connected: boolean, method: string, hasBody: boolean): boolean {
  if (!connected) return true;
  if (failure === 'timeout') return false;
  return !hasBody && isIdempotent(method);
}
