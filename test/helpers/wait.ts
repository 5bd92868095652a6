import { cpus } from 'node:os';

/** Resolves after ms milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Every upper bound in the e2e suite is multiplied by this: a bound is how long to wait
 * before calling something broken, and a small machine under load (CI: 2 cores, other
 * test files running) needs longer than a laptop. WELDR_TEST_TIME_SCALE overrides it.
 */
export const TIME_SCALE = ((): number => {
  const fromEnv = Number(process.env.WELDR_TEST_TIME_SCALE);
  if (Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return cpus().length <= 2 ? 2 : 1;
})();

/** A bound scaled for this machine (see TIME_SCALE). */
export const scaled = (ms: number): number => Math.round(ms * TIME_SCALE);

/**
 * Polls `check` until it returns a value other than undefined, or fails after
 * `timeoutMs` (scaled) with `what` in the message. Bounded in time; the interval is short
 * so that the test is driven by the event, not by a guessed delay.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const bound = scaled(timeoutMs);
  const deadline = Date.now() + bound;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${bound} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects with a clear message if `promise` does not settle within ms (scaled). */
export function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  const bound = scaled(ms);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${bound} ms waiting for ${what}`)), bound);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
