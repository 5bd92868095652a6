// Whole-state serialisation: the format of Raft snapshots (and of anything else that
// ships a complete pool). Loading re-validates everything, because a snapshot crosses a
// process boundary and possibly a version boundary; corruption must stop the load, not
// surface later as a divergent replica.
import { auditFrom, EMPTY_AUDIT, parseAuditEntry, type AuditEntry, type AuditLog } from './audit.js';
import { StoreError } from './errors.js';
import { requestEntries, requestTableFrom, type RememberedRequest } from './idempotency.js';
import { deepFreeze } from './json-value.js';
import { serverId } from './server-id.js';
import { makeMember } from './membership.js';
import { ServerTable } from './server-table.js';
import { EMPTY_CLUSTER, type PoolState } from './state.js';
import type { ClusterState, CommandOutcome, MemberRecord, PoolSettings, ServerRecord } from './types.js';
import { validateAdminAddress, validateClusterId, validateHostPort, validateIncarnation, validateMemberId } from './validate-member.js';
import { validateHealthCheckOverrides, validateIp, validatePort, validateRequestId, validateSettings, validateWeight } from './validate.js';
import { booleanField, expectObject, fail, integerIn, own, rejectUnknown } from './validate-fields.js';

/**
 * Bump when the serialised shape or the meaning of a field changes. 2 added `cluster`
 * (cluster id and member records), 3 the audit log; older documents are still read (no
 * members, no audit entries).
 */
export const STATE_FORMAT_VERSION = 3;
const READABLE_VERSIONS: readonly number[] = [1, 2, 3];

export interface SerializedClusterState {
  readonly clusterId: string | null;
  /** In id order. */
  readonly members: readonly MemberRecord[];
}

export interface SerializedPoolState {
  readonly version: typeof STATE_FORMAT_VERSION;
  readonly appliedIndex: number;
  readonly settings: PoolSettings;
  /** Canonical order. */
  readonly servers: readonly ServerRecord[];
  /** Idempotency table, oldest first. */
  readonly requests: readonly RememberedRequest[];
  readonly cluster: SerializedClusterState;
  /** Audit log, oldest first. */
  readonly audit: readonly AuditEntry[];
}

/** The parts a state is rebuilt from, whether from one JSON document or from LevelDB keys. */
export interface PoolStateParts {
  readonly appliedIndex: unknown;
  readonly settings: unknown;
  readonly servers: readonly unknown[];
  readonly requests: readonly unknown[];
  /** undefined: no cluster part (a version 1 state). */
  readonly clusterId?: unknown;
  readonly members?: readonly unknown[];
  /** undefined: no audit part (a version 1 or 2 state). */
  readonly audit?: readonly unknown[];
}

export function toSerialized(state: PoolState): SerializedPoolState {
  return {
    version: STATE_FORMAT_VERSION,
    appliedIndex: state.appliedIndex,
    settings: state.settings,
    servers: state.servers.list(),
    requests: [...requestEntries(state.requests)],
    cluster: { clusterId: state.cluster.clusterId, members: [...state.cluster.members.values()] },
    audit: [...state.audit],
  };
}

export function serializeState(state: PoolState): string {
  return JSON.stringify(toSerialized(state));
}

/** Throws Error('corrupt pool state: …') on anything that serializeState would not produce. */
export function deserializeState(json: string): PoolState {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new Error('corrupt pool state: not JSON', { cause: err });
  }
  return loading(() => {
    const obj = expectObject(doc, 'state');
    const version = own(obj, 'version');
    if (typeof version !== 'number' || !READABLE_VERSIONS.includes(version)) {
      fail('state.version', `is ${JSON.stringify(version)}; this build reads versions ${READABLE_VERSIONS.join(' and ')}`);
    }
    const keys = ['version', 'appliedIndex', 'settings', 'servers', 'requests', ...(version >= 2 ? ['cluster'] : []), ...(version >= 3 ? ['audit'] : [])];
    rejectUnknown(obj, keys, 'state');
    const servers = own(obj, 'servers');
    const requests = own(obj, 'requests');
    if (!Array.isArray(servers)) fail('state.servers', 'must be an array');
    if (!Array.isArray(requests)) fail('state.requests', 'must be an array');
    const parts = { appliedIndex: own(obj, 'appliedIndex'), settings: own(obj, 'settings'), servers, requests };
    if (version === 1) return buildState(parts);
    const cluster = expectObject(own(obj, 'cluster'), 'state.cluster');
    rejectUnknown(cluster, ['clusterId', 'members'], 'state.cluster');
    const members = own(cluster, 'members');
    if (!Array.isArray(members)) fail('state.cluster.members', 'must be an array');
    if (version === 2) return buildState({ ...parts, clusterId: own(cluster, 'clusterId'), members });
    const audit = own(obj, 'audit');
    if (!Array.isArray(audit)) fail('state.audit', 'must be an array');
    return buildState({ ...parts, clusterId: own(cluster, 'clusterId'), members, audit });
  });
}

/** Validates parts and assembles a frozen PoolState. Same error contract as deserializeState. */
export function stateFromParts(parts: PoolStateParts): PoolState {
  return loading(() => buildState(parts));
}

function loading<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof StoreError) throw new Error(`corrupt pool state: ${err.message}`, { cause: err });
    throw err;
  }
}

function buildState(parts: PoolStateParts): PoolState {
  const appliedIndex = integerIn(parts.appliedIndex, 'appliedIndex', 0, Number.MAX_SAFE_INTEGER);
  const settings = deepFreeze(validateSettings(parts.settings));
  const records: ServerRecord[] = [];
  let previous: ServerRecord | undefined;
  for (const [i, value] of parts.servers.entries()) {
    const record = parseRecord(value, `servers[${i}]`, appliedIndex);
    if (previous !== undefined && !(previous.createdIndex < record.createdIndex || (previous.createdIndex === record.createdIndex && previous.id < record.id))) {
      fail(`servers[${i}]`, 'is out of canonical order (createdIndex, then id)');
    }
    records.push(record);
    previous = record;
  }
  const servers = ServerTable.from(records);
  let lastIndex = 0;
  const requests = parts.requests.map((value, i) => {
    const entry = parseRemembered(value, `requests[${i}]`, appliedIndex);
    if (entry.index <= lastIndex) fail(`requests[${i}].index`, 'must be increasing');
    lastIndex = entry.index;
    return entry;
  });
  return Object.freeze({ appliedIndex, settings, servers, requests: requestTableFrom(requests), cluster: buildCluster(parts, appliedIndex), audit: buildAudit(parts, appliedIndex) });
}

function buildAudit(parts: PoolStateParts, appliedIndex: number): AuditLog {
  if (parts.audit === undefined) return EMPTY_AUDIT;
  return auditFrom(parts.audit.map((value, i) => parseAuditEntry(value, `audit[${i}]`, appliedIndex)));
}

function buildCluster(parts: PoolStateParts, appliedIndex: number): ClusterState {
  if (parts.members === undefined && parts.clusterId === undefined) return EMPTY_CLUSTER;
  const clusterId = parts.clusterId === null || parts.clusterId === undefined ? null : validateClusterId(parts.clusterId, 'cluster.clusterId');
  const members = new Map<string, MemberRecord>();
  let previous: string | undefined;
  for (const [i, value] of (parts.members ?? []).entries()) {
    const record = parseMember(value, `cluster.members[${i}]`, appliedIndex);
    if (previous !== undefined && !(previous < record.id)) fail(`cluster.members[${i}]`, 'is out of order (by id)');
    members.set(record.id, record);
    previous = record.id;
  }
  return Object.freeze({ clusterId, members });
}

const MEMBER_KEYS = ['id', 'role', 'raftAddress', 'adminAddress', 'proxyAddress', 'autoPromote', 'incarnation', 'addedIndex', 'updatedIndex'] as const;

function parseMember(value: unknown, prefix: string, appliedIndex: number): MemberRecord {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, MEMBER_KEYS, prefix);
  const opt = <T>(key: string, check: (v: unknown, field: string) => T): T | undefined => {
    const v = own(obj, key);
    return v === undefined ? undefined : check(v, `${prefix}.${key}`);
  };
  const exact = (key: string, canonical: string | undefined): void => {
    if (canonical !== undefined && canonical !== own(obj, key)) fail(`${prefix}.${key}`, 'is not in canonical form');
  };
  const raftAddress = opt('raftAddress', validateHostPort);
  const adminAddress = opt('adminAddress', validateAdminAddress);
  const proxyAddress = opt('proxyAddress', validateHostPort);
  exact('raftAddress', raftAddress);
  exact('adminAddress', adminAddress);
  exact('proxyAddress', proxyAddress);
  const role = own(obj, 'role');
  if (role !== 'voter' && role !== 'learner') fail(`${prefix}.role`, 'must be "voter" or "learner"');
  const addedIndex = integerIn(own(obj, 'addedIndex'), `${prefix}.addedIndex`, 1, appliedIndex);
  const incarnation = opt('incarnation', validateIncarnation);
  return makeMember({
    id: validateMemberId(own(obj, 'id'), `${prefix}.id`),
    role,
    ...(raftAddress === undefined ? {} : { raftAddress }),
    ...(adminAddress === undefined ? {} : { adminAddress }),
    ...(proxyAddress === undefined ? {} : { proxyAddress }),
    autoPromote: booleanField(own(obj, 'autoPromote'), `${prefix}.autoPromote`),
    ...(incarnation === undefined ? {} : { incarnation }),
    addedIndex,
    updatedIndex: integerIn(own(obj, 'updatedIndex'), `${prefix}.updatedIndex`, addedIndex, appliedIndex),
  });
}

const RECORD_KEYS = ['id', 'ip', 'port', 'weight', 'healthCheck', 'draining', 'createdIndex', 'updatedIndex'] as const;

function parseRecord(value: unknown, prefix: string, appliedIndex: number): ServerRecord {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, RECORD_KEYS, prefix);
  const ip = validateIp(own(obj, 'ip'), `${prefix}.ip`);
  if (ip !== own(obj, 'ip')) fail(`${prefix}.ip`, 'is not in canonical form');
  const port = validatePort(own(obj, 'port'), `${prefix}.port`);
  if (own(obj, 'port') !== port) fail(`${prefix}.port`, 'must be a number');
  const id = serverId(ip, port);
  if (own(obj, 'id') !== id) fail(`${prefix}.id`, `must be "${id}"`);
  const createdIndex = integerIn(own(obj, 'createdIndex'), `${prefix}.createdIndex`, 1, appliedIndex);
  return deepFreeze({
    id,
    ip,
    port,
    weight: validateWeight(own(obj, 'weight'), `${prefix}.weight`),
    healthCheck: validateHealthCheckOverrides(own(obj, 'healthCheck'), `${prefix}.healthCheck`),
    draining: booleanField(own(obj, 'draining'), `${prefix}.draining`),
    createdIndex,
    updatedIndex: integerIn(own(obj, 'updatedIndex'), `${prefix}.updatedIndex`, createdIndex, appliedIndex),
  });
}

function parseRemembered(value: unknown, prefix: string, appliedIndex: number): RememberedRequest {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, ['requestId', 'index', 'fingerprint', 'outcome'], prefix);
  const fingerprint = own(obj, 'fingerprint');
  if (typeof fingerprint !== 'string' || fingerprint === '') fail(`${prefix}.fingerprint`, 'must be a non-empty string');
  const outcome = expectObject(own(obj, 'outcome'), `${prefix}.outcome`);
  booleanField(own(outcome, 'ok'), `${prefix}.outcome.ok`);
  // Batch results feed the table's eviction weight, so they must at least be a list.
  if (own(outcome, 'status') === 'batch' && !Array.isArray(own(outcome, 'results'))) fail(`${prefix}.outcome.results`, 'must be an array');
  return deepFreeze({
    requestId: validateRequestId(own(obj, 'requestId'), `${prefix}.requestId`),
    index: integerIn(own(obj, 'index'), `${prefix}.index`, 1, appliedIndex),
    fingerprint,
    // Outcomes are answers replayed to clients, never inputs to the state machine, so a
    // shape check is enough.
    outcome: outcome as unknown as CommandOutcome,
  });
}
