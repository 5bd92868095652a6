// The pool's LevelDB layout, shared by the single-node LevelPoolStore and the future
// Raft store (which keeps its log under its own prefix in the same database):
//
//   pool/format                         "1"  (STATE_FORMAT_VERSION)
//   pool/applied                        applied index, 16-digit decimal
//   pool/settings                       PoolSettings JSON
//   pool/server/<createdIndex>/<id>     ServerRecord JSON
//   pool/request/<index>                remembered request {requestId,index,fingerprint,outcome}
//   pool/cluster-id                     the cluster id (JSON string; absent until recorded)
//   pool/member/<id>                    MemberRecord JSON (format 2)
//   pool/audit/<index>                  AuditEntry JSON (format 3)
//
// Indexes are zero-padded to 16 digits (> 2^53) so LevelDB's byte order is numeric
// order: servers load in canonical order and requests oldest first, with no sort.
// A write stores only what changed, plus the applied index, in one batch.
import type { AbstractLevel } from 'abstract-level';
import { oldestRequestIndex, requestEntries, requestsAfter, requestsBefore, type RememberedRequest } from '../pool/idempotency.js';
import { STATE_FORMAT_VERSION, stateFromParts } from '../pool/serialize.js';
import type { PoolState } from '../pool/state.js';
import type { MemberRecord, ServerRecord } from '../pool/types.js';

/** Any abstract-level database (ClassicLevel on disk, MemoryLevel in tests). */
export type PoolDb = AbstractLevel<string | Buffer | Uint8Array, string, string>;

export type PoolBatchOp = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'del'; readonly key: string };

export const POOL_KEYS = Object.freeze({
  format: 'pool/format',
  applied: 'pool/applied',
  settings: 'pool/settings',
  serverPrefix: 'pool/server/',
  requestPrefix: 'pool/request/',
  clusterId: 'pool/cluster-id',
  memberPrefix: 'pool/member/',
  auditPrefix: 'pool/audit/',
});

/** Formats loadState reads: 1 had no cluster keys, 2 no audit keys. */
const READABLE_FORMATS = ['1', '2', String(STATE_FORMAT_VERSION)];

// The key right after every key with a given prefix ending in '/': '/' + 1 is '0'.
const upperBound = (prefix: string): string => `${prefix.slice(0, -1)}0`;

/** Keys and values are always plain strings, whatever the database's defaults are. */
export const UTF8 = Object.freeze({ keyEncoding: 'utf8', valueEncoding: 'utf8' });

export function padIndex(index: number): string {
  return String(index).padStart(16, '0');
}

export function serverKey(record: ServerRecord): string {
  return `${POOL_KEYS.serverPrefix}${padIndex(record.createdIndex)}/${record.id}`;
}

export function memberKey(record: Pick<MemberRecord, 'id'>): string {
  return `${POOL_KEYS.memberPrefix}${record.id}`;
}

export function requestKey(index: number): string {
  return `${POOL_KEYS.requestPrefix}${padIndex(index)}`;
}

export function auditKey(index: number): string {
  return `${POOL_KEYS.auditPrefix}${padIndex(index)}`;
}

const put = (key: string, value: unknown): PoolBatchOp => ({ type: 'put', key, value: typeof value === 'string' ? value : JSON.stringify(value) });

/** Every key of `state`, for a fresh database. */
export function fullStateOps(state: PoolState): PoolBatchOp[] {
  return [
    put(POOL_KEYS.format, String(STATE_FORMAT_VERSION)),
    put(POOL_KEYS.applied, padIndex(state.appliedIndex)),
    put(POOL_KEYS.settings, state.settings),
    ...[...state.servers.values()].map((r) => put(serverKey(r), r)),
    ...[...requestEntries(state.requests)].map((e) => put(requestKey(e.index), e)),
    ...(state.cluster.clusterId === null ? [] : [put(POOL_KEYS.clusterId, JSON.stringify(state.cluster.clusterId))]),
    ...[...state.cluster.members.values()].map((m) => put(memberKey(m), m)),
    ...state.audit.map((e) => put(auditKey(e.index), e)),
  ];
}

/**
 * The puts and deletes that turn `prev` on disk into `next`. `next` must descend from
 * `prev` by applying commands (one or many): unchanged records are shared by reference,
 * so the diff is a reference walk, not a deep compare.
 */
export function stateWriteOps(prev: PoolState, next: PoolState): PoolBatchOp[] {
  const ops: PoolBatchOp[] = [put(POOL_KEYS.applied, padIndex(next.appliedIndex))];
  if (next.settings !== prev.settings) ops.push(put(POOL_KEYS.settings, next.settings));
  // Only what changed: the tables share every untouched record (server-table.ts).
  for (const { before, after } of next.servers.changesSince(prev.servers)) {
    // A server removed and re-added gets a new createdIndex and so a new key.
    if (before !== undefined && after?.createdIndex !== before.createdIndex) ops.push({ type: 'del', key: serverKey(before) });
    if (after !== undefined) ops.push(put(serverKey(after), after));
  }
  if (next.requests !== prev.requests) {
    const oldest = oldestRequestIndex(next.requests) ?? Infinity;
    for (const evicted of requestsBefore(prev.requests, oldest)) ops.push({ type: 'del', key: requestKey(evicted.index) });
    for (const added of requestsAfter(next.requests, prev.appliedIndex)) ops.push(put(requestKey(added.index), added));
  }
  if (next.cluster !== prev.cluster) {
    if (next.cluster.clusterId !== prev.cluster.clusterId) {
      ops.push(next.cluster.clusterId === null ? { type: 'del', key: POOL_KEYS.clusterId } : put(POOL_KEYS.clusterId, JSON.stringify(next.cluster.clusterId)));
    }
    for (const id of prev.cluster.members.keys()) if (!next.cluster.members.has(id)) ops.push({ type: 'del', key: memberKey({ id }) });
    for (const [id, record] of next.cluster.members) if (prev.cluster.members.get(id) !== record) ops.push(put(memberKey(record), record));
    // A state written by format 1 gains cluster keys: say so, so that a build that reads
    // only format 1 refuses it instead of dropping the members.
    ops.push(put(POOL_KEYS.format, String(STATE_FORMAT_VERSION)));
  }
  if (next.audit !== prev.audit) {
    // Entries are appended at the end and fall off the front: both ends of a sorted list.
    const oldest = next.audit.at(0)?.index ?? Infinity;
    for (let i = 0; i < prev.audit.length && prev.audit.at(i)!.index < oldest; i++) ops.push({ type: 'del', key: auditKey(prev.audit.at(i)!.index) });
    for (let i = next.audit.length - 1; i >= 0 && next.audit.at(i)!.index > prev.appliedIndex; i--) ops.push(put(auditKey(next.audit.at(i)!.index), next.audit.at(i)));
    // Likewise: a format 2 state gains audit keys, which a format-2 build would not read.
    ops.push(put(POOL_KEYS.format, String(STATE_FORMAT_VERSION)));
  }
  return ops;
}

/**
 * Deletes whatever pool keys exist and writes `state` — for installing a snapshot over
 * an older state. One batch, so a crash leaves either the old or the new state.
 */
export async function replaceStateOps(db: PoolDb, state: PoolState): Promise<PoolBatchOp[]> {
  const existing = await db.keys({ gte: 'pool/', lt: upperBound('pool/'), ...UTF8 }).all();
  const next = fullStateOps(state);
  const written = new Set(next.map((op) => op.key));
  return [...existing.filter((key) => !written.has(key)).map((key): PoolBatchOp => ({ type: 'del', key })), ...next];
}

/** The stored state, or undefined when the database holds no pool yet. */
export async function loadState(db: PoolDb): Promise<PoolState | undefined> {
  const [format, applied, settings, clusterId] = await db.getMany([POOL_KEYS.format, POOL_KEYS.applied, POOL_KEYS.settings, POOL_KEYS.clusterId], UTF8);
  if (format === undefined) return undefined;
  if (!READABLE_FORMATS.includes(format)) {
    throw new Error(`pool state on disk has format ${format}; this build reads formats ${READABLE_FORMATS.join(' and ')}`);
  }
  const servers = await loadRange(db, POOL_KEYS.serverPrefix, (value: ServerRecord) => serverKey(value));
  const requests = await loadRange(db, POOL_KEYS.requestPrefix, (value: RememberedRequest) => requestKey(value.index));
  const members = await loadRange(db, POOL_KEYS.memberPrefix, (value: MemberRecord) => memberKey(value));
  const audit = await loadRange(db, POOL_KEYS.auditPrefix, (value: { index: number }) => auditKey(value.index));
  return stateFromParts({
    appliedIndex: applied === undefined ? undefined : Number(applied),
    settings: settings === undefined ? undefined : parse(POOL_KEYS.settings, settings),
    servers,
    requests,
    clusterId: clusterId === undefined ? null : parse(POOL_KEYS.clusterId, clusterId),
    members,
    audit,
  });
}

/** Values under a prefix, in key order; each key must be the one its value would get. */
async function loadRange<T>(db: PoolDb, prefix: string, keyOf: (value: T) => string): Promise<unknown[]> {
  const entries = await db.iterator({ gte: prefix, lt: upperBound(prefix), ...UTF8 }).all();
  return entries.map(([key, raw]) => {
    const value = parse(key, raw);
    // Guards against a value written under the wrong key (bug or manual edit), which
    // would silently break ordering and deletes.
    let expected: string | undefined;
    try {
      expected = keyOf(value as T);
    } catch {
      expected = undefined;
    }
    if (expected !== key) throw new Error(`corrupt pool state: value under ${key} belongs under ${expected ?? 'no valid key'}`);
    return value;
  });
}

function parse(key: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Error(`corrupt pool state: ${key} is not JSON`, { cause: err });
  }
}
