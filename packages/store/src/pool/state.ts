import { EMPTY_AUDIT, type AuditLog } from './audit.js';
import { DEFAULT_SETTINGS } from './defaults.js';
import { EMPTY_REQUEST_TABLE, type RequestTable } from './idempotency.js';
import { ServerTable, type ServerChange } from './server-table.js';
import type { ClusterState, PoolSettings, PoolSnapshot, ServerRecord } from './types.js';

/**
 * The complete replicated state of the pool. Immutable: applyCommand returns a new value
 * and shares every unchanged record with the old one (so a diff is a reference check).
 */
export interface PoolState {
  /** Log index of the last applied entry (0 for a fresh pool). */
  readonly appliedIndex: number;
  readonly settings: PoolSettings;
  /**
   * Keyed by server id. Iteration order is the canonical server order: by createdIndex,
   * and by id among servers created by the same command (a Batch). A persistent map:
   * a command's new state shares every untouched server with the old (server-table.ts).
   */
  readonly servers: ServerTable;
  readonly requests: RequestTable;
  /** Cluster id and members (empty on a single node). */
  readonly cluster: ClusterState;
  /** Applied admin changes, the newest AUDIT_RETENTION (audit.ts). */
  readonly audit: AuditLog;
}

/** No cluster id, no members: a single node, or a cluster before its first entry. */
export const EMPTY_CLUSTER: ClusterState = Object.freeze({ clusterId: null, members: new Map() });

/**
 * The state every replica starts from. Deliberately takes no arguments: a cluster's
 * replicas must begin identical, so configured settings are applied as an
 * UpdateSettings command, not baked into the initial state.
 */
export function initialState(): PoolState {
  return Object.freeze({ appliedIndex: 0, settings: DEFAULT_SETTINGS, servers: ServerTable.EMPTY, requests: EMPTY_REQUEST_TABLE, cluster: EMPTY_CLUSTER, audit: EMPTY_AUDIT });
}

// The data plane may ask for the snapshot of the same state many times; build it once.
const snapshots = new WeakMap<PoolState, PoolSnapshot>();
// Which table a snapshot was made from: lets a later snapshot say what changed since it.
const tables = new WeakMap<PoolSnapshot, ServerTable>();

/**
 * The frozen view the proxy reads; servers in canonical (creation) order. Making one
 * costs the same whatever the pool's size: the server list is built only when read, and
 * a consumer holding the previous snapshot asks changesSince() for the difference.
 */
export function snapshotOf(state: PoolState): PoolSnapshot {
  let snapshot = snapshots.get(state);
  if (snapshot === undefined) {
    const table = state.servers;
    const changesSince = (earlier: PoolSnapshot): readonly ServerChange[] | undefined => {
      const before = tables.get(earlier);
      return before === undefined ? undefined : table.changesSince(before);
    };
    const view = {
      index: state.appliedIndex,
      get servers(): readonly ServerRecord[] {
        return table.list();
      },
      settings: state.settings,
    };
    // Not enumerable: a snapshot still compares and serializes as its data.
    Object.defineProperties(view, { serverCount: { value: table.size }, changesSince: { value: changesSince }, audit: { value: state.audit } });
    snapshot = Object.freeze(view) as PoolSnapshot;
    tables.set(snapshot, table);
    snapshots.set(state, snapshot);
  }
  return snapshot;
}
