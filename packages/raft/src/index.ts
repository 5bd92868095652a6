// Public surface of @weldr/raft: a pure Raft core driven by a RawNode.
export type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ProposeResult,
  Ready,
  ReadState,
  Refusal,
  RefusalReason,
  RequestResult,
  Role,
  Snapshot,
  SnapshotChunk,
  SnapshotMetadata,
  SoftState,
} from './types.js';
export { MESSAGE_TYPES } from './types.js';
export type { PersistentStorage, Storage, StorageUpdate } from './storage.js';
export { EMPTY_HARD_STATE, entrySize, hardStateEqual, isEmptyHardState } from './storage.js';
// The retained log in memory (etcd's MemoryStorage): the in-memory store of tests and
// simulations, and the cache a disk-backed Storage answers the core's reads from.
export { MemoryStorage } from './memory-storage.js';
export type { Transport } from './transport.js';
export type { RaftConfig, ReadOnlyOption } from './core/config.js';
export { DEFAULT_MAX_CLOCK_DRIFT } from './core/config.js';
export { leaseMs, leaseTicks, MAX_LEASE_MS, promiseTicks } from './core/lease.js';
export { RawNode, type ProgressStatus, type Status } from './core/raw-node.js';
export { parseLeaderGoneContext } from './core/raft.js';
export { mayPrecedePersistence } from './core/send-order.js';
export { InvalidMessage, validateMessage } from './core/validate.js';
export {
  applyConfChange,
  bootstrapEntries,
  confStateEqual,
  decodeConfChange,
  EMPTY_CONF_STATE,
  encodeConfChange,
  MAX_CONF_CHANGE_CONTEXT,
} from './core/membership.js';
export type { ProgressState } from './core/progress.js';
