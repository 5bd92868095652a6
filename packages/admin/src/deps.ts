// What the admin API needs from the rest of the node, as structural interfaces so this
// package depends on no other package's internals (the proxy is never imported).
import type { Registry } from 'prom-client';
import type { AddMemberCommand, MemberChange, MemberRecord, MemberWriteOptions, MemberWriteResult, PoolStore, RequestOrigin } from '@weldr/store';
import type { NodeEvent } from './node-events.js';
import type { StatsHistoryView } from './stats-history.js';

export interface CounterPair {
  readonly success: number;
  readonly failed: number;
}

export type ServerHealth = 'healthy' | 'unhealthy' | 'unknown';

export interface LastCheckView {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
}

/** One origin as the data plane sees it. */
export interface ServerStatsView {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly success: number;
  readonly failed: number;
  readonly health: ServerHealth;
  readonly ejected: boolean;
  /** Epoch milliseconds at which a passive ejection ends. */
  readonly ejectedUntil?: number;
  readonly draining: boolean;
  /** Requests in flight. */
  readonly active: number;
  readonly lastCheck?: LastCheckView;
  /** Outcomes of the last active checks (at most 10), oldest first; true = passed. */
  readonly recentChecks?: readonly boolean[];
}

/**
 * The node's request totals without the per-server list: what GET /stats and the status
 * page's history need, at a cost that does not grow with the pool. `originActive`: the
 * requests in flight to origins (the sum of the servers' `active`).
 */
export interface ProxyTotalsView {
  readonly client: CounterPair;
  readonly server: CounterPair;
  readonly failOpen: boolean;
  readonly originActive: number;
}

/** The proxy's stats(), as the admin API reads it. */
export interface ProxyStatsView {
  readonly client: CounterPair;
  readonly server: CounterPair;
  readonly failOpen: boolean;
  readonly servers: readonly ServerStatsView[];
}

export interface ClusterMember {
  readonly id: string;
  readonly address?: string;
  readonly role: 'voter' | 'learner';
  /**
   * The member's Raft role as this node knows it: its own, 'leader' for the leader it
   * follows, 'follower' only for a member this leader heard from lately; absent when
   * this node cannot know.
   */
  readonly raftRole?: string;
  /** This node's own connection to the member is up (always true for itself). */
  readonly reachable?: boolean;
  /** Milliseconds since this node last received a message from the member; null: never. */
  readonly lastContactMs?: number | null;
  /** On the leader: how far the member's log is known to match, and how it replicates. */
  readonly matchIndex?: number;
  readonly replication?: string;
  /** On the leader: current, catching-up, stalled, silent or unreachable, and why. */
  readonly condition?: string;
  readonly reason?: string;
}

/** A member record as GET /cluster/members lists it. */
export type MemberView = MemberRecord & { readonly matchIndex?: number; readonly live?: boolean };

export interface MemberListView {
  readonly clusterId: string | null;
  readonly leaderId: string | null;
  /** Applied index the list reflects. */
  readonly index: number;
  readonly members: readonly MemberView[];
}

export type { MemberWriteOptions, MemberWriteResult } from '@weldr/store';

/**
 * Membership of a cluster (packages/cluster's RaftCluster has this shape). Errors are
 * StoreErrors: NOT_LEADER, NOT_FOUND, CONFLICT, CHANGE_IN_PROGRESS, QUORUM_AT_RISK,
 * MEMBER_EXISTS, NOT_CAUGHT_UP, TIMEOUT, …
 */
export interface MembershipAdmin {
  list(options: { stale: boolean; timeoutMs: number }): Promise<MemberListView>;
  add(command: AddMemberCommand, options: MemberWriteOptions): Promise<MemberWriteResult>;
  promote(id: string, options: MemberWriteOptions): Promise<MemberWriteResult>;
  remove(id: string, options: MemberWriteOptions): Promise<MemberWriteResult>;
  /** A backup document of the replicated state and the index it reflects. */
  snapshot(options: { stale: boolean; timeoutMs: number }): Promise<{ readonly index: number; readonly document: unknown }>;
}

/** What a leadership transfer did. */
export type LeadershipTransfer =
  | { readonly ok: true; readonly leaderId: string }
  | { readonly ok: false; readonly reason: 'notLeader'; readonly leaderId: string | null }
  | { readonly ok: false; readonly reason: 'invalidTarget' | 'timedOut'; readonly message: string; readonly leaderId: string | null };

/** Whether this node serves client traffic now (GET /serving); see docs/operations.md#serving-modes. */
export interface ServingView {
  readonly mode: 'active-passive' | 'all';
  readonly serving: boolean;
  /** Holds the active role (what GET /ready answers). */
  readonly active: boolean;
  readonly reason: string;
  /** The pool includes every write acknowledged more than this many ms ago; null: never confirmed. */
  readonly stalenessMs: number | null;
  readonly staleLimitMs?: number;
  readonly quorumLoss: 'stop' | 'keep-serving';
}

/** A fault the node refused to inject. */
export interface FaultRefusal {
  readonly ok: false;
  /** disabled: the node was not started with fault injection; notLeader: step-down on a follower. */
  readonly reason: 'disabled' | 'notLeader';
  readonly message: string;
  readonly leaderId?: string | null;
}

/**
 * Fault injection for failover drills (`weldr drill`), present in cluster mode. Every
 * call is refused unless the node was started with --fault-injection on.
 */
export interface FaultInjector {
  status(): { readonly enabled: boolean; readonly isolated: boolean; readonly remainingMs?: number };
  /** The leader abdicates at once, as if it had lost its quorum. */
  stepDown(): Promise<{ readonly ok: true; readonly term: number } | FaultRefusal>;
  /** Drop all Raft traffic to and from this node for `ms`; it heals by itself. */
  isolate(ms: number): { readonly ok: true } | FaultRefusal;
  /** End an isolation now. */
  heal(): { readonly ok: true; readonly healed: boolean } | FaultRefusal;
}

export interface ClusterInfo {
  readonly nodeId: string;
  readonly role: 'active' | 'passive';
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** Extra fields a member carries (match index, last contact, …) are passed through. */
  readonly members: readonly ClusterMember[];
}

/** GET /node: this node's identity and its own settings (never a secret). */
export interface NodeView {
  readonly id: string;
  readonly version: string;
  readonly pid: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Bound listener addresses by name (proxy, proxy-tls, admin, raft): the real ports, also for port 0. */
  readonly listeners: Readonly<Record<string, string>>;
  /** The resolved configuration, secrets replaced by "[redacted]". */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** The subset of pino the admin API uses; a pino Logger satisfies it. */
export interface AdminLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AdminDeps {
  readonly pool: PoolStore;
  /** The node's data-plane figures; a promise when they are gathered from worker processes. */
  readonly stats: { stats(): ProxyStatsView | Promise<ProxyStatsView>; totals?(): ProxyTotalsView | Promise<ProxyTotalsView> };
  readonly cluster: {
    info(): ClusterInfo;
    isActive(): boolean;
    /**
     * The current Raft term, for GET /ready. Default: `info().term`, which builds the
     * whole cluster status — on a node that samplers ask every few milliseconds.
     */
    term?(): number;
    /** Cluster mode only: hand leadership to `to` (or the most up-to-date follower). */
    transferLeadership?(to: string | undefined): Promise<LeadershipTransfer>;
    /** "Can serve now" (GET /serving); without it a node serves while it is active. */
    serving?(): ServingView;
  };
  /**
   * This node's id, for the audit log's origin of a write that arrived here. Default:
   * `cluster.info().nodeId`, which builds the whole cluster status — on every write.
   */
  readonly nodeId?: string;
  /** GET /stats/history: recent samples of the request counters (StatsHistory); empty without. */
  readonly history?: { view(): StatsHistoryView };
  /** GET /events: what this node saw happen (NodeEvents); empty without. */
  readonly events?: { since(seq: number): { events: readonly NodeEvent[]; next: number } };
  /** GET /node: identity and settings; without it, only the id from cluster.info(). */
  readonly node?: () => NodeView;
  /** Fault injection for drills (cluster mode); absent: every fault route answers 403. */
  readonly faults?: FaultInjector;
  /** Served at /metrics; the admin API registers its own request metrics here too. */
  readonly metrics: Registry;
  readonly log: AdminLogger;
  /** Largest accepted request body. Default 64 KiB. */
  readonly bodyLimitBytes?: number;
  /** Largest POST /servers/batch body (up to 1,000 commands). Default 1 MiB. */
  readonly batchBodyLimitBytes?: number;
  /** How long a write waits for commit + apply (and a read for ReadIndex). Default 5000. */
  readonly requestTimeoutMs?: number;
  /**
   * Names the listener of this node at ip:port (canonical), e.g. "proxy", or undefined.
   * POST /servers refuses such an address: the proxy would forward to itself, every
   * request (and health check) looping until its headers overflow.
   */
  readonly ownListenerAt?: (ip: string, port: number) => string | undefined;
  /**
   * Cluster membership and backups (/cluster/members, /cluster/snapshot). A node
   * without it answers those reads from `cluster.info()` and refuses membership writes.
   */
  readonly members?: MembershipAdmin;
  /**
   * When set, POST/PATCH/DELETE need `Authorization: Bearer <token>`; with `reads`, so do
   * GET and HEAD, except on `openPaths` (probes such as /health and /ready).
   */
  readonly auth?: { readonly token: string; readonly reads?: boolean; readonly openPaths?: readonly string[] };
  /**
   * Cluster mode: for a write relayed by a follower, the node it arrived at and the
   * client's address there — only when the relay proves it came from a member (the
   * node verifies its signature); undefined otherwise, and the audit log then records
   * this node and the address the request came from. Without it, relay headers are
   * never trusted.
   */
  /**
   * Resolves once this node's proxy (all its worker processes) routes with the pool as
   * last applied here. A pool write is answered after it: a client that removed or
   * drained a server does not see its next request through this node reach it.
   */
  readonly dataPlaneSynced?: () => Promise<void>;
  readonly relayOrigin?: (req: { readonly headers: Readonly<Record<string, string | string[] | undefined>>; readonly method?: string | undefined; readonly url?: string | undefined }) => RequestOrigin | undefined;
}

export type { RequestOrigin } from '@weldr/store';

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
// 1,000 commands with health-check overrides fit; one Raft entry stays far below the
// peer transport's frame limit.
export const DEFAULT_BATCH_BODY_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

/** A logger that drops everything, for tests and embedders that do not log. */
export const silentLogger: AdminLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});
