// Health verdict changes as an operator can read them at any pool size. One change in
// a quiet moment is logged at once, as before; changes that follow within `windowMs`
// are gathered into one summary line per window — how many origins went which way, a
// few of them by name, and the pool's totals — instead of one line per origin (10,000
// origins going down at once used to write 10,000 warnings). Every single change is
// still logged at debug level.
import type { Health } from './health-state.js';
import type { Logger } from '../types.js';

/** How many origins a summary names; the rest are counted. */
const NAMED = 5;

export interface HealthChange {
  readonly server: string;
  readonly from: Health;
  readonly to: Health;
  readonly status?: number;
  readonly error?: string;
}

export interface HealthTotals {
  readonly healthy: number;
  readonly unhealthy: number;
  readonly unknown: number;
}

export class HealthLog {
  readonly #log: Logger;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #totals: () => HealthTotals;
  #buffer: HealthChange[] = [];
  #timer: NodeJS.Timeout | null = null;
  #lastLine = -Infinity;

  constructor(log: Logger, totals: () => HealthTotals, options: { windowMs?: number; now?: () => number } = {}) {
    this.#log = log;
    this.#totals = totals;
    this.#windowMs = options.windowMs ?? 1_000;
    this.#now = options.now ?? Date.now;
  }

  changed(c: HealthChange): void {
    this.#log.debug({ server: c.server, from: c.from, to: c.to, status: c.status, error: c.error }, 'origin health changed');
    this.#buffer.push(c);
    if (this.#timer !== null) return;
    const wait = this.#lastLine + this.#windowMs - this.#now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, wait);
    this.#timer.unref();
  }

  /** Write what is gathered now (also at close). */
  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const changes = this.#buffer;
    if (changes.length === 0) return;
    this.#buffer = [];
    this.#lastLine = this.#now();
    const totals = this.#totals();
    const down = changes.filter((c) => c.to === 'unhealthy');
    const level = down.length > 0 ? 'warn' : 'info';
    if (changes.length === 1) {
      const c = changes[0]!;
      this.#log[level]({ server: c.server, from: c.from, to: c.to, status: c.status, error: c.error, ...totals }, `origin health changed: ${c.server} ${c.from} → ${c.to}`);
      return;
    }
    const up = changes.filter((c) => c.to === 'healthy');
    const name = (list: HealthChange[]): string =>
      list
        .slice(0, NAMED)
        .map((c) => (c.error !== undefined ? `${c.server} (${c.error})` : c.status !== undefined && c.to === 'unhealthy' ? `${c.server} (${c.status})` : c.server))
        .join(', ') + (list.length > NAMED ? `, and ${list.length - NAMED} more` : '');
    const parts: string[] = [];
    if (down.length > 0) parts.push(`${down.length} became unhealthy: ${name(down)}`);
    if (up.length > 0) parts.push(`${up.length} became healthy: ${name(up)}`);
    const other = changes.length - down.length - up.length;
    if (other > 0) parts.push(`${other} other changes`);
    this.#log[level](
      { wentUnhealthy: down.length, wentHealthy: up.length, changes: changes.length, servers: down.concat(up).slice(0, NAMED).map((c) => c.server), ...totals },
      `origin health: ${parts.join('; ')} (now ${totals.healthy} healthy, ${totals.unhealthy} unhealthy, ${totals.unknown} unknown)`,
    );
  }

  close(): void {
    this.flush();
  }
}
