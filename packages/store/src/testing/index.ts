// In-memory doubles for tests in other packages (`@weldr/store/testing`).
import { cpus } from 'node:os';
import { applyCommand } from '../pool/state-machine.js';
import { initialState, snapshotOf } from '../pool/state.js';
import type { PoolCommand, PoolSnapshot } from '../pool/types.js';

export { MemoryPoolStore } from '../stores/memory-store.js';
export type { MemoryPoolStoreOptions } from '../stores/memory-store.js';

/**
 * A snapshot built by applying `commands` in order at indexes 1..n, e.g.
 * `buildSnapshot([{ type: 'AddServer', ip: '127.0.0.1', port: 9001, weight: 3 }])`.
 * Throws if any command fails, so a typo in a fixture cannot go unnoticed.
 */
export function buildSnapshot(commands: readonly PoolCommand[]): PoolSnapshot {
  let state = initialState();
  for (const [i, command] of commands.entries()) {
    const applied = applyCommand(state, i + 1, { requestId: `fixture-${i + 1}`, command });
    if (!applied.result.outcome.ok) throw new Error(`fixture command ${i} failed: ${applied.result.outcome.message}`);
    state = applied.state;
  }
  return snapshotOf(state);
}

/**
 * A seeded xorshift32 in [0, 1): the same sequence for the same seed, so a failing
 * randomized test can be replayed (and an Upstream's `random` made deterministic).
 */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * What every upper bound in a test that waits on real processes, sockets or disks is
 * multiplied by: a bound is how long to wait before calling something broken, and a
 * small machine under load (CI: 2 cores, other test files running) needs longer than a
 * laptop. WELDR_TEST_TIME_SCALE overrides it.
 */
export const TEST_TIME_SCALE = ((): number => {
  const fromEnv = Number(process.env['WELDR_TEST_TIME_SCALE']);
  if (Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return cpus().length <= 2 ? 2 : 1;
})();
