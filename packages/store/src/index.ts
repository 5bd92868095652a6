// Public surface of @weldr/store: the pool model (types, validation, state machine,
// serialisation) and the PoolStore implementations. See README.md.
export type {
  BalancerKind,
  StatusRange,
  HealthCheckSpec,
  HealthCheckOverrides,
  PassiveHealthSpec,
  PoolSettings,
  ServerRecord,
  PoolSnapshot,
  ServerChangeView,
  AddServerCommand,
  RemoveServerCommand,
  UpdateServerCommand,
  UpdateSettingsCommand,
  BatchCommand,
  ServerOrSettingsCommand,
  PoolCommand,
  MemberRole,
  MemberRecord,
  ClusterState,
  UpdateMemberCommand,
  InitClusterCommand,
  AddMemberCommand,
  PromoteMemberCommand,
  RemoveMemberCommand,
  MemberChangeCommand,
  MemberChangeEnvelope,
  MemberChange,
  CommandEnvelope,
  ApplyErrorCode,
  CommandOutcome,
  ApplyResult,
  ProposeOptions,
  RequestOrigin,
  MemberWriteOptions,
  MemberWriteResult,
  PoolStore,
} from './pool/types.js';
export { StoreError } from './pool/errors.js';
export type { StoreErrorCode } from './pool/errors.js';
export {
  DEFAULT_SETTINGS,
  DEFAULT_HEALTH_CHECK,
  DEFAULT_PASSIVE_HEALTH,
  DEFAULT_WEIGHT,
  effectiveHealthCheck,
} from './pool/defaults.js';

export { duplicateJsonKey } from './pool/json-value.js';

// validation
export { BOUNDS } from './pool/bounds.js';
export { parseIp } from './pool/ip.js';
export type { CanonicalIp, IpParse } from './pool/ip.js';
export { serverId } from './pool/server-id.js';
export {
  BALANCER_KINDS,
  validateCommand,
  validateIp,
  validatePort,
  validateWeight,
  validateRequestId,
  validateSettings,
} from './pool/validate.js';

// state machine
export { initialState, snapshotOf, EMPTY_CLUSTER } from './pool/state.js';
export { ServerTable, compareServers } from './pool/server-table.js';
export type { ServerChange } from './pool/server-table.js';
export type { PoolState } from './pool/state.js';
export { applyCommand, applyConfChangeEntry, advanceIndex } from './pool/state-machine.js';
export { confStateOf, memberConfChange, parseMemberChangeContext } from './pool/membership.js';
export {
  MEMBER_ID,
  adminUrlOf,
  validateAdminAddress,
  validateClusterId,
  validateHostPort,
  validateIncarnation,
  validateMemberChange,
  validateMemberId,
} from './pool/validate-member.js';
export type { ApplyOptions, Applied } from './pool/state-machine.js';
export { DEFAULT_REQUEST_LIMITS, lookupRequest } from './pool/idempotency.js';
export { fingerprintOf } from './pool/fingerprint.js';
export { AUDIT_RETENTION, AuditLog, EMPTY_AUDIT, appendAudit, auditAfter, auditMetaOf } from './pool/audit.js';
export type { AuditEntry, AuditMeta } from './pool/audit.js';
export type { RememberedRequest, RequestTable, RequestTableLimits } from './pool/idempotency.js';
export { STATE_FORMAT_VERSION, serializeState, deserializeState, toSerialized, stateFromParts } from './pool/serialize.js';
export type { SerializedClusterState, SerializedPoolState, PoolStateParts } from './pool/serialize.js';

// stores
export { MemoryPoolStore } from './stores/memory-store.js';
export type { MemoryPoolStoreOptions } from './stores/memory-store.js';
export type { ListenerErrorHandler } from './stores/subscribers.js';
export { LevelPoolStore, StoreWriteFailure } from './level/level-store.js';
export { makeDirectorySync } from './level/make-directory.js';
export type { LevelPoolStoreOptions } from './level/level-store.js';
export { POOL_KEYS, padIndex, fullStateOps, stateWriteOps, replaceStateOps, loadState } from './level/layout.js';
export type { PoolDb, PoolBatchOp } from './level/layout.js';
export { LevelRaftStorage, RaftStorageCorrupt, RAFT_KEYS, logKey, encodeEntry, decodeEntry } from './level/raft-storage.js';
export type { LevelRaftStorageOptions } from './level/raft-storage.js';
// for stores built on top of this package (the Raft-backed store in @weldr/node)
export { prepareEnvelope, stoppedError, awaitWithDeadline } from './stores/proposal.js';
export { Subscribers } from './stores/subscribers.js';
export { UTF8 } from './level/layout.js';
export { StoreOpenError, DataDirRefusedError, dataDirError } from './level/data-dir.js';
export type { DataDirRefusal } from './level/data-dir.js';
// the data directory: opening it safely, and its marker (weldr.json)
export { DataDir } from './level/open-data-dir.js';
export type { DataDirLogger, DataDirOptions, StoreProgress } from './level/open-data-dir.js';
export { MARKER_FILE, MARKER_FORMAT, newMarker, readMarker, updateMarker, verifyMarker, writeMarker } from './level/marker.js';
export type { DataDirMarker, MarkerProgress } from './level/marker.js';
export { IDENTITY_KEYS, readIdentity, writeIdentity, readPeerIncarnations, writePeerIncarnation, deletePeerIncarnation, readPeerStarts, writePeerStart } from './level/identity.js';
export type { NodeIdentity, NodeStart, PeerIncarnation, PeerStart } from './level/identity.js';
