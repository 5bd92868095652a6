// Opens the PoolStore the configuration asks for.
import { dataDirError, LevelPoolStore, MemoryPoolStore, StoreOpenError, type PoolStore } from '@weldr/store';
export { DataDirRefusedError, StoreOpenError } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { Logger } from './logger.js';
import type { NodeFailure } from './node-runtime.js';

export async function openStore(config: NodeConfig, log: Logger, onFatal: (failure: NodeFailure) => void): Promise<PoolStore> {
  // A subscriber that throws has a bug, and the proxy it feeds may now route with a
  // stale pool while everything looks healthy: stop the node (as in cluster mode).
  const onListenerError = (err: unknown): void => {
    const error = err instanceof Error ? err : new Error(String(err));
    onFatal({ kind: 'listener', error, message: `a pool subscriber threw (${error.message}): this is a bug; the node stops; restart it, and report the bug with this log` });
  };
  if (config.store === 'memory') return new MemoryPoolStore({ onListenerError });
  try {
    // Inside the try: a --data that names a file, or a parent we may not write, is an
    // operator error to report in one line, not a crash with a stack trace. (The
    // directory itself is made by the store's DataDir.open.)
    return await LevelPoolStore.open({
      location: config.data,
      nodeId: config.id,
      log: log.child({ component: 'data-dir' }),
      onListenerError,
      onFatal: (failure) =>
        onFatal({
          kind: 'storage',
          data: config.data,
          error: failure,
          message: `${failure.message}: the node gave up its role and stops; free space or repair the file system, then restart it (every acknowledged write is on disk)`,
        }),
    });
  } catch (err) {
    if (err instanceof StoreOpenError) throw err;
    throw dataDirError(config.data, err);
  }
}
