// In-memory doubles for tests in other packages (`@weldr/store/testing`).
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
