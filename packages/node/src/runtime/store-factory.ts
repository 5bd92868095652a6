// Opens the PoolStore the configuration asks for.
import { mkdir } from 'node:fs/promises';
import { LevelPoolStore, MemoryPoolStore, type PoolStore } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { Logger } from './logger.js';

export async function openStore(config: NodeConfig, log: Logger): Promise<PoolStore> {
  // A subscriber that throws has a bug; the write it observed is applied all the same,
  // so log it loudly instead of crashing the data plane.
  const onListenerError = (err: unknown): void => log.error({ err, event: 'subscriber_failed' }, 'pool subscriber failed');
  if (config.store === 'memory') return new MemoryPoolStore({ onListenerError });
  await mkdir(config.data, { recursive: true });
  try {
    return await LevelPoolStore.open({ location: config.data, onListenerError });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') throw new StoreOpenError(`data directory ${config.data} is in use by another process`, { cause: err });
    throw new StoreOpenError(`cannot open data directory ${config.data}: ${(err as Error).message}`, { cause: err });
  }
}

/** The store could not be opened; the message says why in operator terms. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
}
