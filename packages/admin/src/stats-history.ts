// A short memory of this node's request counters, so the status page can draw request
// and error rates over the last minutes as soon as it opens (Prometheus keeps the long
// history; this is for an operator without one). Cumulative counters are kept, not
// rates: the page divides differences by the time between samples, so a late timer
// never distorts a rate.
import type { ProxyStatsView, ProxyTotalsView } from './deps.js';

export interface StatsSample {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly client: { readonly success: number; readonly failed: number };
  readonly server: { readonly success: number; readonly failed: number };
  /** Requests in flight at that moment (sum over origins). */
  readonly active: number;
}

export interface StatsHistoryView {
  readonly intervalMs: number;
  /** Oldest first. */
  readonly samples: readonly StatsSample[];
}

export interface StatsHistoryOptions {
  /** Default 5000 ms. */
  readonly intervalMs?: number;
  /** Samples kept. Default 180 (15 minutes at 5 s). */
  readonly keep?: number;
  readonly now?: () => number;
}

export class StatsHistory {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly samples: StatsSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /**
     * The node's figures (its totals, or its stats with every server); a promise when they
     * are gathered from worker processes.
     */
    private readonly source: () => ProxyTotalsView | ProxyStatsView | Promise<ProxyTotalsView | ProxyStatsView>,
    options: StatsHistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.keep = options.keep ?? 180;
    this.now = options.now ?? Date.now;
    if (!Number.isSafeInteger(this.intervalMs) || this.intervalMs <= 0) throw new TypeError(`intervalMs must be a positive integer, got ${this.intervalMs}`);
    if (!Number.isSafeInteger(this.keep) || this.keep < 2) throw new TypeError(`keep must be an integer of at least 2, got ${this.keep}`);
  }

  /** Take a sample now (the timer's job; tests call it directly). A failed read is skipped. */
  async sample(): Promise<void> {
    const at = this.now();
    let s: ProxyTotalsView | ProxyStatsView;
    try {
      s = await this.source();
    } catch {
      return; // a worker being restarted: the next sample will do
    }
    let active = 0;
    if ('originActive' in s) active = s.originActive;
    else for (const server of s.servers) active += server.active;
    this.samples.push({ at, client: { success: s.client.success, failed: s.client.failed }, server: { success: s.server.success, failed: s.server.failed }, active });
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
  }

  /** Sample now and then every intervalMs, until stop(). */
  start(): void {
    if (this.timer !== null) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  view(): StatsHistoryView {
    return { intervalMs: this.intervalMs, samples: [...this.samples] };
  }
}
