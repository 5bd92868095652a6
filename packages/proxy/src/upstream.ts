import { compareServers, effectiveHealthCheck } from '@weldr/store';
import type { BalancerKind, HealthCheckSpec, PoolSnapshot, ServerChangeView, ServerRecord } from '@weldr/store';
import { createBalancer, type Balancer } from './balancers/index.js';
import { ActiveChecker } from './health/active-checker.js';
import { HealthLog } from './health/health-log.js';
import type { CheckResult, Health } from './health/health-state.js';
import type { OriginFailure } from './errors.js';
import { Origin, type OriginPoolOptions } from './origin-pool.js';
import type { Logger } from './types.js';

/** Changes per snapshot up to which each added or removed origin gets its own log line; more get one summary. */
const QUIET = 3;
/** A snapshot walked whole with more servers than this spreads their first health checks over the interval. */
const SPREAD_FROM = 100;

export interface UpstreamDeps extends OriginPoolOptions {
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
  /** Where this process's balancer rotations start (createBalancer): a worker's number - 1; default 0. */
  readonly balancerPhase?: number;
  /**
   * true: run active checks here; false: none (every server stays `unknown`);
   * 'external': none here, verdicts come through applyHealth() (a worker process, fed
   * by the node process that runs the checks).
   */
  readonly healthChecks: boolean | 'external';
  /** Level of the pool's lines (added, removed, draining, summaries, fail-open); default 'info'. */
  readonly poolLog?: 'info' | 'debug';
  /** Called when a server's active-health verdict changes here (the node process tells its workers). */
  readonly onHealthChange?: (serverId: string, health: Health, lastCheck: CheckResult | undefined) => void;
}

/**
 * The upstream-peer phase: owns one Origin per server of the current snapshot, the list
 * of routable candidates and the balancer. The hot path reads `candidates` (an array
 * rebuilt only when a snapshot, a health verdict or an ejection changes routing) and
 * calls `select()`; nothing here allocates per request except on retries.
 *
 * A snapshot from the store says what changed since the previous one (changesSince):
 * only those origins are touched, and servers added (or changed in place) are appended
 * to the candidates in place; a removal, a drain or a health reset recomputes them, a
 * flat filter over the origins. A settings change (pool-wide health-check defaults) or
 * a snapshot without that information is walked in full.
 */
export class Upstream {
  snapshot: PoolSnapshot;
  /** In snapshot (canonical) order: new servers always come last, removed ones leave. */
  readonly #byId = new Map<string, Origin>();
  #origins: Origin[] | null = [];
  /** Where new requests may go (read-only outside: it grows in place as servers are added). */
  get candidates(): readonly Origin[] {
    return this.#ownCandidates;
  }
  #ownCandidates: Origin[] = [];
  /** Active health checks finished since the start, by outcome (weldr_health_checks_total). */
  checksPassed = 0;
  checksFailed = 0;
  /** True when no server is healthy and every non-draining one is routed to anyway. */
  failOpen = false;
  #balancer: Balancer<Origin>;
  #balancerKind: BalancerKind;
  readonly #deps: UpstreamDeps;
  readonly #healthLog: HealthLog;
  /** Origins by active health verdict (kept as verdicts change; for the log's totals). */
  readonly #verdicts: Record<Health, number> = { healthy: 0, unhealthy: 0, unknown: 0 };
  #closed = false;
  #refreshPending: NodeJS.Immediate | null = null;
  /** Set while a whole snapshot is walked: its new origins spread their first checks over the interval. */
  #spreadFirstChecks = false;

  constructor(snapshot: PoolSnapshot, deps: UpstreamDeps) {
    this.#deps = deps;
    this.snapshot = snapshot;
    this.#balancerKind = snapshot.settings.balancer;
    this.#balancer = createBalancer<Origin>(this.#balancerKind, deps.random, deps.balancerPhase);
    this.#healthLog = new HealthLog(deps.log, () => ({ ...this.#verdicts }), { now: deps.now });
    this.#walk(snapshot);
    this.refresh();
  }

  /** Origins of the current snapshot, in snapshot order. */
  get origins(): readonly Origin[] {
    this.#origins ??= [...this.#byId.values()];
    return this.#origins;
  }

  /** Swap in a new snapshot. Removed servers drain; new ones are routable at once. */
  update(snapshot: PoolSnapshot): void {
    if (this.#closed) return;
    const prev = this.snapshot;
    this.snapshot = snapshot;
    if (snapshot.settings.balancer !== this.#balancerKind) {
      this.#balancerKind = snapshot.settings.balancer;
      this.#balancer = createBalancer<Origin>(this.#balancerKind, this.#deps.random, this.#deps.balancerPhase);
    }
    const changes = snapshot.settings === prev.settings ? snapshot.changesSince?.(prev) : undefined;
    if (changes !== undefined) {
      // An in-place change that turns health checks off clears an unhealthy verdict: routing changed.
      const unhealthy = this.#verdicts.unhealthy;
      this.#apply(changes, snapshot);
      // Servers added (or changed without moving in or out of routing): the candidates
      // grow at the end, without walking every origin — the walk was the one cost of an
      // admin write that grew with the pool (10,000 origins: every node, every worker).
      if (!this.failOpen && this.#refreshPending === null && this.#verdicts.unhealthy === unhealthy && changes.every(keepsRouting)) {
        this.#appendCandidates(changes);
        return;
      }
    } else this.#walk(snapshot);
    this.refresh();
  }

  /**
   * The origins `changes` added, in canonical order, joined to the candidates when
   * routable: pushed onto the array this Upstream owns (amortized O(1) per server — a
   * copy per write was O(pool) on every node and worker, 160 KB per write at 20,000
   * servers), and the balancer told to forget its per-candidate state (a weight may
   * have changed in place even when nothing joined).
   */
  #appendCandidates(changes: readonly ServerChangeView[]): void {
    const now = this.#deps.now();
    const records = changes.flatMap((c) => (c.before === undefined && c.after !== undefined ? [c.after] : [])).sort(compareServers);
    const candidates = this.#ownCandidates;
    for (const r of records) {
      const o = this.#byId.get(r.id);
      if (o !== undefined && !o.draining && o.health.health !== 'unhealthy' && !o.passive.isEjected(now)) candidates.push(o);
    }
    this.#balancer.reset?.();
  }

  /** Only what changed (a snapshot from the same store as the previous one). */
  #apply(changes: readonly ServerChangeView[], snapshot: PoolSnapshot): void {
    const added: ServerRecord[] = [];
    for (const c of changes) {
      if (c.after === undefined) this.#remove(c.id, changes.length);
      else if (c.before !== undefined && c.before.createdIndex === c.after.createdIndex) this.#change(c.after, snapshot);
      else {
        // New, or removed and added again (a new place in the order): last, in canonical order.
        if (c.before !== undefined) this.#moveLast(c.after.id);
        added.push(c.after);
      }
    }
    added.sort(compareServers);
    for (const record of added) {
      if (this.#byId.has(record.id)) this.#change(record, snapshot);
      else this.#add(record, snapshot, added.length);
    }
    if (changes.length > QUIET) this.#poolLine({ changes: changes.length, added: added.length, servers: this.#byId.size }, `pool updated: ${changes.length} servers changed, ${this.#byId.size} in the pool`);
  }

  /** Every server of the snapshot: the first one, a settings change, or a snapshot from elsewhere. */
  #walk(snapshot: PoolSnapshot): void {
    const seen = new Set<string>();
    const servers = snapshot.servers;
    // A whole pool at once (start, a restored snapshot): first checks spread over the
    // interval rather than thousands of connections opened in the same instant.
    this.#spreadFirstChecks = servers.length > SPREAD_FROM;
    for (const record of servers) {
      seen.add(record.id);
      if (this.#byId.has(record.id)) this.#change(record, snapshot);
      else this.#add(record, snapshot, servers.length);
    }
    for (const id of [...this.#byId.keys()]) if (!seen.has(id)) this.#remove(id, servers.length);
    // Keep the map in snapshot order (a server removed and added again moved).
    let i = 0;
    let inOrder = true;
    for (const id of this.#byId.keys()) if (id !== servers[i++]?.id) inOrder = false;
    if (!inOrder) {
      const byId = new Map(this.#byId);
      this.#byId.clear();
      for (const r of servers) this.#byId.set(r.id, byId.get(r.id)!);
    }
    this.#origins = null;
    this.#spreadFirstChecks = false;
  }

  #add(record: ServerRecord, snapshot: PoolSnapshot, batch: number): void {
    const origin = new Origin(record, this.#deps);
    this.#byId.set(record.id, origin);
    this.#origins = null;
    this.#verdicts[origin.health.health]++;
    if (batch <= QUIET) this.#poolLine({ server: record.id, weight: record.weight, draining: record.draining }, 'origin added');
    this.#configureChecker(origin, effectiveHealthCheck(snapshot.settings, record));
  }

  #change(record: ServerRecord, snapshot: PoolSnapshot): void {
    const origin = this.#byId.get(record.id)!;
    if (origin.record !== record) {
      if (origin.record.draining !== record.draining) {
        this.#poolLine({ server: record.id, draining: record.draining }, record.draining ? 'origin draining' : 'origin undrained');
      }
      origin.record = record;
      origin.weight = Math.max(1, record.weight);
    }
    this.#configureChecker(origin, effectiveHealthCheck(snapshot.settings, record));
  }

  #remove(id: string, batch: number): void {
    const origin = this.#byId.get(id);
    if (origin === undefined) return;
    this.#byId.delete(id);
    this.#origins = null;
    this.#verdicts[origin.health.health]--;
    if (batch <= QUIET) this.#poolLine({ server: id, active: origin.active }, 'origin removed, draining');
    void origin.drain().then(() => this.#deps.log.debug({ server: id }, 'origin drained'));
  }

  /** A line about the pool's membership, at the level the owner chose (a worker: debug). */
  #poolLine(obj: object, msg: string): void {
    if (this.#deps.poolLog === 'debug') this.#deps.log.debug(obj, msg);
    else this.#deps.log.info(obj, msg);
  }

  #moveLast(id: string): void {
    const origin = this.#byId.get(id);
    if (origin === undefined) return;
    this.#byId.delete(id);
    this.#byId.set(id, origin);
    this.#origins = null;
  }

  /**
   * Refresh once the verdicts that arrived in this turn of the event loop are all in:
   * each refresh walks every origin, and 10,000 origins going down together would
   * otherwise cost 10,000 walks.
   */
  #refreshSoon(): void {
    if (this.#refreshPending !== null) return;
    this.#refreshPending = setImmediate(() => {
      this.#refreshPending = null;
      if (!this.#closed) this.refresh();
    });
  }

  /** Recompute candidates and fail-open after any routing-relevant change. */
  refresh(): void {
    if (this.#refreshPending !== null) clearImmediate(this.#refreshPending);
    this.#refreshPending = null;
    const now = this.#deps.now();
    const live: Origin[] = [];
    const eligible: Origin[] = [];
    for (const o of this.#byId.values()) {
      if (o.draining) continue;
      live.push(o);
      if (o.health.health !== 'unhealthy' && !o.passive.isEjected(now)) eligible.push(o);
    }
    const failOpen = eligible.length === 0 && live.length > 0;
    if (failOpen !== this.failOpen) {
      // Logged once per transition, not per request.
      const debug = this.#deps.poolLog === 'debug';
      if (failOpen) this.#deps.log[debug ? 'debug' : 'warn']({ servers: live.length }, 'all origins unhealthy: failing open to every non-draining origin');
      else this.#deps.log[debug ? 'debug' : 'info']({ healthy: eligible.length }, 'fail-open ended: healthy origins available');
    }
    this.failOpen = failOpen;
    this.#ownCandidates = failOpen ? live : eligible;
    this.#balancer.reset?.();
  }

  /**
   * Pick an origin for a new attempt, avoiding those already tried by this request.
   * With `sameIfLast`, an already tried origin may be picked again when no other is
   * left: a reset on a reused keep-alive connection usually means the origin closed it
   * just as the request went out, and a fresh connection to the same origin succeeds.
   */
  select(tried: readonly Origin[] | null, sameIfLast = false): Origin | null {
    const candidates = this.#ownCandidates;
    if (tried === null) return this.#balancer.pick(candidates);
    const rest = candidates.filter((o) => !tried.includes(o));
    if (rest.length === 0 && sameIfLast) return this.#balancer.pick(candidates);
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

  /**
   * A verdict decided elsewhere (the node process's checks, for a worker): applied as
   * is, routing recomputed when it changes. Unknown servers are ignored (the snapshot
   * that adds them comes first on the same channel).
   */
  applyHealth(serverId: string, health: Health, lastCheck?: CheckResult): void {
    const origin = this.#byId.get(serverId);
    if (origin === undefined) return;
    if (lastCheck !== undefined) origin.health.lastCheck = lastCheck;
    const before = origin.health.health;
    if (before === health) return;
    origin.health.health = health;
    this.#verdicts[before]--;
    this.#verdicts[health]++;
    // As for local verdicts: only a move to or from unhealthy changes routing.
    if (before === 'unhealthy' || health === 'unhealthy') this.#refreshSoon();
  }

  /** Every server's current verdict (what a new worker starts from). */
  healthTable(): { id: string; health: Health; lastCheck?: CheckResult }[] {
    return this.origins.map((o) => (o.health.lastCheck === undefined ? { id: o.id, health: o.health.health } : { id: o.id, health: o.health.health, lastCheck: o.health.lastCheck }));
  }

  #configureChecker(origin: Origin, spec: HealthCheckSpec): void {
    if (this.#deps.healthChecks === 'external') return;
    const enabled = this.#deps.healthChecks && spec.enabled;
    if (origin.checker !== null && enabled && sameSpec(origin.checker.spec, spec)) return;
    origin.checker?.stop();
    origin.checker = null;
    origin.checkSpec = enabled ? spec : null;
    if (!enabled) {
      if (origin.health.health !== 'unknown') {
        this.#verdicts[origin.health.health]--;
        this.#verdicts.unknown++;
        origin.health.reset();
        this.#deps.onHealthChange?.(origin.id, 'unknown', origin.health.lastCheck);
      }
      return;
    }
    const checker = new ActiveChecker(spec, {
      target: { host: origin.ip, port: origin.port, tls: this.#deps.originTls },
      host: origin.authority,
      random: this.#deps.random,
      now: this.#deps.now,
      onResult: (result) => {
        if (origin.checker !== checker) return;
        if (result.ok) this.checksPassed++;
        else this.checksFailed++;
        const before = origin.health.health;
        if (!origin.health.record(result, spec)) return;
        const after = origin.health.health;
        this.#verdicts[before]--;
        this.#verdicts[after]++;
        this.#healthLog.changed({ server: origin.id, from: before, to: after, status: result.status, error: result.error });
        // unknown ↔ healthy changes nothing for routing; only a move to or from unhealthy
        // does. Verdicts arriving together (a storm) share one refresh.
        if (before === 'unhealthy' || after === 'unhealthy') this.#refreshSoon();
        this.#deps.onHealthChange?.(origin.id, after, result);
      },
    });
    origin.checker = checker;
    checker.start(this.#spreadFirstChecks ? Math.floor(this.#deps.random() * spec.intervalMs) : 0);
  }

  /** Stop every checker and timer; close pools gracefully or not. */
  async close(graceful: boolean): Promise<void> {
    this.#closed = true;
    if (this.#refreshPending !== null) clearImmediate(this.#refreshPending);
    this.#healthLog.close();
    const all = [...this.#byId.values()];
    this.#byId.clear();
    this.#origins = [];
    this.#ownCandidates = [];
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

/**
 * A change after which the candidates are the old ones plus the added servers: a new
 * server, or one changed in place (weight, health-check settings) without being drained
 * or undrained. A removal, a drain or a server removed and added again needs the walk.
 */
function keepsRouting(c: ServerChangeView): boolean {
  if (c.after === undefined) return false;
  if (c.before === undefined) return true;
  return c.before.createdIndex === c.after.createdIndex && c.before.draining === c.after.draining;
}
