// One LevelDB batch, without abstract-level's work per operation.
//
// db.batch() clones every operation, looks up and runs its encodings, and checks for
// hooks and write listeners before handing the batch to classic-level's native
// binding. For the Raft log's writes — a few small operations each, every admin write,
// on every node — that was about half of the batch's CPU time (measured: ~60 µs of
// ~120 µs in the calling thread for six operations). The keys and values written here
// are already in a form the binding takes as they are (strings, which it encodes as
// UTF-8 — the 'utf8' encoding — and Uint8Arrays — 'view'), no hook or listener is
// ever installed on the database, and no sublevel is used; so for an open classic-level
// database the batch goes to its `_batch` (the implementation's method that
// abstract-level itself calls). Any other database (memory-level in tests), or one that
// is not open, takes the public path, which checks and fails as it should.
import { Level } from 'level';
import type { PoolDb } from './layout.js';

export type RawOp =
  | { readonly type: 'put'; readonly key: string; readonly value: string | Uint8Array }
  | { readonly type: 'del'; readonly key: string };

interface RawBatch {
  _batch(ops: readonly RawOp[], options: { sync: boolean }): Promise<void>;
}

/**
 * Writes `ops` as one atomic batch, synced when `sync` (classic-level's option). Keys and
 * values must be strings (UTF-8) or Uint8Arrays: the same bytes the 'utf8' and 'view'
 * encodings would store.
 */
export function writeBatch(db: PoolDb, ops: readonly RawOp[], sync: boolean): Promise<void> {
  if (db instanceof Level && db.status === 'open' && typeof (db as unknown as Partial<RawBatch>)._batch === 'function') {
    return (db as unknown as RawBatch)._batch(ops, { sync });
  }
  return db.batch(ops.map(withEncodings) as never, { sync } as never) as Promise<void>;
}

function withEncodings(op: RawOp): object {
  if (op.type === 'del') return { type: 'del', key: op.key, keyEncoding: 'utf8' };
  return { type: 'put', key: op.key, value: op.value, keyEncoding: 'utf8', valueEncoding: typeof op.value === 'string' ? 'utf8' : 'view' };
}
