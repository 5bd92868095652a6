// Cluster mode: the pool store is replicated by Raft. One LevelDB database per node
// holds the Raft log (raft/) and the pool state (pool/); the peer transport listens on
// the Raft address; the admin API of a follower forwards writes to the leader's admin
// API, whose address each node advertises in its transport hello.
//
// Active/passive: this node is active while it is the Raft leader *and* holds its
// check-quorum lease (RaftDriver.isActive), so two nodes are never active at once.
//
// This package knows nothing of the node's configuration or logger: the composition
// root (packages/node) maps its settings onto RaftClusterOptions.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { NodeId, Role } from '@weldr/raft';
import { DataDir, DataDirRefusedError, LevelRaftStorage, loadState, RAFT_KEYS, StoreOpenError, UTF8, type ApplyResult } from '@weldr/store';
import { ListenerFailure, RaftDriver, type DriverFailure } from './driver.js';
import { PoolReplica, RaftPoolStore } from './raft-pool-store.js';
import { TcpTransport, type TransportStats } from './transport.js';
import type { ClusterFailure, ClusterLogger, ClusterMemberStatus, ClusterStatus, HostPort, LeadershipTransfer, RaftClusterOptions } from './types.js';
import { MemberWatch } from './member-watch.js';
import { electionTicks } from './timers.js';

/** What the admin API and /ready need to know about the cluster. */
export interface ClusterView {
  isActive(): boolean;
  info(): ClusterStatus;
  /** The node's listeners are up (single node: it becomes active). */
  activate(): void;
  /** Shutdown has begun: never claim readiness again. */
  deactivate(): void;
}

export class RaftCluster implements ClusterView {
  private shuttingDown = false;
  private transport: TcpTransport | null = null;
  private readonly adminUrls = new Map<NodeId, string>();
  private selfAdminUrl: string | null = null;
  /** Two election timeouts without a message: a member is not counted as heard from. */
  private readonly silentMs: number;
  private readonly watch: MemberWatch;
  private watchTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly config: RaftClusterOptions,
    private readonly log: ClusterLogger,
    private readonly dataDir: DataDir,
    readonly driver: RaftDriver<ApplyResult | null>,
    readonly store: RaftPoolStore,
  ) {
    this.silentMs = 2 * config.electionTimeoutMs;
    // Stalled: no progress for ten election timeouts (5 s with the defaults) — far longer
    // than a healthy member takes to catch up on a loopback or LAN link.
    this.watch = new MemberWatch({ silentMs: this.silentMs, stallMs: 10 * config.electionTimeoutMs });
  }

  /**
   * Open the data directory (refused when damaged: DataDirRefusedError) and build the
   * driver; nothing is sent or received until start().
   */
  static async open(config: RaftClusterOptions, log: ClusterLogger): Promise<RaftCluster> {
    const dataDir = await DataDir.open({ location: config.data, nodeId: config.id, log: log.child({ component: 'data-dir' }) });
    const db = dataDir.db;
    let cluster: RaftCluster | undefined;
    try {
      const members = [config.id, ...config.peers.map((p) => p.id)];
      if ((await db.get(RAFT_KEYS.hardState, UTF8 as never)) === undefined) {
        const pool = await loadState(db);
        if (pool !== undefined && pool.appliedIndex > 0) {
          throw new StoreOpenError(
            `data directory ${config.data} holds a single-node pool (${pool.servers.size} servers, index ${pool.appliedIndex}) and no Raft log; ` +
              'start cluster members on empty data directories and add the servers again through the admin API',
          );
        }
      }
      const storage = await LevelRaftStorage.open(db, { bootstrap: members });
      const raftLog = log.child({ component: 'raft' });
      // A subscriber (the proxy's snapshot swap) that throws would leave the data plane on
      // a stale pool while everything looks fine: stop the node instead (kind 'listener').
      const onListenerError = (err: unknown): void => {
        throw new ListenerFailure('a pool subscriber threw', err);
      };
      const replica = await PoolReplica.open(db, onListenerError);
      const hard = storage.initialState().hardState;
      const snapIndex = storage.snapshot().metadata.index;
      // Structural invariants of a node's own directory: the pool is applied from the
      // committed log only, so it can never be ahead of the commit index (or snapshot).
      if (replica.appliedIndex > Math.max(hard.commit, snapIndex)) {
        throw new DataDirRefusedError('damaged', config.data, `its pool is applied up to index ${replica.appliedIndex}, beyond the Raft commit index ${hard.commit}: the Raft log lost writes`);
      }
      await dataDir.begin({ appliedIndex: replica.appliedIndex, commitIndex: hard.commit, lastIndex: storage.lastIndex() });
      const driver = await RaftDriver.create<ApplyResult | null>({
        id: config.id,
        storage,
        app: replica,
        log: raftLog,
        tickMs: config.heartbeatMs,
        electionTick: electionTicks(config.electionTimeoutMs, config.heartbeatMs),
        onFatal: (failure) => cluster?.fatal(failure),
        ...(config.maxQueuedRequests === undefined ? {} : { maxQueuedRequests: config.maxQueuedRequests }),
        ...(config.maxPendingReads === undefined ? {} : { maxPendingReads: config.maxPendingReads }),
      });
      const store = new RaftPoolStore(driver, replica);
      cluster = new RaftCluster(config, log, dataDir, driver, store);
      return cluster;
    } catch (err) {
      await db.close().catch(() => undefined);
      if (err instanceof StoreOpenError) throw err;
      throw new StoreOpenError(`cannot start Raft on data directory ${config.data}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Start the peer transport and the driver; `adminAddress` is advertised to peers for write forwarding. */
  async start(adminAddress: HostPort): Promise<void> {
    const { config, log } = this;
    const self = config.peers.find((p) => p.id === config.id);
    this.selfAdminUrl = `http://${formatHostPort(advertisedAddress(adminAddress, config.raft, self?.address))}`;
    const peers = new Map(config.peers.filter((p) => p.id !== config.id).map((p) => [p.id, { host: p.address.host, port: p.address.port }]));
    const transport = new TcpTransport({
      id: config.id,
      listen: { host: config.raft.host, port: config.raft.port },
      peers,
      ...(config.clusterToken === undefined ? {} : { token: config.clusterToken }),
      ...(config.peerTls === undefined ? {} : { tls: config.peerTls }),
      ...(config.maxPendingConnections === undefined ? {} : { maxPendingConnections: config.maxPendingConnections }),
      ...(config.maxPendingPerSource === undefined ? {} : { maxPendingPerSource: config.maxPendingPerSource }),
      log: log.child({ component: 'raft-transport' }),
      onMessage: (m) => this.driver.receive(m),
      onUnreachable: (id) => this.driver.unreachable(id),
      advertise: () => ({ admin: this.selfAdminUrl ?? '' }),
      onPeerInfo: (id, info) => {
        if (typeof info.admin === 'string' && /^http:\/\/[^/]+$/.test(info.admin)) this.adminUrls.set(id, info.admin);
      },
    });
    await transport.start().catch((err: NodeJS.ErrnoException) => {
      throw new StoreOpenError(`cannot listen for Raft peers on ${formatHostPort(config.raft)}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err });
    });
    this.transport = transport;
    log.info({ event: 'listening', listener: 'raft', host: config.raft.host, port: transport.port, address: formatHostPort({ host: config.raft.host, port: transport.port }) }, `raft listening on ${formatHostPort({ host: config.raft.host, port: transport.port })}`);
    this.driver.onRoleChange((role, leader) => {
      log.info({ event: 'raft_role', role, leader, term: this.driver.node.term }, `raft role: ${role}${leader === null ? '' : `, leader ${leader}`}`);
    });
    this.driver.start(transport);
    this.watchTimer = setInterval(() => this.watchMembers(), 1000);
    this.watchTimer.unref();
  }

  activate(): void {}

  /** The port the peer transport listens on (the real one for port 0); undefined before start. */
  get raftPort(): number | undefined {
    return this.transport?.port;
  }

  /** The peer transport's refusals and pending connections (for metrics); undefined before start. */
  transportStats(): TransportStats | undefined {
    return this.transport?.stats();
  }

  deactivate(): void {
    this.shuttingDown = true;
  }

  isActive(): boolean {
    return !this.shuttingDown && this.driver.isActive();
  }

  /** Where a write this node cannot take should go: the leader's admin URL, if known. */
  leaderAdminUrl(): { leaderId: NodeId; url: string | undefined } | null {
    const { role, leader } = this.driver.node;
    if (role === 'leader' || leader === null) return null;
    return { leaderId: leader, url: this.adminUrls.get(leader) };
  }

  info(): ClusterStatus {
    const s = this.driver.status();
    const address = (id: NodeId): string | undefined => {
      if (id === this.config.id) return formatHostPort(this.config.raft);
      const p = this.config.peers.find((x) => x.id === id);
      return p === undefined ? undefined : formatHostPort(p.address);
    };
    // On the leader: how far each member's log is known to match (replication lag).
    const progress = s.role === 'leader' ? this.driver.node.status().progress : undefined;
    const about = (id: NodeId): Partial<ClusterMemberStatus> => {
      const seen = this.seen(id, s.role, s.leader);
      const p = progress?.[id];
      const judged = id === this.config.id ? undefined : this.watch.judgement(id);
      return {
        ...withAddress(address(id)),
        ...seen,
        ...(p === undefined ? {} : { matchIndex: p.match, replication: p.state }),
        ...(judged === undefined ? {} : { condition: judged.condition, ...(judged.reason === undefined ? {} : { reason: judged.reason }) }),
      };
    };
    return {
      nodeId: this.config.id,
      role: this.isActive() ? 'active' : 'passive',
      leaderId: s.leader,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      members: [...s.config.voters.map((id) => ({ id, role: 'voter' as const, ...about(id) })), ...s.config.learners.map((id) => ({ id, role: 'learner' as const, ...about(id) }))],
    };
  }

  /**
   * A member as this node sees it, never a guess: its own role; the leader it follows;
   * "follower" for another member only when this node leads and hears from it. A member
   * killed a second ago is therefore shown without a role, and unreachable.
   */
  private seen(id: NodeId, role: Role, leader: NodeId | null): Pick<ClusterMemberStatus, 'raftRole' | 'reachable' | 'lastContactMs'> {
    if (id === this.config.id) return { raftRole: raftRoleName(role), reachable: true };
    const peer = this.transport?.peerStatus(id) ?? { reachable: false, lastContactMs: null };
    const heard = peer.reachable && peer.lastContactMs !== null && peer.lastContactMs <= this.silentMs;
    const raftRole = id === leader && heard ? 'leader' : role === 'leader' && heard ? 'follower' : undefined;
    return { ...(raftRole === undefined ? {} : { raftRole }), reachable: peer.reachable, lastContactMs: peer.lastContactMs };
  }

  /** The leader judges its members every second; changes are logged (member_condition). */
  private watchMembers(): void {
    const s = this.driver.status();
    if (s.role !== 'leader' || this.transport === null) {
      this.watch.reset();
      return;
    }
    const progress = this.driver.node.status().progress ?? {};
    const transport = this.transport;
    const observed = Object.entries(progress)
      .filter(([id]) => id !== this.config.id)
      .map(([id, p]) => ({ id, match: p.match, state: p.state, peer: transport.peerStatus(id) }));
    for (const change of this.watch.observe(performance.now(), s.lastIndex, observed)) {
      const trouble = change.to === 'stalled';
      const entry = { event: 'member_condition', member: change.id, from: change.from ?? null, to: change.to, reason: change.reason, term: s.term };
      // Lost and regained at the same level (the transport logs connections likewise);
      // a member that answers yet does not catch up is the case nobody would notice.
      if (trouble) this.log.warn(entry, `member ${change.id} is not catching up: ${change.reason}`);
      else this.log.info(entry, `member ${change.id} ${change.to}${change.reason === undefined ? '' : `: ${change.reason}`}`);
    }
  }

  /**
   * Stop taking part: a leader first hands leadership to a follower (thesis §3.10) so the
   * cluster does not wait an election timeout, then the driver, transport and database close.
   */
  async stop(): Promise<void> {
    this.shuttingDown = true;
    if (this.watchTimer !== null) clearInterval(this.watchTimer);
    this.watchTimer = null;
    await this.handOff();
    await this.store.close();
    await this.driver.stop();
    await this.transport?.close();
    // A clean stop records where the log and the pool are (checked at the next open);
    // after a failure nothing more is written.
    const storage = this.driver.failure === null ? this.storageProgress() : undefined;
    await this.dataDir.close(storage);
  }

  private storageProgress(): { appliedIndex: number; commitIndex: number; lastIndex: number } {
    // What is durable, not what the core holds in memory.
    const storage = this.driver.storage;
    return { appliedIndex: this.driver.status().appliedIndex, commitIndex: storage.initialState().hardState.commit, lastIndex: storage.lastIndex() };
  }

  /** The driver stopped for good: say what failed and what to do, once. */
  private fatal(failure: DriverFailure): void {
    this.shuttingDown = true;
    const { data } = this.config;
    const cause = failure.error.message;
    // The state machine writes to the same LevelDB: an I/O error while applying is a failed write too.
    const kind = failure.kind === 'apply' && isIoError(failure.error) ? 'storage' : failure.kind;
    const message =
      kind === 'storage'
        ? `a write to data directory ${data} failed (${cause}): this node gave up its role and stops; free space or repair the file system, then restart it (acknowledged writes are on the other members)`
        : failure.kind === 'apply'
          ? `applying committed entries to data directory ${data} failed (${cause}): this node gave up its role and stops; free space or repair the file system, then restart it`
          : `${kind === 'listener' ? 'a listener threw inside the Raft loop' : 'the Raft loop failed'} (${cause}): this is a bug; this node gave up its role and stops; restart it, and report the bug with this log`;
    const report: ClusterFailure = { kind, data, message, error: failure.error };
    if (this.config.onFatal !== undefined) this.config.onFatal(report);
    else this.log.error({ event: 'fatal', kind, data, err: { message: cause } }, message);
  }

  private async handOff(): Promise<void> {
    if (this.driver.node.role !== 'leader') return;
    const result = await this.transferLeadership(undefined);
    if (result.ok) this.log.info({ event: 'leadership_handed_off', to: result.leaderId }, `leadership handed to ${result.leaderId}`);
    else this.log.warn({ event: 'leadership_hand_off_failed', reason: result.reason }, 'leadership could not be handed off before stopping');
  }

  /**
   * Hand leadership to `to`, or to the follower with the most of the log (thesis §3.10).
   * Resolves once another node leads, or after two election timeouts.
   */
  async transferLeadership(to: NodeId | undefined): Promise<LeadershipTransfer> {
    const node = this.driver.node;
    if (node.role !== 'leader') return { ok: false, reason: 'notLeader', leaderId: node.leader };
    const status = node.status();
    let target = to;
    if (target === undefined) {
      let bestMatch = -1;
      for (const [id, p] of Object.entries(status.progress ?? {})) {
        if (id === this.config.id || !status.config.voters.includes(id)) continue;
        if (p.match > bestMatch) {
          target = id;
          bestMatch = p.match;
        }
      }
      if (target === undefined) return { ok: false, reason: 'invalidTarget', message: 'no other voter to hand the leadership to', leaderId: this.config.id };
    } else if (target === this.config.id) {
      return { ok: true, leaderId: target };
    } else if (!status.config.voters.includes(target)) {
      return { ok: false, reason: 'invalidTarget', message: `${target} is not a voting member`, leaderId: this.config.id };
    }
    const chosen = target;
    const moved = await new Promise<boolean>((resolve) => {
      const done = this.driver.onRoleChange((role, leader) => {
        if (role !== 'leader' && leader !== null && leader !== this.config.id) finish(true);
      });
      const timer = setTimeout(() => finish(false), 2 * this.config.electionTimeoutMs);
      function finish(ok: boolean): void {
        clearTimeout(timer);
        done();
        resolve(ok);
      }
      this.driver.transferLeadership(chosen);
    });
    const leaderId = this.driver.node.leader;
    if (moved && leaderId !== null) return { ok: true, leaderId };
    return { ok: false, reason: 'timedOut', message: `the leadership did not move to ${chosen} in time`, leaderId };
  }
}

/** LevelDB's I/O failures (classic-level: code LEVEL_IO_ERROR, message "IO error: …"). */
function isIoError(err: Error): boolean {
  return (err as { code?: unknown }).code === 'LEVEL_IO_ERROR' || err.message.startsWith('IO error');
}

/** The core's role names as /cluster spells them. */
function raftRoleName(role: Role): string {
  return role === 'preCandidate' ? 'pre-candidate' : role;
}

function withAddress(address: string | undefined): { address?: string } {
  return address === undefined ? {} : { address };
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '';

/**
 * The admin URL peers should use. An admin listener bound to a wildcard is advertised
 * with the host peers already use for this node: its own --peers entry, else the Raft
 * listener's host, else the machine's host name.
 */
function advertisedAddress(admin: HostPort, raft: HostPort, selfPeer: HostPort | undefined): HostPort {
  if (!isWildcard(admin.host)) return admin;
  if (selfPeer !== undefined && !isWildcard(selfPeer.host)) return { host: selfPeer.host, port: admin.port };
  if (!isWildcard(raft.host)) return { host: raft.host, port: admin.port };
  return { host: hostname(), port: admin.port };
}

function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
