import { initialState, type PoolState } from '../pool/state.js';
import type { ApplyResult, PoolCommand, ProposeOptions } from '../pool/types.js';
import { LocalPoolStore, type LocalStoreOptions } from './local-store.js';

export interface MemoryPoolStoreOptions extends LocalStoreOptions {
  /** Start from this state instead of the empty pool (e.g. a deserialised snapshot). */
  readonly initial?: PoolState;
}

/**
 * A single-node, non-durable PoolStore: each proposal is validated and applied
 * synchronously. Used by tests everywhere and by a node that runs without persistence.
 */
export class MemoryPoolStore extends LocalPoolStore {
  constructor(options: MemoryPoolStoreOptions = {}) {
    super(options.initial ?? initialState(), options);
  }

  async propose(command: PoolCommand, options: ProposeOptions = {}): Promise<ApplyResult> {
    const { state, result } = this.applyNext(this.prepare(command, options));
    this.publish(state);
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopNotifying();
  }
}
