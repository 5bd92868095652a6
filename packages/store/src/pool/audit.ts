// The audit log of admin changes: part of the replicated state, so every replica holds
// the same entries for the same log indexes (and a snapshot carries them to a member
// that catches up). Everything in an entry comes from the committed log: the command,
// and the metadata the leader put in the envelope when it proposed it — its clock's
// time, the node the request arrived at, the client's address. Nothing is read from the
// applying replica's clock, so replicas agree.
//
// Bounded: the newest AUDIT_RETENTION entries are kept (older ones fall off as new ones
// arrive); like the idempotency table's bounds, the number is part of the replicated
// protocol.
import { StoreError } from './errors.js';
import { deepFreeze } from './json-value.js';
import type { CommandOutcome } from './types.js';
import { expectObject, fail, integerIn, own, rejectUnknown } from './validate-fields.js';

/** Entries kept. Part of the replicated protocol: change only with a state-format version bump. */
export const AUDIT_RETENTION = 1000;

/**
 * Sub-commands of a Batch kept in its entry (the rest are counted in `more`), so an
 * entry stays a few KiB and the whole log a few MiB in a snapshot.
 */
export const AUDIT_BATCH_SHOWN = 10;

/** What the proposer records about a write; carried in the log entry's envelope. */
export interface AuditMeta {
  /** Epoch milliseconds on the proposing leader's clock. */
  readonly at: number;
  /** The node the admin request arrived at (a follower that relayed it, or the leader). */
  readonly nodeId: string;
  /** The admin client's address as that node saw it. */
  readonly client?: string;
}

export interface AuditEntry {
  /** Log index of the change. */
  readonly index: number;
  /** Epoch milliseconds: the leader's time when it proposed the change (0 when not recorded). */
  readonly at: number;
  /** The node the request was received on; "" when not recorded (an entry from an older proposer). */
  readonly nodeId: string;
  readonly client?: string;
  /** The client's Idempotency-Key, or the id the proposer generated. */
  readonly idempotencyKey: string;
  /** The command as applied (a membership change: AddMember, PromoteMember, RemoveMember, …). */
  readonly command: Readonly<Record<string, unknown>>;
  /** What it did: the outcome's status (created, updated, removed, settings, batch, member, …). */
  readonly result: string;
}

/**
 * The log, oldest first: a persistent list, like the server and request tables. Every
 * applied change makes a new log and a published one never changes, but appending does
 * not copy the log: versions share one append-only array and each sees its own range of
 * it. Copying the whole array on every write (1,000 entries once the log is full) cost
 * ~6 µs and ~20 KiB of garbage per applied write on every member (measured 2026-12-07:
 * 14-17 µs per apply with a full log against 9-10 µs with a 10-entry one, and 27 KiB
 * allocated per apply, 20 KiB of it the log's copies).
 *
 * A version appends in place only when it ends where the shared array ends (it is the
 * newest one made from that array); appending to an older version copies its range
 * first, so no version ever sees another's entries. Once the dropped entries at the
 * front outnumber the kept ones, the range moves to a new array (one copy per
 * `retention` appends). The entries are frozen; the array is not (V8 copies a frozen
 * array by a slow generic path: ~40 µs for 1,000 entries against ~5 µs unfrozen), and
 * no one outside this class can reach it.
 */
export class AuditLog implements Iterable<AuditEntry> {
  static readonly EMPTY: AuditLog = new AuditLog([], 0, 0);

  /** A log of `entries` (copied), oldest first. */
  static of(entries: readonly AuditEntry[]): AuditLog {
    return entries.length === 0 ? AuditLog.EMPTY : new AuditLog([...entries], 0, entries.length);
  }

  readonly #items: AuditEntry[];
  readonly #start: number;
  readonly length: number;

  private constructor(items: AuditEntry[], start: number, length: number) {
    this.#items = items;
    this.#start = start;
    this.length = length;
    Object.freeze(this);
  }

  /** The entry at position `i` (0 = oldest; negative counts from the newest, as Array.at), or undefined. */
  at(i: number): AuditEntry | undefined {
    const k = i < 0 ? this.length + i : i;
    return k >= 0 && k < this.length ? this.#items[this.#start + k] : undefined;
  }

  /** Entries from position `from` up to (not including) `to`, as a new array. */
  slice(from = 0, to = this.length): AuditEntry[] {
    const a = Math.max(0, Math.min(from, this.length));
    const b = Math.max(a, Math.min(to, this.length));
    return this.#items.slice(this.#start + a, this.#start + b);
  }

  /** As JSON: the entries, oldest first. */
  toJSON(): AuditEntry[] {
    return this.slice();
  }

  map<T>(f: (entry: AuditEntry, i: number) => T): T[] {
    const out = new Array<T>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = f(this.#items[this.#start + i]!, i);
    return out;
  }

  *[Symbol.iterator](): Iterator<AuditEntry> {
    for (let i = 0; i < this.length; i++) yield this.#items[this.#start + i]!;
  }

  /** This log with `entry` appended and the oldest dropped beyond `retention`. */
  append(entry: AuditEntry, retention: number): AuditLog {
    let items = this.#items;
    let start = this.#start;
    let end = start + this.length;
    if (end !== items.length) {
      // A newer version was made from this one: never write into its range.
      items = items.slice(start, end);
      start = 0;
      end = items.length;
    }
    items.push(entry);
    end += 1;
    if (end - start > retention) start = end - Math.max(retention, 0);
    if (start > 0 && start >= end - start) {
      items = items.slice(start, end);
      end -= start;
      start = 0;
    }
    return end === start ? AuditLog.EMPTY : new AuditLog(items, start, end - start);
  }
}

export const EMPTY_AUDIT: AuditLog = AuditLog.EMPTY;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_CLIENT = 128;

/**
 * The metadata of an envelope, checked: a malformed one (another version, a buggy
 * proposer) is dropped rather than refusing the command, so replicas agree either way.
 */
export function auditMetaOf(value: unknown): AuditMeta | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  const at = own(m, 'at');
  const nodeId = own(m, 'nodeId');
  const client = own(m, 'client');
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return undefined;
  if (typeof nodeId !== 'string' || !ID.test(nodeId)) return undefined;
  if (client !== undefined && (typeof client !== 'string' || client.length === 0 || client.length > MAX_CLIENT)) return undefined;
  return Object.freeze({ at, nodeId, ...(client === undefined ? {} : { client }) });
}

/**
 * The entry for a change applied at `index`, or undefined when nothing was applied (a
 * refused command changes no state and is answered to its client, not audited). The
 * request id is the client's Idempotency-Key, or the id the proposer generated.
 */
export function auditEntryFor(index: number, requestId: string, command: { readonly type: string }, meta: AuditMeta | undefined, outcome: CommandOutcome): AuditEntry | undefined {
  if (!outcome.ok) return undefined;
  return {
    index,
    at: meta?.at ?? 0,
    nodeId: meta?.nodeId ?? '',
    ...(meta?.client === undefined ? {} : { client: meta.client }),
    idempotencyKey: requestId,
    command: summarized(command),
    result: outcome.status === 'member' ? outcome.change : outcome.status,
  };
}

function summarized(command: { readonly type: string }): Readonly<Record<string, unknown>> {
  const c = command as Readonly<Record<string, unknown>>;
  const subs = c['commands'];
  if (c['type'] !== 'Batch' || !Array.isArray(subs) || subs.length <= AUDIT_BATCH_SHOWN) return c;
  return { ...c, commands: subs.slice(0, AUDIT_BATCH_SHOWN), more: subs.length - AUDIT_BATCH_SHOWN };
}

/** The log with `entry` appended, the oldest dropped beyond `retention`. */
export function appendAudit(log: AuditLog, entry: AuditEntry, retention = AUDIT_RETENTION): AuditLog {
  return log.append(deepFreeze(entry), retention);
}

/** Entries with an index above `since`, oldest first, at most `limit`. */
export function auditAfter(log: AuditLog, since: number, limit: number): AuditEntry[] {
  // Indexes increase along the log: binary search for the first one above `since`.
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log.at(mid)!.index <= since) lo = mid + 1;
    else hi = mid;
  }
  return log.slice(lo, lo + limit);
}

const ENTRY_KEYS = ['index', 'at', 'nodeId', 'client', 'idempotencyKey', 'command', 'result'] as const;

/** One entry loaded from a snapshot or LevelDB: shape-checked like the rest of the state. */
export function parseAuditEntry(value: unknown, prefix: string, appliedIndex: number): AuditEntry {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, ENTRY_KEYS, prefix);
  const nodeId = own(obj, 'nodeId');
  if (typeof nodeId !== 'string' || (nodeId !== '' && !ID.test(nodeId))) fail(`${prefix}.nodeId`, 'must be a node id or ""');
  const client = own(obj, 'client');
  if (client !== undefined && (typeof client !== 'string' || client.length === 0 || client.length > MAX_CLIENT)) fail(`${prefix}.client`, 'must be a non-empty string');
  const key = own(obj, 'idempotencyKey');
  if (typeof key !== 'string' || key === '') fail(`${prefix}.idempotencyKey`, 'must be a non-empty string');
  const result = own(obj, 'result');
  if (typeof result !== 'string' || result === '') fail(`${prefix}.result`, 'must be a non-empty string');
  const command = expectObject(own(obj, 'command'), `${prefix}.command`);
  if (typeof own(command, 'type') !== 'string') fail(`${prefix}.command.type`, 'must be a string');
  return deepFreeze({
    index: integerIn(own(obj, 'index'), `${prefix}.index`, 1, appliedIndex),
    at: integerIn(own(obj, 'at'), `${prefix}.at`, 0, Number.MAX_SAFE_INTEGER),
    nodeId,
    ...(client === undefined ? {} : { client }),
    idempotencyKey: key,
    command,
    result,
  });
}

/** A loaded log: indexes strictly increasing, at most AUDIT_RETENTION entries. */
export function auditFrom(entries: readonly AuditEntry[]): AuditLog {
  if (entries.length > AUDIT_RETENTION) throw new StoreError('INVALID_COMMAND', `audit has ${entries.length} entries, more than ${AUDIT_RETENTION}`, { field: 'audit' });
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index <= entries[i - 1]!.index) fail(`audit[${i}].index`, 'must be increasing');
  }
  return AuditLog.of(entries);
}
