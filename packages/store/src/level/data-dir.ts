// Errors about a node's data directory, in operator terms: shared by the single-node
// store and the cluster, which both open a LevelDB database under --data.

/** The store could not be opened; the message says why in operator terms. */
export class StoreOpenError extends Error {
  override readonly name: string = 'StoreOpenError';
}

/**
 * Why a data directory was refused:
 *   damaged      its files show lost or unreadable data
 *   lost-files   weldr set it up, but the database files are gone
 *   other-node   it belongs to another node id
 *   newer-format a newer weldr wrote it
 */
export type DataDirRefusal = 'damaged' | 'lost-files' | 'other-node' | 'newer-format';

/** What an operator can do about a damaged directory. */
export const DAMAGED_DIR_REMEDY =
  'restore the directory from a backup; a cluster member can instead be removed from the cluster and added back with an empty directory (docs/operations.md, "Damaged data directory")';

/**
 * weldr refuses to open this data directory: starting would serve or replicate a state
 * that lost acknowledged writes (or is not this node's). Restarting cannot help; the
 * node exits with its own status (docs/operations.md) so a supervisor stops retrying.
 */
export class DataDirRefusedError extends StoreOpenError {
  override readonly name = 'DataDirRefusedError';

  constructor(
    readonly reason: DataDirRefusal,
    readonly location: string,
    detail: string,
  ) {
    const remedy = reason === 'damaged' || reason === 'lost-files' ? `; ${DAMAGED_DIR_REMEDY}` : '';
    super(`refusing to open data directory ${location}: ${detail}${remedy}`);
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
