// The bounded table of recently applied request ids. It is part of the replicated state:
// every replica must remember and forget exactly the same ids, or a retried write could
// be a duplicate on one node and a fresh write on another. Eviction is therefore a pure
// function of the applied sequence: keep the most recent entries by log index, at most
// `maxEntries` of them and at most `maxWeight` weight (a Batch outcome weighs one per
// sub-result, so a run of 1000-command batches cannot pin gigabytes).
//
// Stored as chunks of at most CHUNK_SIZE entries, so remembering one id copies the short
// list of chunks instead of the whole table; the chunking itself is invisible (no effect
// on what is kept), so a table rebuilt from disk behaves exactly like the original.
import type { CommandOutcome } from './types.js';

export interface RememberedRequest {
  readonly requestId: string;
  /** Log index at which the request was first applied. */
  readonly index: number;
  readonly fingerprint: string;
  readonly outcome: CommandOutcome;
}

export interface RequestTableLimits {
  readonly maxEntries: number;
  readonly maxWeight: number;
}

/** Part of the replicated protocol: change only with a state-format version bump. */
export const DEFAULT_REQUEST_LIMITS: RequestTableLimits = Object.freeze({ maxEntries: 10_000, maxWeight: 100_000 });

/**
 * A lookup of an id never seen (every write's own, generated id) asks every chunk's
 * index: 10,000 ids in chunks of 1,024 are 10 Map lookups (~1.2 µs with the append; in
 * chunks of 256, 40 of them: ~3.5 µs). Appending costs the same at any size.
 */
const CHUNK_SIZE = 1024;

/**
 * One version of a chunk: the first `length` entries of `all`. The versions of a filling
 * chunk share `all` and `at`, which are only ever appended to, never changed — a version
 * made earlier still sees exactly its own entries — so remembering an id costs O(1)
 * instead of a copy of the chunk (and a lookup one Map get instead of a scan). Appending
 * to a version that is not the newest of its chunk (a table forked from an older state)
 * copies its entries into a chunk of its own.
 */
interface Chunk {
  readonly all: readonly RememberedRequest[];
  readonly length: number;
  /** Position in `all` of each id's latest use, in any version of the chunk. */
  readonly at: ReadonlyMap<string, number>;
}

/** The same, as the one version allowed to append may use them. */
interface Growing {
  readonly all: RememberedRequest[];
  readonly at: Map<string, number>;
}

export interface RequestTable {
  /** Oldest first. */
  readonly chunks: readonly Chunk[];
  /** Number of leading entries of chunks[0] that are already evicted. */
  readonly start: number;
  readonly size: number;
  readonly weight: number;
}

export const EMPTY_REQUEST_TABLE: RequestTable = Object.freeze({ chunks: Object.freeze([]), start: 0, size: 0, weight: 0 });

export function outcomeWeight(outcome: CommandOutcome): number {
  return outcome.ok && outcome.status === 'batch' ? outcome.results.reduce((w, r) => w + outcomeWeight(r), 1) : 1;
}

export function lookupRequest(table: RequestTable, requestId: string): RememberedRequest | undefined {
  // Newest chunk first: an id evicted and later reused lives in a newer chunk.
  for (let c = table.chunks.length - 1; c >= 0; c--) {
    const found = findIn(table.chunks[c]!, requestId);
    if (found === undefined) continue;
    if (c === 0 && found.index < (firstLive(table)?.index ?? Infinity)) return undefined;
    return found;
  }
  return undefined;
}

function findIn(chunk: Chunk, requestId: string): RememberedRequest | undefined {
  const at = chunk.at.get(requestId);
  if (at === undefined) return undefined;
  if (at < chunk.length) return chunk.all[at];
  // Its latest use is past this version's end (a newer version reused the id): this
  // version's own latest use, if any, is found newest first, as the chunks are searched.
  for (let i = chunk.length - 1; i >= 0; i--) if (chunk.all[i]!.requestId === requestId) return chunk.all[i];
  return undefined;
}

function firstLive(table: RequestTable): RememberedRequest | undefined {
  return entryAt(table.chunks[0], table.start);
}

/** The entry at position `i` of this version of a chunk (none past its length: a newer version's). */
function entryAt(chunk: Chunk | undefined, i: number): RememberedRequest | undefined {
  return chunk === undefined || i >= chunk.length ? undefined : chunk.all[i];
}

/** Oldest remembered entries first. */
export function* requestEntries(table: RequestTable): Generator<RememberedRequest> {
  for (let c = 0; c < table.chunks.length; c++) {
    const chunk = table.chunks[c]!;
    for (let i = c === 0 ? table.start : 0; i < chunk.length; i++) yield chunk.all[i]!;
  }
}

/** Newest first, while index > `after`: the entries an apply step (or several) added. */
export function* requestsAfter(table: RequestTable, after: number): Generator<RememberedRequest> {
  for (let c = table.chunks.length - 1; c >= 0; c--) {
    const chunk = table.chunks[c]!;
    const stop = c === 0 ? table.start : 0;
    for (let i = chunk.length - 1; i >= stop; i--) {
      const entry = chunk.all[i]!;
      if (entry.index <= after) return;
      yield entry;
    }
  }
}

/** Oldest first, while index < `before`: the entries an eviction dropped. */
export function* requestsBefore(table: RequestTable, before: number): Generator<RememberedRequest> {
  for (const entry of requestEntries(table)) {
    if (entry.index >= before) return;
    yield entry;
  }
}

/** Index of the oldest remembered entry, undefined for an empty table. */
export function oldestRequestIndex(table: RequestTable): number | undefined {
  return firstLive(table)?.index;
}

/** Appends an entry (its index must exceed every remembered index), then evicts. */
export function rememberRequest(table: RequestTable, entry: RememberedRequest, limits: RequestTableLimits): RequestTable {
  return append(table, entry, limits);
}

/** Rebuilds a table from entries in index order, without evicting (they were already bounded). */
export function requestTableFrom(entries: Iterable<RememberedRequest>): RequestTable {
  let table = EMPTY_REQUEST_TABLE;
  for (const entry of entries) table = append(table, entry, null);
  return table;
}

/** One copy of the chunk list per write: the entry goes in, then the oldest go out while over `limits` (none when null). */
function append(table: RequestTable, entry: RememberedRequest, limits: RequestTableLimits | null): RequestTable {
  const last = table.chunks[table.chunks.length - 1];
  if (last !== undefined && last.length > 0 && entry.index <= last.all[last.length - 1]!.index) {
    throw new RangeError(`request index ${entry.index} is not after the last remembered index`);
  }
  const chunks = table.chunks.slice();
  if (last === undefined || last.length >= CHUNK_SIZE) {
    chunks.push(chunkWith(null, entry));
  } else {
    chunks[chunks.length - 1] = chunkWith(last, entry);
  }
  let start = table.start;
  let size = table.size + 1;
  let weight = table.weight + outcomeWeight(entry.outcome);
  // Always keep the newest entry, even if it alone is heavier than maxWeight: its
  // client is the one most likely to retry.
  while (limits !== null && size > 1 && (size > limits.maxEntries || weight > limits.maxWeight)) {
    const oldest = entryAt(chunks[0], start);
    if (oldest === undefined) break;
    size -= 1;
    weight -= outcomeWeight(oldest.outcome);
    start += 1;
    if (start >= (chunks[0]?.length ?? 0)) {
      chunks.shift();
      start = 0;
    }
  }
  // The arrays are not frozen (readonly types keep our code off them): V8 copies a frozen
  // array (slice, spread) by a slow generic path, ~50× slower — and a copy is made on
  // every write (measured: a frozen 600-element slice 18 µs, unfrozen 0.3 µs).
  return Object.freeze({ chunks, start, size, weight });
}

/** `chunk` (null: a new, empty one) with `entry` after its entries. */
function chunkWith(chunk: Chunk | null, entry: RememberedRequest): Chunk {
  let grow: Growing;
  if (chunk === null) {
    grow = { all: [], at: new Map() };
  } else if (chunk.length === chunk.all.length) {
    // The newest version: the arrays are ours to append to (the types say readonly to
    // everyone else).
    grow = chunk as unknown as Growing;
  } else {
    // An older version: a newer one has appended past it already. Its own entries only.
    const all = chunk.all.slice(0, chunk.length);
    const at = new Map<string, number>();
    for (let i = 0; i < all.length; i++) at.set(all[i]!.requestId, i);
    grow = { all, at };
  }
  grow.at.set(entry.requestId, grow.all.length);
  grow.all.push(entry);
  return Object.freeze({ all: grow.all, length: grow.all.length, at: grow.at });
}
