// Opens the PoolStore the configuration asks for.
import { mkdir } from 'node:fs/promises';
import { dataDirError, LevelPoolStore, MemoryPoolStore, type PoolStore } from '@weldr/store';
export { StoreOpenError } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { Logger } from './logger.js';

export async function openStore(config: NodeConfig, log: Logger): Promise<PoolStore> {
  // A subscriber that throws has a bug; the write it observed is applied all the same,
  // so log it loudly instead of crashing the data plane.
  const onListenerError = (err: unknown): void => log.error({ err, event: 'subscriber_failed' }, 'pool subscriber failed');
  if (config.store === 'memory') return new MemoryPoolStore({ onListenerError });
  try {
    // Inside the try: a --data that names a file, or a parent we may not write, is an
    // operator error to report in one line, not a crash with a stack trace.
    await mkdir(config.data, { recursive: true });
    return await LevelPoolStore.open({ location: config.data, onListenerError });
  } catch (err) {
    throw dataDirError(config.data, err);
  }
}
