// The cluster's own view of its settings and of what it reports; packages/node maps its
// configuration and logger onto these, so nothing here depends on the node package.
import type { NodeId } from '@weldr/raft';
import type { ServingOptions, ServingStatus } from './serving.js';
import type { PeerTlsSource } from './transport.js';

export interface HostPort {
  /** IP address or host name, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

export interface PeerSpec {
  readonly id: NodeId;
  readonly address: HostPort;
}

export interface RaftClusterOptions {
  /** This member's id. */
  readonly id: NodeId;
  /** The data directory (LevelDB): Raft log, hard state and pool state. */
  readonly data: string;
  /** Where the peer transport listens. */
  readonly raft: HostPort;
  /** Where peers reach this node's Raft listener, if not its --peers entry or `raft`. */
  readonly raftAdvertise?: HostPort | undefined;
  /** The members' Raft addresses (this node's own entry allowed). */
  readonly peers: readonly PeerSpec[];
  /** Shared secret members prove in their handshake (it never travels); undefined: none. */
  readonly clusterToken?: string | undefined;
  /** Peer TLS material (this member's certificate naming its id, key, cluster CA); undefined: plain TCP. */
  readonly peerTls?: PeerTlsSource | undefined;
  /** Raft connections waiting to authenticate, at most, in total and per source. Defaults 64 and 8. */
  readonly maxPendingConnections?: number | undefined;
  readonly maxPendingPerSource?: number | undefined;
  /** One Raft tick, ms. */
  readonly heartbeatMs: number;
  /** Election timeout, ms (randomized to [T, 2T)). */
  readonly electionTimeoutMs: number;
  /** Who serves client traffic, and what happens without a quorum (serving.ts). Default active-passive, stop. */
  readonly serving?: ServingOptions;
  /**
   * Fast failover: on evidence that the leader's process is gone (its connections
   * closed and its Raft port refuses connections: leader-death.ts), followers waive
   * their promise to it and elect a new leader at once. Default true.
   */
  readonly fastFailover?: boolean | undefined;
  /** Allow step-down and isolation through the admin API (failover drills). Default false. */
  readonly faultInjection?: boolean;
  /** Admin URL of a member: an empty data directory asks that cluster to add this node. */
  readonly join?: string | undefined;
  /** How long a join may keep retrying (elections, a change in flight). Default 60 s. */
  readonly joinDeadlineMs?: number | undefined;
  /** Aborted when the operator stops the node while it is still starting: a join in progress gives up at once. */
  readonly signal?: AbortSignal | undefined;
  /** The admin token, for the join request (a write). */
  readonly adminToken?: string | undefined;
  /** A backup document (GET /cluster/snapshot): an empty data directory seeds a new cluster from it. */
  readonly restore?: { readonly path: string; readonly text: string } | undefined;
  /**
   * Called once if the node must stop: a write to the data directory failed, applying
   * failed, or a listener threw inside the Raft loop. By then the node has given up its
   * role and answers nothing more; the embedder should exit (the cluster never does).
   * Without it the failure is logged at error level.
   */
  readonly onFatal?: ((failure: ClusterFailure) => void) | undefined;
  /** Driver bounds (RaftDriverOptions); defaults when left out. */
  readonly maxQueuedRequests?: number | undefined;
  readonly maxPendingReads?: number | undefined;
}

/** Why the node stopped, in operator terms. */
export interface ClusterFailure {
  /** storage: a write to the data directory; apply: applying committed entries; listener / internal: a bug. */
  readonly kind: 'storage' | 'apply' | 'listener' | 'internal';
  /** The data directory. */
  readonly data: string;
  /** One line: what failed, where, and what to do. */
  readonly message: string;
  readonly error: Error;
}

/** The subset of pino the cluster uses; a pino Logger satisfies it. */
export interface ClusterLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): ClusterLogger;
}

export interface ClusterMemberStatus {
  readonly id: NodeId;
  readonly role: 'voter' | 'learner';
  /** Raft address, from the member's record (a seed's from --peers until recorded). */
  readonly address?: string;
  readonly adminAddress?: string;
  readonly proxyAddress?: string;
  /** As this node knows it (never a guess): absent when it cannot know. */
  readonly raftRole?: string;
  /** This node's own peer connection to the member is up. */
  readonly reachable?: boolean;
  /** Milliseconds since this node last received a message from the member; null: never. */
  readonly lastContactMs?: number | null;
  readonly matchIndex?: number;
  readonly replication?: string;
  /** On the leader: heard from within two election timeouts. */
  readonly live?: boolean;
  /** On the leader: current, catching-up, stalled, silent or unreachable (member-watch.ts). */
  readonly condition?: string;
  /** On the leader: why the member is not current, when known. */
  readonly reason?: string;
}

/** What /cluster reports (the admin API's ClusterInfo has this shape). */
export interface ClusterStatus {
  readonly nodeId: NodeId;
  readonly role: 'active' | 'passive';
  readonly leaderId: NodeId | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** The cluster's id; null before the first leader recorded one (and on a single node). */
  readonly clusterId?: string | null;
  readonly members: readonly ClusterMemberStatus[];
  /** Whether this node serves client traffic now, and why. */
  readonly serving?: ServingStatus;
}

export type LeadershipTransfer =
  | { readonly ok: true; readonly leaderId: NodeId }
  | { readonly ok: false; readonly reason: 'notLeader'; readonly leaderId: NodeId | null }
  | { readonly ok: false; readonly reason: 'invalidTarget' | 'timedOut'; readonly message: string; readonly leaderId: NodeId | null };
