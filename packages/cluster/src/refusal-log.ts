// Refused connections, logged so that a flood cannot flood the log. The first refusal
// after a quiet spell is logged at once, in full (a misconfigured member shows up
// immediately); the ones after it within the interval are only counted, and one summary
// line per interval says how many, why, and from how many sources. So a churn of 100,000
// hostile connections costs a handful of lines, not 100,000.
export interface RefusalLogger {
  warn(obj: object, msg: string): void;
}

export interface RefusalLogOptions {
  readonly log: RefusalLogger;
  /** What is refused, for the messages: e.g. "raft connection". */
  readonly what: string;
  /** Event name of the log lines. */
  readonly event: string;
  /** Length of one summary interval, ms. */
  readonly intervalMs: number;
}

/** Distinct sources remembered per interval; beyond that they are only counted. */
const MAX_SOURCES = 1024;
const EXAMPLES = 5;

export class RefusalLog {
  private readonly totals = new Map<string, number>();
  private windowCount = 0;
  private windowReasons = new Map<string, number>();
  private windowSources = new Set<string>();
  private moreSources = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: RefusalLogOptions) {}

  /** A connection from `source` was refused for `reason` (a short code); `detail` goes into the first line only. */
  note(reason: string, source: string, detail: Record<string, unknown> = {}): void {
    this.count(reason);
    if (this.timer === null) {
      this.opts.log.warn({ event: this.opts.event, reason, source, ...detail }, `${this.opts.what} refused: ${typeof detail.why === 'string' ? detail.why : reason}`);
      this.openWindow();
      return;
    }
    this.windowCount++;
    this.windowReasons.set(reason, (this.windowReasons.get(reason) ?? 0) + 1);
    if (this.windowSources.size < MAX_SOURCES) this.windowSources.add(source);
    else if (!this.windowSources.has(source)) this.moreSources = true;
  }

  /** Counts a refusal without logging it (an expected one: the caller logs it at a lower level, or not at all). */
  count(reason: string): void {
    this.totals.set(reason, (this.totals.get(reason) ?? 0) + 1);
  }

  /** Refusals so far by reason, since the start (for metrics). */
  counts(): ReadonlyMap<string, number> {
    return this.totals;
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }

  private openWindow(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      // A quiet interval closes the window: the next refusal is logged at once again.
      if (this.flush()) this.openWindow();
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Logs the summary of the interval, if anything was refused in it. */
  private flush(): boolean {
    if (this.windowCount === 0) return false;
    const sources = this.windowSources.size;
    this.opts.log.warn(
      {
        event: this.opts.event,
        refused: this.windowCount,
        reasons: Object.fromEntries(this.windowReasons),
        sources: this.moreSources ? `${sources}+` : sources,
        examples: [...this.windowSources].slice(0, EXAMPLES),
        intervalMs: this.opts.intervalMs,
      },
      `${this.windowCount} more ${this.opts.what}s refused in the last ${Math.round(this.opts.intervalMs / 1000)} s (${[...this.windowReasons].map(([r, n]) => `${r}: ${n}`).join(', ')}) from ${this.moreSources ? `over ${sources}` : sources} source(s)`,
    );
    this.windowCount = 0;
    this.windowReasons = new Map();
    this.windowSources = new Set();
    this.moreSources = false;
    return true;
  }
}
