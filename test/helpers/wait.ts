import { TEST_TIME_SCALE } from '@weldr/store/testing';

/** Resolves after ms milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every upper bound in the e2e suite is multiplied by this (`@weldr/store/testing`). */
export const TIME_SCALE = TEST_TIME_SCALE;

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
