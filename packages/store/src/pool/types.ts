// The pool model shared by the state machine (store), the data plane (proxy, read-only)
// and the admin API (which builds commands). Plain JSON-serialisable records: commands
// travel through the Raft log and snapshots are written to LevelDB.
import type { AuditLog, AuditMeta } from './audit.js';

/** Load-balancing algorithm, chosen cluster-wide. */
export type BalancerKind = 'round-robin' | 'weighted-round-robin' | 'least-connections' | 'power-of-two';

/** Inclusive range of HTTP status codes that count as a passing health check. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** A fully resolved active health-check specification. */
export interface HealthCheckSpec {
  /** false disables active checks for the server (passive ejection still applies). */
  readonly enabled: boolean;
  readonly method: 'GET' | 'HEAD';
  /** Request target, must start with '/'. */
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly expectedStatus: StatusRange;
  /** Consecutive passes before an unhealthy (or new) server becomes healthy. */
  readonly healthyThreshold: number;
  /** Consecutive failures before a healthy server becomes unhealthy. */
  readonly unhealthyThreshold: number;
  /** Each interval is lengthened by a random amount in [0, jitterMs). */
  readonly jitterMs: number;
}

/** Per-server overrides of the pool-wide health-check defaults. */
export type HealthCheckOverrides = Partial<HealthCheckSpec>;

/** Passive health: eject a server after consecutive failed proxied requests. */
export interface PassiveHealthSpec {
  readonly enabled: boolean;
  /** Consecutive connection failures / 5xx-by-origin-error that eject the server. */
  readonly consecutiveFailures: number;
  /** First ejection lasts this long; each further ejection doubles it up to maxEjectionMs. */
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
}

/** Cluster-wide settings replicated with the pool. */
export interface PoolSettings {
  readonly balancer: BalancerKind;
  readonly healthCheck: HealthCheckSpec;
  readonly passiveHealth: PassiveHealthSpec;
}

/** One origin server. `id` is the canonical "ip:port" ("[v6]:port" for IPv6). */
export interface ServerRecord {
  readonly id: string;
  /** Canonical textual form: dotted quad, or compressed lower-case IPv6 without brackets. */
  readonly ip: string;
  readonly port: number;
  /** Relative weight for weighted balancers, integer 1..1000 (default 1). */
  readonly weight: number;
  /** Overrides of settings.healthCheck; {} means "use the pool defaults". */
  readonly healthCheck: HealthCheckOverrides;
  /** A draining server stays in the pool but receives no new requests. */
  readonly draining: boolean;
  /** Log index of the command that created / last changed this record. */
  readonly createdIndex: number;
  readonly updatedIndex: number;
}

/**
 * The immutable view the data plane reads. A new object is built after every applied
 * command and swapped in atomically; nothing in it is ever mutated.
 */
export interface PoolSnapshot {
  /** Index of the last applied command (0 for the empty pool). */
  readonly index: number;
  /** Servers in a deterministic order (by creation index). */
  readonly servers: readonly ServerRecord[];
  readonly settings: PoolSettings;
  /** The audit log of admin changes, oldest first (admin API reads; the data plane does not). */
  readonly audit?: AuditLog;
  /** servers.length, without building the list (the store's snapshots build it lazily). */
  readonly serverCount?: number;
  /**
   * The servers that differ from `earlier`, an older snapshot of the same store: added
   * (no `before`), removed (no `after`) or changed. Costs what changed, not the pool's
   * size. Undefined when unknown (another store's snapshot): compare `servers` instead.
   */
  readonly changesSince?: (earlier: PoolSnapshot) => readonly ServerChangeView[] | undefined;
}

/** One server that differs between two snapshots. */
export interface ServerChangeView {
  readonly id: string;
  readonly before: ServerRecord | undefined;
  readonly after: ServerRecord | undefined;
}

// ---- commands ------------------------------------------------------------------

export interface AddServerCommand {
  readonly type: 'AddServer';
  readonly ip: string;
  readonly port: number;
  readonly weight?: number;
  readonly healthCheck?: HealthCheckOverrides;
}

export interface RemoveServerCommand {
  readonly type: 'RemoveServer';
  readonly ip: string;
  readonly port: number;
}

export interface UpdateServerCommand {
  readonly type: 'UpdateServer';
  readonly ip: string;
  readonly port: number;
  readonly weight?: number;
  /** Replaces the server's overrides as a whole ({} resets to the pool defaults). */
  readonly healthCheck?: HealthCheckOverrides;
  readonly draining?: boolean;
}

export interface UpdateSettingsCommand {
  readonly type: 'UpdateSettings';
  readonly balancer?: BalancerKind;
  /** Merged field-by-field into the current defaults. */
  readonly healthCheck?: HealthCheckOverrides;
  readonly passiveHealth?: Partial<PassiveHealthSpec>;
}

/** Applied atomically: every sub-command succeeds or none does. Not nestable; pool commands only. */
export interface BatchCommand {
  readonly type: 'Batch';
  readonly commands: readonly ServerOrSettingsCommand[];
}

export type ServerOrSettingsCommand = AddServerCommand | RemoveServerCommand | UpdateServerCommand | UpdateSettingsCommand;

export type PoolCommand = ServerOrSettingsCommand | BatchCommand | UpdateMemberCommand | InitClusterCommand;

// ---- membership ------------------------------------------------------------------
//
// The members of a cluster are part of the replicated state. Their Raft roles change
// only through Raft configuration-change entries, whose context carries a
// MemberChangeEnvelope (see membership.ts); the two commands below travel as normal
// entries and change a member's record, never its role.

export type MemberRole = 'voter' | 'learner';

/** One member of the cluster as every replica records it. */
export interface MemberRecord {
  readonly id: string;
  readonly role: MemberRole;
  /** `host:port` other members reach its peer transport at (IPv6 in brackets). */
  readonly raftAddress?: string;
  /** `host:port`, `http://host:port` or `https://host:port` of its admin API. */
  readonly adminAddress?: string;
  /** `host:port` of its proxy listener. */
  readonly proxyAddress?: string;
  /** The leader promotes this learner by itself once it has caught up. */
  readonly autoPromote: boolean;
  /** Random id chosen when the member's data directory was created; set once. */
  readonly incarnation?: string;
  /** Log index of the entry that added the member / last changed its record. */
  readonly addedIndex: number;
  readonly updatedIndex: number;
}

/** Who is in the cluster, as replicated state. */
export interface ClusterState {
  /** Recorded once by the first leader of a new cluster (or by a restore); null before. */
  readonly clusterId: string | null;
  /** By member id, in id order. */
  readonly members: ReadonlyMap<string, MemberRecord>;
}

/** A member's own addresses and incarnation; the record must exist. Fields given replace; the incarnation is set once. */
export interface UpdateMemberCommand {
  readonly type: 'UpdateMember';
  readonly id: string;
  readonly raftAddress?: string;
  readonly adminAddress?: string;
  readonly proxyAddress?: string;
  readonly incarnation?: string;
}

/** Records the cluster id; the first one applied wins. */
export interface InitClusterCommand {
  readonly type: 'InitCluster';
  readonly clusterId: string;
}

/** Context of an addLearner configuration change. */
export interface AddMemberCommand {
  readonly type: 'AddMember';
  readonly id: string;
  readonly raftAddress: string;
  readonly adminAddress: string;
  readonly proxyAddress?: string;
  readonly autoPromote: boolean;
  readonly incarnation?: string;
}

/** Context of an addVoter configuration change (a learner becomes a voter). */
export interface PromoteMemberCommand {
  readonly type: 'PromoteMember';
  readonly id: string;
}

/** Context of a removeNode configuration change. */
export interface RemoveMemberCommand {
  readonly type: 'RemoveMember';
  readonly id: string;
}

export type MemberChangeCommand = AddMemberCommand | PromoteMemberCommand | RemoveMemberCommand;

/** What a configuration-change entry's context holds: the request id makes it idempotent like any write. */
export interface MemberChangeEnvelope {
  readonly requestId: string;
  readonly command: MemberChangeCommand;
  /** Who asked and when, as the proposing leader recorded it (the audit log's source). */
  readonly meta?: AuditMeta;
}

/**
 * What goes into the log. `requestId` lets a retried write (after a timeout or a
 * failover) be applied once: the state machine remembers recent ids and answers a
 * duplicate with the first outcome.
 */
export interface CommandEnvelope {
  readonly requestId: string;
  readonly command: PoolCommand;
  /** Who asked and when, as the proposing leader recorded it (the audit log's source). */
  readonly meta?: AuditMeta;
}

// ---- outcomes ------------------------------------------------------------------

export type MemberChange = 'added' | 'promoted' | 'removed' | 'updated' | 'unchanged';

export type ApplyErrorCode = 'NOT_FOUND' | 'CONFLICT' | 'INVALID';

export type CommandOutcome =
  | { readonly ok: true; readonly status: 'created' | 'updated' | 'unchanged' | 'removed'; readonly server?: ServerRecord }
  | { readonly ok: true; readonly status: 'batch'; readonly results: readonly CommandOutcome[] }
  | { readonly ok: true; readonly status: 'settings'; readonly settings: PoolSettings }
  | { readonly ok: true; readonly status: 'member'; readonly change: MemberChange; readonly member: MemberRecord }
  | { readonly ok: true; readonly status: 'cluster'; readonly clusterId: string }
  | {
      readonly ok: false;
      readonly code: ApplyErrorCode;
      readonly message: string;
      /** For INVALID: path of the offending field, e.g. "commands[1].healthCheck.timeoutMs". */
      readonly field?: string;
    };

/** The answer to a proposal once it has been committed and applied. */
export interface ApplyResult {
  /** Log index at which the command was applied (the first application, for a duplicate). */
  readonly index: number;
  readonly outcome: CommandOutcome;
  /** True when requestId had already been applied and this is the remembered outcome. */
  readonly duplicate: boolean;
}

// ---- the store seen by admin and node ------------------------------------------

/**
 * Where an admin request came from, for the audit log: the node it arrived at and the
 * client's address there (absent for a change a member made by itself).
 */
export interface RequestOrigin {
  readonly nodeId: string;
  readonly client?: string;
}

export interface ProposeOptions {
  /** Client-chosen idempotency key; generated when absent. */
  readonly requestId?: string;
  /** Give up waiting after this long (the command may still apply later). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Where the request came from, for the audit log: the node it arrived at and the
   * client's address. The proposer adds its own clock's time.
   */
  readonly origin?: RequestOrigin;
}

/** A membership change as the admin API asks the cluster for it (POST/DELETE /cluster/members…). */
export interface MemberWriteOptions {
  /** Idempotency-Key. */
  readonly requestId?: string;
  /** Skip the live-quorum (and, for promote, caught-up) checks. */
  readonly force?: boolean;
  readonly timeoutMs?: number;
  /** For the audit log (default: this node, no client). */
  readonly origin?: RequestOrigin;
}

/** What a membership change did. */
export interface MemberWriteResult {
  /** Index at which the change was applied (the current index when nothing changed). */
  readonly index: number;
  readonly duplicate: boolean;
  readonly change: MemberChange;
  readonly member: MemberRecord;
  readonly clusterId: string | null;
}

/**
 * The replicated pool as the rest of weldr sees it. The in-memory store implements it
 * for a single node; the LevelDB + Raft store implements it for a cluster. Errors thrown
 * by propose/read are StoreError (see errors.ts).
 */
export interface PoolStore {
  /** The latest applied snapshot (local, possibly stale on a follower). */
  snapshot(): PoolSnapshot;
  /** Called after every applied command with the new snapshot. Returns an unsubscribe. */
  subscribe(listener: (snapshot: PoolSnapshot) => void): () => void;
  /** Validate, replicate, apply; resolves after apply with the outcome. */
  propose(command: PoolCommand, options?: ProposeOptions): Promise<ApplyResult>;
  /** A snapshot that reflects every write acknowledged before the call (ReadIndex). */
  linearizableSnapshot(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<PoolSnapshot>;
  close(): Promise<void>;
}
