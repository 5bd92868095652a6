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
  try {
    // Inside the try: a --data that names a file, or a parent we may not write, is an
    // operator error to report in one line, not a crash with a stack trace.
    await mkdir(config.data, { recursive: true });
    return await LevelPoolStore.open({ location: config.data, onListenerError });
  } catch (err) {
    throw dataDirError(config.data, err);
  }
}

/** A failure to create or open the data directory (either store kind), in operator terms. */
export function dataDirError(data: string, err: unknown): StoreOpenError {
  return new StoreOpenError(openFailure(data, err), { cause: err });
}

/** The reason a data directory could not be opened, in operator terms. */
function openFailure(data: string, err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.cause?.code === 'LEVEL_LOCKED') return `data directory ${data} is in use by another process`;
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR') return `cannot use ${data} as the data directory: a file is in the way (it must be a directory)`;
  // abstract-level's own message ("Database failed to open") says nothing; the cause
  // (LevelDB's "Corruption: …", "IO error: …") is what the operator needs.
  const detail = e.code === 'LEVEL_DATABASE_NOT_OPEN' && e.cause?.message !== undefined ? e.cause.message : (e.message ?? String(err));
  return `cannot open data directory ${data}: ${detail}`;
}

/** The store could not be opened; the message says why in operator terms. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
}
