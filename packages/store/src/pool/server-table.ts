// The pool's servers as a persistent map: what PoolState.servers holds. A write (add,
// update, remove) returns a new table that shares everything else with the old one, at
// a cost that does not grow with the pool — a copied Map cost O(n) per command, which at
// 10,000 servers was most of a write's CPU — and two versions tell their difference by
// walking only what differs (changesSince), for the disk write and the proxy.
//
// Two structures share the records:
//   byId   a HashTrie from id to record (lookups, diffs);
//   order  the records in canonical order — by createdIndex, then id — in leaves of at
//          most LEAF records under one root array. New servers always sort last (their
//          createdIndex is the newest), so most writes touch the last leaf; a write
//          copies one leaf and the root's n/LEAF pointers (157 for 10,000 servers).
//          Neither the root nor the leaves are frozen (they never leave this module):
//          V8 copies a frozen array (slice, spread) by a slow generic path, and with()
//          on a 20,000-server table took 25 µs instead of 13.
import { HashTrie } from './hash-trie.js';
import type { ServerRecord } from './types.js';

const LEAF = 64;
/** A leaf this small is merged with a neighbour when they fit in one. */
const SMALL = LEAF / 4;

/** One server that differs between two tables: added (no before), removed (no after) or changed. */
export interface ServerChange {
  readonly id: string;
  readonly before: ServerRecord | undefined;
  readonly after: ServerRecord | undefined;
}

type Leaf = readonly ServerRecord[];

/** Canonical order: createdIndex, then id. */
export function compareServers(a: ServerRecord, b: ServerRecord): number {
  if (a.createdIndex !== b.createdIndex) return a.createdIndex - b.createdIndex;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class ServerTable implements ReadonlyMap<string, ServerRecord> {
  static readonly EMPTY = new ServerTable(HashTrie.empty<ServerRecord>(), []);

  #list: readonly ServerRecord[] | undefined;

  private constructor(
    private readonly byId: HashTrie<ServerRecord>,
    private readonly order: readonly Leaf[],
  ) {}

  /** A table of `records`, which must be in canonical order with distinct ids. */
  static from(records: Iterable<ServerRecord>): ServerTable {
    let byId = HashTrie.empty<ServerRecord>();
    const order: Leaf[] = [];
    let leaf: ServerRecord[] = [];
    let prev: ServerRecord | undefined;
    for (const r of records) {
      if (prev !== undefined && compareServers(prev, r) >= 0) throw new RangeError(`server ${r.id} is out of canonical order after ${prev.id}`);
      byId = byId.set(r.id, r);
      leaf.push(r);
      if (leaf.length === LEAF) {
        order.push(leaf);
        leaf = [];
      }
      prev = r;
    }
    if (leaf.length > 0) order.push(leaf);
    return order.length === 0 ? ServerTable.EMPTY : new ServerTable(byId, order);
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ServerRecord | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.get(id) !== undefined;
  }

  /**
   * A table with `record` in it: replacing the server with the same id in place when it
   * has the same createdIndex, else (new, or removed and added again) at its canonical
   * position.
   */
  with(record: ServerRecord): ServerTable {
    const old = this.byId.get(record.id);
    if (old === record) return this;
    if (old !== undefined && old.createdIndex === record.createdIndex) {
      const [l, k] = this.locate(old);
      const leaf = this.order[l]!.slice();
      leaf[k] = record;
      return new ServerTable(this.byId.set(record.id, record), replaceLeaves(this.order, l, 1, [leaf]));
    }
    const base = old === undefined ? this : this.without(record.id);
    return new ServerTable(base.byId.set(record.id, record), insertOrdered(base.order, record));
  }

  /** A table without the server `id` (this one when it is absent). */
  without(id: string): ServerTable {
    const old = this.byId.get(id);
    if (old === undefined) return this;
    const [l, k] = this.locate(old);
    const leaf = this.order[l]!.filter((_, i) => i !== k);
    let order: readonly Leaf[];
    if (leaf.length === 0) order = replaceLeaves(this.order, l, 1, []);
    else if (leaf.length < SMALL && l + 1 < this.order.length && leaf.length + this.order[l + 1]!.length <= LEAF) {
      order = replaceLeaves(this.order, l, 2, [[...leaf, ...this.order[l + 1]!]]);
    } else if (leaf.length < SMALL && l > 0 && leaf.length + this.order[l - 1]!.length <= LEAF) {
      order = replaceLeaves(this.order, l - 1, 2, [[...this.order[l - 1]!, ...leaf]]);
    } else order = replaceLeaves(this.order, l, 1, [leaf]);
    return new ServerTable(this.byId.delete(id), order);
  }

  /** The servers that differ from `earlier` (by reference); cheap when one derives from the other. */
  changesSince(earlier: ServerTable): ServerChange[] {
    if (earlier === this) return [];
    return this.byId.diff(earlier.byId).map((c) => ({ id: c.key, before: c.before, after: c.after }));
  }

  /** The servers in canonical order, as one frozen array (built once per table, on demand). */
  list(): readonly ServerRecord[] {
    if (this.#list === undefined) {
      const out: ServerRecord[] = [];
      for (const leaf of this.order) for (const r of leaf) out.push(r);
      this.#list = Object.freeze(out);
    }
    return this.#list;
  }

  *values(): MapIterator<ServerRecord> {
    for (const leaf of this.order) yield* leaf;
  }

  *keys(): MapIterator<string> {
    for (const leaf of this.order) for (const r of leaf) yield r.id;
  }

  *entries(): MapIterator<[string, ServerRecord]> {
    for (const leaf of this.order) for (const r of leaf) yield [r.id, r];
  }

  [Symbol.iterator](): MapIterator<[string, ServerRecord]> {
    return this.entries();
  }

  forEach(fn: (value: ServerRecord, key: string, map: ReadonlyMap<string, ServerRecord>) => void, thisArg?: unknown): void {
    for (const r of this.values()) fn.call(thisArg, r, r.id, this);
  }

  /** [leaf, position] of a record that is in the table. */
  private locate(record: ServerRecord): [number, number] {
    const l = leafFor(this.order, record);
    const leaf = this.order[l]!;
    let lo = 0;
    let hi = leaf.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareServers(leaf[mid]!, record);
      if (c === 0) return [l, mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    throw new Error(`server table: ${record.id} is indexed but not in order`);
  }
}

/** The leaf where `record` is or would go: the last whose first record is not after it (0 if none). */
function leafFor(order: readonly Leaf[], record: ServerRecord): number {
  let lo = 0;
  let hi = order.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (compareServers(order[mid]![0]!, record) <= 0) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function insertOrdered(order: readonly Leaf[], record: ServerRecord): readonly Leaf[] {
  if (order.length === 0) return [[record]];
  const l = leafFor(order, record);
  const leaf = order[l]!.slice();
  let k = leaf.length;
  while (k > 0 && compareServers(leaf[k - 1]!, record) > 0) k--;
  leaf.splice(k, 0, record);
  if (leaf.length <= LEAF) return replaceLeaves(order, l, 1, [leaf]);
  // Split a full leaf; the last one splits unevenly, as appends keep filling it.
  const at = l === order.length - 1 && k === leaf.length - 1 ? LEAF : leaf.length >> 1;
  return replaceLeaves(order, l, 1, [leaf.slice(0, at), leaf.slice(at)]);
}

function replaceLeaves(order: readonly Leaf[], at: number, count: number, leaves: ServerRecord[][]): readonly Leaf[] {
  const next = order.slice();
  next.splice(at, count, ...leaves);
  return next;
}
