// Wire and storage types of the Raft core. Every type here is a plain object
// (strings, numbers, booleans, arrays, Uint8Array) so a transport can encode
// it as JSON, base64-ing the Uint8Array fields.

/** A server's name, e.g. "n1". Never the empty string. */
export type NodeId = string;

/**
 * normal: an opaque application command.
 * confChange: a JSON-encoded ConfChange (see membership.ts); takes effect when
 *   appended to a log (thesis §4.1), not when committed.
 * noop: appended by every new leader so it can commit entries of earlier terms
 *   (§5.4.2, §8 "a leader must have committed an entry from its term").
 */
export type EntryType = 'normal' | 'confChange' | 'noop';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent (§5.1 Figure 2 "persistent state"). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
  /**
   * The lease (ms of this server's clock) it promised the leader of the
   * latest round it acknowledged: after a restart it refuses votes at least
   * that long (README, "The lease"). Absent reads as 0 (state written before
   * the field existed, or nothing promised yet).
   */
  readonly lease?: number;
}

/** Single-server membership (thesis §4.1): voters elect and commit, learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** One piece of a snapshot in flight (thesis §5.3 InstallSnapshot, sent in chunks). */
export interface SnapshotChunk {
  readonly metadata: SnapshotMetadata;
  /** 0-based chunk number. */
  readonly chunk: number;
  /** Total number of chunks (≥ 1). */
  readonly chunks: number;
  readonly data: Uint8Array;
}

export const MESSAGE_TYPES = [
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgPreVote',
  'MsgPreVoteResp',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgSnap',
  'MsgSnapResp',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgTimeoutNow',
] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * One Raft message. Field meaning depends on `type`:
 *
 * | type | index | logTerm | commit | reject/rejectHint |
 * | --- | --- | --- | --- | --- |
 * | MsgApp | index of the entry before `entries` | its term | leader commit | – |
 * | MsgAppResp | last index appended, or the rejected MsgApp's index | hint term on reject | – | conflict hint index |
 * | MsgVote/MsgPreVote | candidate's last index | its term | – | – |
 * | MsgHeartbeat | – | – | min(match, commit) | – |
 * | MsgSnapResp | snapshot index | – | – | rejectHint = chunks received |
 * | MsgReadIndexResp | read index | – | – | – |
 *
 * `tick` is the leader's own tick count when it sent MsgApp/MsgHeartbeat/MsgSnap;
 * followers echo it back so the leader can date its check-quorum lease by the
 * *send* time of the round a quorum acknowledged. A response that echoes no
 * round (the answer to a stale-term message) carries tick 0, which the leader
 * never counts.
 *
 * `lease` on MsgApp/MsgHeartbeat/MsgSnap is the promise the leader needs for
 * its lease: ms of the follower's own clock during which a follower that
 * accepts the round neither votes for another server nor campaigns. Followers
 * echo it in their answer; the leader's lease counts only echoes that carry
 * its promise. 0 elsewhere (and from a peer that predates the field).
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly tick: number;
  readonly lease: number;
  readonly entries?: readonly Entry[];
  readonly snapshot?: SnapshotChunk;
  /** ReadIndex request id, or "transfer" on a vote forced by MsgTimeoutNow. */
  readonly context?: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/** A linearizable read point: once the state machine has applied `index`, a read for `context` may be served (thesis §6.4). */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/**
 * Work the driver must do, in this order (etcd's Ready contract):
 *  1. persist `snapshot` (if any), then `entries` and `hardState` — atomically and durably;
 *  2. only then send `messages` (votes and acknowledgements promise durable state) —
 *     except those for which mayPrecedePersistence() is true (the leader's appends,
 *     thesis §10.2.1), which may be sent as soon as the Ready is taken;
 *  3. apply `snapshot` (if any) to the state machine, then `committedEntries` in order;
 *  4. serve `readStates` once the applied index reaches each one's index;
 *  5. call `advance(ready)`.
 * Nothing in a Ready may be acted on out of this order, and no other Ready is
 * produced before `advance`.
 */
export interface Ready {
  /** Present when leader or role changed; volatile, never persisted. */
  readonly softState?: SoftState;
  /** Present when term, vote or commit changed. */
  readonly hardState?: HardState;
  /** Entries to append; entries already stored at or after entries[0].index must be discarded first. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist (replacing the log) and to restore the state machine from. */
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /**
   * True when hardState term/vote changed or there are entries or a snapshot
   * to persist: the write must be fsynced before any message is sent. (A
   * commit-only change may be written without fsync; losing it is harmless.)
   */
  readonly mustSync: boolean;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

/** One membership change (thesis §4.1 single-server change). addVoter on a learner promotes it. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /**
   * Opaque to the core, carried in the entry (etcd's ConfChange.Context): the
   * application's record of the change (e.g. the new member's addresses), applied
   * with it at the same index. At most MAX_CONF_CHANGE_CONTEXT characters.
   */
  readonly context?: string;
}

/** Why the core refused a local request. */
export type RefusalReason =
  | 'notLeader'
  | 'noLeader'
  | 'transferring'
  | 'confChangePending'
  | 'invalidConfChange'
  | 'notMember'
  | 'invalidTarget'
  | 'inLease'
  | 'uncommittedLimit'
  /** The application holds this server's campaigns back (RaftConfig.mayCampaign). */
  | 'campaignHeld';

export type Refusal = { readonly ok: false; readonly reason: RefusalReason; readonly leader: NodeId | null };

export type ProposeResult = { readonly ok: true; readonly index: number; readonly term: number } | Refusal;
export type RequestResult = { readonly ok: true } | Refusal;
