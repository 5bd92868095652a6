// A persistent (immutable, structurally shared) hash trie from strings to values: the
// id index of the pool's server table. set and delete copy only the path to the key —
// at most seven 32-slot nodes, about three for 10,000 keys — so a write costs the same
// whatever the pool's size, and two versions share every untouched node, which makes
// their difference cheap to find (diff walks only the nodes that differ).
//
// Bagwell's hash array mapped trie without the bitmap compression: each branch is a
// plain 32-slot array. Keys are hashed with 32-bit FNV-1a, five bits per level; keys
// whose whole hashes collide share a bucket.

const BITS = 5;
const MASK = (1 << BITS) - 1;
const WIDTH = 1 << BITS;

/** 32-bit FNV-1a over the string's UTF-16 code units. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

class Leaf<V> {
  constructor(
    readonly key: string,
    readonly hash: number,
    readonly value: V,
  ) {}
}

/** Keys whose 32-bit hashes are equal. */
class Bucket<V> {
  constructor(
    readonly hash: number,
    readonly leaves: readonly Leaf<V>[],
  ) {}
}

class Branch<V> {
  constructor(readonly slots: readonly (Slot<V> | undefined)[]) {}
}

type Slot<V> = Leaf<V> | Bucket<V> | Branch<V>;

/** Not frozen: V8 copies a frozen array (slice, spread) by its slow generic path, ~50× slower. */
const EMPTY_SLOTS: readonly undefined[] = new Array<undefined>(WIDTH).fill(undefined);

/** One key whose value differs between two tries (undefined: absent on that side). */
export interface TrieChange<V> {
  readonly key: string;
  readonly before: V | undefined;
  readonly after: V | undefined;
}

export class HashTrie<V> {
  private constructor(
    private readonly root: Branch<V>,
    readonly size: number,
  ) {}

  static empty<V>(): HashTrie<V> {
    return new HashTrie<V>(new Branch<V>(EMPTY_SLOTS), 0);
  }

  get(key: string): V | undefined {
    const hash = hashKey(key);
    let node: Branch<V> = this.root;
    for (let shift = 0; ; shift += BITS) {
      const s = node.slots[(hash >>> shift) & MASK];
      if (s === undefined) return undefined;
      if (s instanceof Branch) {
        node = s;
        continue;
      }
      if (s instanceof Leaf) return s.key === key ? s.value : undefined;
      for (const l of s.leaves) if (l.key === key) return l.value;
      return undefined;
    }
  }

  /** A trie with `key` set to `value` (this one when it already holds that very value). */
  set(key: string, value: V): HashTrie<V> {
    const leaf = new Leaf(key, hashKey(key), value);
    const added = { grew: false };
    const root = setIn(this.root, 0, leaf, added);
    return root === this.root ? this : new HashTrie(root, this.size + (added.grew ? 1 : 0));
  }

  /** A trie without `key` (this one when it does not hold it). */
  delete(key: string): HashTrie<V> {
    const root = deleteIn(this.root, 0, key, hashKey(key));
    if (root === this.root) return this;
    return new HashTrie(root instanceof Branch ? root : branchOf(root, 0), this.size - 1);
  }

  *values(): Generator<V> {
    for (const l of leavesOf(this.root)) yield l.value;
  }

  /**
   * The keys whose values differ between `earlier` and this trie (by reference), with
   * both values. Cost: the nodes that differ, not the size — versions derived from one
   * another share the rest.
   */
  diff(earlier: HashTrie<V>): TrieChange<V>[] {
    const out: TrieChange<V>[] = [];
    diffSlots(earlier.root, this.root, out);
    return out;
  }
}

function setIn<V>(node: Branch<V>, shift: number, leaf: Leaf<V>, added: { grew: boolean }): Branch<V> {
  const i = (leaf.hash >>> shift) & MASK;
  const s = node.slots[i];
  let next: Slot<V>;
  if (s === undefined) {
    added.grew = true;
    next = leaf;
  } else if (s instanceof Branch) {
    next = setIn(s, shift + BITS, leaf, added);
    if (next === s) return node;
  } else if (s instanceof Leaf) {
    if (s.key === leaf.key) {
      if (s.value === leaf.value) return node;
      next = leaf;
    } else {
      added.grew = true;
      next = s.hash === leaf.hash ? new Bucket(s.hash, [s, leaf]) : split(s, leaf, shift + BITS);
    }
  } else if (s.hash === leaf.hash) {
    const k = s.leaves.findIndex((l) => l.key === leaf.key);
    if (k >= 0 && s.leaves[k]!.value === leaf.value) return node;
    const leaves = s.leaves.slice();
    if (k >= 0) leaves[k] = leaf;
    else {
      leaves.push(leaf);
      added.grew = true;
    }
    next = new Bucket(s.hash, leaves);
  } else {
    added.grew = true;
    next = split(s, leaf, shift + BITS);
  }
  const slots = node.slots.slice();
  slots[i] = next;
  return new Branch(slots);
}

/** A branch holding two slots whose hashes differ (they differ at some level below 32 bits). */
function split<V>(a: Leaf<V> | Bucket<V>, b: Leaf<V>, shift: number): Branch<V> {
  const ia = (a.hash >>> shift) & MASK;
  const ib = (b.hash >>> shift) & MASK;
  const slots: (Slot<V> | undefined)[] = EMPTY_SLOTS.slice();
  if (ia !== ib) {
    slots[ia] = a;
    slots[ib] = b;
  } else {
    slots[ia] = split(a, b, shift + BITS);
  }
  return new Branch(slots);
}

/** The node without `key`: the same node when absent; a lone leaf or bucket collapses into its parent; undefined when empty. */
function deleteIn<V>(node: Branch<V>, shift: number, key: string, hash: number): Slot<V> | undefined {
  const i = (hash >>> shift) & MASK;
  const s = node.slots[i];
  if (s === undefined) return node;
  let next: Slot<V> | undefined;
  if (s instanceof Branch) {
    next = deleteIn(s, shift + BITS, key, hash);
    if (next === s) return node;
  } else if (s instanceof Leaf) {
    if (s.key !== key) return node;
    next = undefined;
  } else {
    const leaves = s.leaves.filter((l) => l.key !== key);
    if (leaves.length === s.leaves.length) return node;
    next = leaves.length === 1 ? leaves[0]! : new Bucket(s.hash, leaves);
  }
  const slots = node.slots.slice();
  slots[i] = next;
  // A branch left with one leaf or bucket (and no branch) is replaced by it.
  let only: Slot<V> | undefined;
  let count = 0;
  for (const x of slots) {
    if (x === undefined) continue;
    count++;
    only = x;
  }
  if (count === 0) return undefined;
  if (count === 1 && !(only instanceof Branch) && shift > 0) return only;
  return new Branch(slots);
}

/** The root must stay a branch: a lone leaf or bucket left by a delete goes back into one. */
function branchOf<V>(s: Slot<V> | undefined, shift: number): Branch<V> {
  const slots: (Slot<V> | undefined)[] = EMPTY_SLOTS.slice();
  if (s !== undefined && !(s instanceof Branch)) slots[(s.hash >>> shift) & MASK] = s;
  return new Branch(slots);
}

function* leavesOf<V>(s: Slot<V> | undefined): Generator<Leaf<V>> {
  if (s === undefined) return;
  if (s instanceof Leaf) yield s;
  else if (s instanceof Bucket) yield* s.leaves;
  else for (const x of s.slots) yield* leavesOf(x);
}

function diffSlots<V>(a: Slot<V> | undefined, b: Slot<V> | undefined, out: TrieChange<V>[]): void {
  if (a === b) return;
  if (a instanceof Branch && b instanceof Branch) {
    for (let i = 0; i < WIDTH; i++) diffSlots(a.slots[i], b.slots[i], out);
    return;
  }
  // What a write leaves: one leaf added, removed or replaced — compared directly (this
  // runs for every applied write, on every node, for the disk write and the proxy).
  if ((a === undefined || a instanceof Leaf) && (b === undefined || b instanceof Leaf)) {
    if (a === undefined) {
      out.push({ key: b!.key, before: undefined, after: b!.value });
      return;
    }
    if (b === undefined) {
      out.push({ key: a.key, before: a.value, after: undefined });
      return;
    }
    if (a.key === b.key) {
      if (a.value !== b.value) out.push({ key: a.key, before: a.value, after: b.value });
      return;
    }
  }
  // Different shapes (a leaf where the other has a branch or a bucket): compare the few keys below.
  const before = new Map<string, V>();
  for (const l of collectLeaves(a, [])) before.set(l.key, l.value);
  for (const l of collectLeaves(b, [])) {
    const old = before.get(l.key);
    if (old !== l.value) out.push({ key: l.key, before: old, after: l.value });
    before.delete(l.key);
  }
  for (const [key, value] of before) out.push({ key, before: value, after: undefined });
}

function collectLeaves<V>(s: Slot<V> | undefined, out: Leaf<V>[]): Leaf<V>[] {
  if (s === undefined) return out;
  if (s instanceof Leaf) out.push(s);
  else if (s instanceof Bucket) out.push(...s.leaves);
  else for (const x of s.slots) collectLeaves(x, out);
  return out;
}
