// Errors about a node's data directory, in operator terms: shared by the single-node
// store and the cluster, which both open a LevelDB database under --data.

/** The store could not be opened; the message says why in operator terms. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
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
