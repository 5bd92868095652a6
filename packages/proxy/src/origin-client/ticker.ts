// One coarse timer for every origin connection of the process, instead of a node timer
// per connection re-armed per phase (connect, response head, body idle, keep-alive):
// undici's own "fast timers" do the same for the same reason (a timer re-armed three
// times per request is measurable at 30k req/s). A connection sets `deadline`
// (performance.now() based, 0 = none); the ticker calls `expired()` once it has passed.
// A deadline fires up to one tick late, never early.

export interface Timed {
  deadline: number;
  expired(): void;
}

const timed = new Set<Timed>();
let tickMs = 250;
let interval: NodeJS.Timeout | null = null;

function tick(): void {
  const now = performance.now();
  for (const t of timed) if (t.deadline !== 0 && t.deadline <= now) t.expired();
}

/** The tick follows the shortest timeout any client uses (a quarter of it, 10..250 ms). */
export function requestResolution(shortestMs: number): void {
  const want = Math.max(10, Math.min(250, Math.floor(shortestMs / 4)));
  if (want >= tickMs) return;
  tickMs = want;
  if (interval !== null) {
    clearInterval(interval);
    interval = null;
    arm();
  }
}

function arm(): void {
  if (interval !== null || timed.size === 0) return;
  interval = setInterval(tick, tickMs);
  interval.unref();
}

export function watch(t: Timed): void {
  timed.add(t);
  arm();
}

export function unwatch(t: Timed): void {
  timed.delete(t);
  if (timed.size === 0 && interval !== null) {
    clearInterval(interval);
    interval = null;
  }
}
