// Backups of the replicated state (GET /cluster/snapshot, `weldr snapshot save`) and
// the seed of a new cluster made from one (`weldr start --restore FILE`), in the
// manner of etcd's snapshot save / restore: the document holds the state machine
// exactly as a Raft snapshot does (pool, settings, idempotency table, members, index);
// a restore keeps the pool, the settings, the table and the indexes, and makes the
// restoring node the only member of a new cluster with a new id. The other members
// join it; restoring the same file on several nodes is deliberately not offered: nodes
// seeded apart could disagree on the first configuration, and nothing would notice.
import { randomBytes } from 'node:crypto';
import type { Snapshot } from '@weldr/raft';
import { deserializeState, serializeState, toSerialized, type MemberRecord, type PoolState, type SerializedPoolState } from '@weldr/store';

export const SNAPSHOT_FORMAT = 'weldr-snapshot';
export const SNAPSHOT_VERSION = 1;

export interface SnapshotDocument {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: typeof SNAPSHOT_VERSION;
  readonly clusterId: string | null;
  /** The applied index the state reflects. */
  readonly index: number;
  readonly takenBy: string;
  readonly takenAt: string;
  readonly state: SerializedPoolState;
}

export function snapshotDocument(state: PoolState, takenBy: string, now: Date = new Date()): SnapshotDocument {
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    clusterId: state.cluster.clusterId,
    index: state.appliedIndex,
    takenBy,
    takenAt: now.toISOString(),
    state: toSerialized(state),
  };
}

/** A restore file that cannot be used, in operator terms. */
export class SnapshotFileError extends Error {
  override readonly name = 'SnapshotFileError';
}

/** Parses and checks a backup document; returns the state it holds. */
export function parseSnapshotDocument(text: string): { document: SnapshotDocument; state: PoolState } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new SnapshotFileError('the file is not JSON (expected a document written by GET /cluster/snapshot or weldr snapshot save)');
  }
  const d = doc as Partial<SnapshotDocument> | null;
  if (d === null || typeof d !== 'object' || d.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotFileError(`the file is not a weldr snapshot (its "format" is ${JSON.stringify((d as { format?: unknown } | null)?.format)}, expected "${SNAPSHOT_FORMAT}")`);
  }
  if (d.version !== SNAPSHOT_VERSION) throw new SnapshotFileError(`the snapshot has format version ${JSON.stringify(d.version)}; this build reads version ${SNAPSHOT_VERSION}`);
  let state: PoolState;
  try {
    state = deserializeState(JSON.stringify(d.state));
  } catch (err) {
    throw new SnapshotFileError(`the snapshot's state is not valid: ${(err as Error).message}`, { cause: err });
  }
  if (d.index !== state.appliedIndex) throw new SnapshotFileError(`the snapshot says index ${JSON.stringify(d.index)} but its state is at index ${state.appliedIndex}`);
  return { document: d as SnapshotDocument, state };
}

/**
 * The first Raft snapshot of a new cluster seeded from `state`: index max(1, its
 * index), term 1, this node its only voter, a new cluster id. Servers keep their
 * creation indexes, so their order (and so the balancers' order) is the same.
 */
export function restoredSnapshot(state: PoolState, self: { id: string; incarnation: string }): { snapshot: Snapshot; state: PoolState; clusterId: string } {
  const index = Math.max(1, state.appliedIndex);
  const clusterId = randomBytes(8).toString('hex');
  const me: MemberRecord = Object.freeze({ id: self.id, role: 'voter', autoPromote: true, incarnation: self.incarnation, addedIndex: index, updatedIndex: index });
  const seeded: PoolState = Object.freeze({ ...state, appliedIndex: index, cluster: Object.freeze({ clusterId, members: new Map([[self.id, me]]) }) });
  return {
    snapshot: { metadata: { index, term: 1, confState: { voters: [self.id], learners: [] } }, data: new TextEncoder().encode(serializeState(seeded)) },
    state: seeded,
    clusterId,
  };
}
