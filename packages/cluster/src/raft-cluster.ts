// Cluster mode: the pool store is replicated by Raft. One LevelDB database per node
// holds the Raft log (raft/), the replicated state (pool/: the pool, the settings and
// the member records) and the node's own identity (node/); the peer transport listens
// on the Raft address; the admin API of a follower relays writes to the leader's admin
// address, taken from the leader's replicated member record.
//
// Active/passive: this node is active while it is the Raft leader *and* holds its
// check-quorum lease (RaftDriver.isActive), so two nodes are never active at once.
//
// How a data directory becomes a member's (open):
//   - bootstrap: empty, --peers names other members → the seed configuration of a new
//     cluster (identical bootstrap entries on every seed); the first leader records a
//     random cluster id;
//   - join: empty, --join URL → no log at all; the node asks the cluster to add it as
//     a learner (join.ts) and receives the configuration and a snapshot;
//   - restore: empty, --restore FILE → the file's state is the first snapshot of a new
//     one-member cluster (backup.ts);
//   - member: a Raft log is there → the replicated records say who the members are;
//     --join is ignored, and --peers is only a second address to try for a member its
//     record's address does not reach (a cluster moved as a whole: peerAddresses).
// Each of the first three writes the node's identity (a random incarnation) first.
//
// This package knows nothing of the node's configuration or logger: the composition
// root (packages/node) maps its settings onto RaftClusterOptions.
import { createHash, randomBytes } from 'node:crypto';
import { parseLeaderGoneContext, type NodeId, type Role } from '@weldr/raft';
import {
  adminUrlOf,
  DataDir,
  DataDirRefusedError,
  LevelRaftStorage,
  loadState,
  readIdentity,
  RAFT_KEYS,
  readMarker,
  StoreError,
  updateMarker,
  StoreOpenError,
  UTF8,
  validateHostPort,
  validateAdminAddress,
  writeIdentity,
  type AddMemberCommand,
  type ApplyResult,
  type NodeIdentity,
  type PoolDb,
  type PoolState,
} from '@weldr/store';
import { advertisedAddress, formatHostPort, isWildcard, parseHostPort } from './addresses.js';
import { parseSnapshotDocument, restoredSnapshot, snapshotDocument, SnapshotFileError, type SnapshotDocument } from './backup.js';
import { ListenerFailure, RaftDriver, type DriverFailure } from './driver.js';
import { IdentityGuard } from './identity.js';
import { fetchMembers, JoinRefused, joinCluster } from './join.js';
import { MembershipManager, type MemberList, type MemberWriteOptions, type MemberWriteResult, type OwnAttributes } from './membership.js';
import { PoolReplica, RaftPoolStore } from './raft-pool-store.js';
import { TcpTransport, type PeerHello, type TransportStats } from './transport.js';
import { LeaderDeathWatch } from './leader-death.js';
import { BootstrapGate } from './bootstrap-gate.js';
import type { ClusterFailure, ClusterLogger, ClusterMemberStatus, ClusterStatus, HostPort, LeadershipTransfer, RaftClusterOptions } from './types.js';
import { MemberWatch } from './member-watch.js';
import { electionTicks } from './timers.js';
import { IsolationGate, type IsolationStatus } from './faults.js';
import { DEFAULT_SERVING, ServingTracker, type ServingStatus } from './serving.js';

/** What the admin API and /ready need to know about the cluster. */
export interface ClusterView {
  isActive(): boolean;
  info(): ClusterStatus;
  /** The node's listeners are up (single node: it becomes active). */
  activate(): void;
  /** Shutdown has begun: never claim readiness again. */
  deactivate(): void;
  /** Whether to send client traffic here (GET /serving); see serving.ts. */
  serving?(): ServingStatus;
}

/** Refused fault injection (the node was not started with it, or it cannot apply now). */
export class FaultRefusedError extends Error {
  constructor(
    readonly reason: 'disabled' | 'notLeader',
    message: string,
  ) {
    super(message);
    this.name = 'FaultRefusedError';
  }
}

/** Why a running member must stop on its own; the node exits with `exitCode`. */
export interface ClusterEnd {
  readonly reason: 'member_removed' | 'state_lost' | 'storage_failed';
  readonly exitCode: number;
  readonly message: string;
}

type Mode = 'bootstrap' | 'join' | 'restore' | 'member';

/** How long a removed member keeps serving the answers in flight before it stops. */
const REMOVED_LINGER_MS = 2000;

/** Listeners of this node, once bound (advertised to the cluster in its member record). */
export interface BoundListeners {
  readonly admin: HostPort;
  /** The admin API speaks HTTPS: the member record's admin address says https://. */
  readonly adminTls?: boolean;
  readonly proxy?: HostPort;
  /** How the join request reaches the cluster's admin API (its trust for HTTPS); default: global fetch. */
  readonly fetch?: typeof fetch;
}

export class RaftCluster implements ClusterView {
  private shuttingDown = false;
  private transport: TcpTransport | null = null;
  /** Two election timeouts without a message: a member is not counted as heard from. */
  private readonly silentMs: number;
  private readonly watch: MemberWatch;
  private watchTimer: NodeJS.Timeout | null = null;
  private guard: IdentityGuard | null = null;
  private membership: MembershipManager | null = null;
  private own: OwnAttributes = {};
  /** Members named before this node has a configuration of its own: --peers, or the join answer. */
  private seeds: Map<NodeId, string>;
  /**
   * What the join answer named: every member it listed (with a Raft address or not yet)
   * and the cluster id. Before this node holds a configuration it admits these peers:
   * the leader must reach it to send the configuration at all.
   */
  private joined: { readonly ids: ReadonlySet<NodeId>; readonly clusterId: string | null } | null = null;
  /** Raft addresses admitted peers gave in their hellos, for peers no record or seed names (heardAddress); never put in a record. */
  private readonly heard = new Map<NodeId, string>();
  /**
   * The Raft address each admitted peer's last hello gave, tried after the one this node
   * dials it at (peerAddresses): a --peers that names the wrong member at an address
   * heals once that member connects in. Never put in a record.
   */
  private readonly claimed = new Map<NodeId, string>();
  private lastState: PoolState;
  private endWith: ((end: ClusterEnd) => void) | null = null;
  private fetch: typeof fetch | undefined;
  /** Resolves when the member must stop on its own (removed, state lost); never otherwise. */
  readonly ended: Promise<ClusterEnd>;
  /** Fault injection (failover drills): cuts the Raft traffic while isolated. */
  private readonly gate: IsolationGate;
  private readonly servingTracker: ServingTracker;
  /** The fast failover path's evidence (--raft-fast-failover). */
  private readonly deathWatch: LeaderDeathWatch;
  /** A new cluster's first election waits until every seed was reached (bootstrap-gate.ts). */
  readonly bootstrapGate: BootstrapGate;

  private constructor(
    private readonly config: RaftClusterOptions,
    private readonly log: ClusterLogger,
    private readonly dataDir: DataDir,
    private identity: NodeIdentity,
    private readonly mode: Mode,
    readonly driver: RaftDriver<ApplyResult | null>,
    private readonly replica: PoolReplica,
    readonly store: RaftPoolStore,
  ) {
    this.silentMs = 2 * config.electionTimeoutMs;
    // Stalled: no progress for ten election timeouts (5 s with the defaults) — far longer
    // than a healthy member takes to catch up on a loopback or LAN link.
    this.watch = new MemberWatch({ silentMs: this.silentMs, stallMs: 10 * config.electionTimeoutMs });
    this.gate = new IsolationGate(log.child({ component: 'faults' }));
    this.deathWatch = new LeaderDeathWatch({
      self: config.id,
      view: () => ({ term: this.driver.node.term, leader: this.driver.node.leader, role: this.driver.node.role }),
      // Only where the leader proved who it is: a recorded or --peers address it may have
      // left refuses connections without saying anything about its process.
      raftAddress: (id) => this.transport?.provenAddress(id),
      connected: (id) => this.transport?.connectedTo(id) === true,
      adminAddress: (id) => {
        const admin = this.replica.current.cluster.members.get(id)?.adminAddress;
        if (admin === undefined) return undefined;
        try {
          return parseHostPort(admin.replace(/^https?:\/\//, ''));
        } catch {
          return undefined;
        }
      },
      // An isolated node (fault injection) learns nothing about its peers.
      enabled: () => config.fastFailover !== false && !this.gate.isolated && !this.shuttingDown,
      leaderGone: (term, leader) => this.driver.leaderGone(term, leader),
      log: log.child({ component: 'raft' }),
    });
    this.servingTracker = new ServingTracker(config.serving ?? DEFAULT_SERVING, {
      self: config.id,
      isActive: () => this.isActive(),
      term: () => this.driver.node.term,
      leader: () => this.driver.node.leader,
      readBarrier: () => this.driver.readBarrier(),
      now: () => performance.now(),
    });
    this.bootstrapGate = new BootstrapGate({
      self: config.id,
      // A seed (its directory made from --peers) that has seen no election yet: still the
      // bootstrap's term 1, and no leader ever recorded a cluster id.
      firstElection: () => this.identity.bootstrap !== undefined && this.driver.node.term <= 1 && this.replica.current.cluster.clusterId === null,
      voters: () => this.driver.node.config.voters,
      log: log.child({ component: 'raft' }),
      now: () => performance.now(),
    });
    this.seeds = new Map(config.peers.filter((p) => p.id !== config.id).map((p) => [p.id, formatHostPort(p.address)]));
    this.lastState = replica.current;
    this.ended = new Promise((resolve) => (this.endWith = resolve));
  }

  /**
   * Whether `data` already belongs to a cluster member (its marker says so): such a node
   * runs in cluster mode without --peers or --join. Reads only the marker file — opening
   * LevelDB here would let it repair damage silently before DataDir.open can see it.
   */
  static async holdsMember(data: string): Promise<boolean> {
    try {
      const marker = await readMarker(data);
      const cluster = marker?.['cluster'] as { member?: unknown } | undefined;
      return typeof cluster?.member === 'string';
    } catch {
      return false; // an unreadable marker: the store's own open says what is wrong
    }
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
      const prepared = await prepare(db, config, log);
      const { mode, restore } = prepared;
      // A new start of this directory (synced before any peer hears from it): a copy put
      // back after it ran on shows a start its peers have seen already (identity.ts).
      const identity: NodeIdentity = { ...prepared.identity, start: { n: (prepared.identity.start?.n ?? 0) + 1, id: randomBytes(8).toString('hex') } };
      await writeIdentity(db, identity);
      const storage = await LevelRaftStorage.open(db, mode === 'bootstrap' ? { bootstrap: [config.id, ...config.peers.map((p) => p.id)] } : {});
      if (restore !== undefined) {
        await storage.save({ snapshot: restore.snapshot, entries: [], hardState: { term: 1, vote: null, commit: restore.snapshot.metadata.index } });
        log.info({ event: 'restored', index: restore.snapshot.metadata.index, clusterId: restore.clusterId, servers: restore.state.servers.size }, `new cluster ${restore.clusterId} seeded from the snapshot at index ${restore.snapshot.metadata.index}`);
      }
      const raftLog = log.child({ component: 'raft' });
      // A subscriber (the proxy's snapshot swap) that throws would leave the data plane on
      // a stale pool while everything looks fine: stop the node instead (kind 'listener').
      const onListenerError = (err: unknown): void => {
        throw new ListenerFailure('a pool subscriber threw', err);
      };
      // The pool's writes go through the log's write queue: never on disk before the entries they come from.
      const replica = await PoolReplica.open(db, { onListenerError, write: (ops) => storage.write(ops) });
      const hard = storage.initialState().hardState;
      const snapIndex = storage.snapshot().metadata.index;
      // Structural invariants of a node's own directory: the pool is applied from the
      // committed log only, so it can never be ahead of the commit index (or snapshot).
      if (replica.appliedIndex > Math.max(hard.commit, snapIndex)) {
        throw new DataDirRefusedError('damaged', config.data, `its pool is applied up to index ${replica.appliedIndex}, beyond the Raft commit index ${hard.commit}: the Raft log lost writes`);
      }
      await dataDir.begin({ appliedIndex: replica.appliedIndex, commitIndex: hard.commit, lastIndex: storage.lastIndex() });
      // The marker says this directory is a cluster member's (how a restart without
      // --peers or --join knows it runs a cluster: holdsMember).
      await updateMarker(config.data, (m) => ({ ...m, cluster: { member: identity.memberId, incarnation: identity.incarnation } }));
      const driver = await RaftDriver.create<ApplyResult | null>({
        id: config.id,
        storage,
        app: replica,
        log: raftLog,
        tickMs: config.heartbeatMs,
        electionTick: electionTicks(config.electionTimeoutMs, config.heartbeatMs),
        mayCampaign: () => cluster?.bootstrapGate.mayCampaign() ?? false,
        onFatal: (failure) => cluster?.fatal(failure),
        ...(config.maxQueuedRequests === undefined ? {} : { maxQueuedRequests: config.maxQueuedRequests }),
        ...(config.maxPendingReads === undefined ? {} : { maxPendingReads: config.maxPendingReads }),
      });
      const applied = replica.appliedIndex;
      const conf = applied > 0 ? driver.node.confStateAt(applied) : undefined;
      if (conf !== undefined && (await replica.adoptConfiguration(conf))) {
        log.warn({ event: 'members_adopted', voters: conf.voters, learners: conf.learners }, 'this data directory predates member records: records made from the Raft configuration');
      }
      const store = new RaftPoolStore(driver, replica);
      cluster = new RaftCluster(config, log, dataDir, identity, mode, driver, replica, store);
      return cluster;
    } catch (err) {
      await db.close().catch(() => undefined);
      if (err instanceof StoreOpenError) throw err;
      if (err instanceof SnapshotFileError) throw new StoreOpenError(`cannot restore from ${config.restore?.path ?? 'the snapshot'}: ${err.message}`, { cause: err });
      throw new StoreOpenError(`cannot start Raft on data directory ${config.data}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Start the peer transport and the driver. `listeners` are this node's bound admin
   * and proxy addresses: it publishes them in its member record, and a joining node
   * sends them with its request to join.
   */
  async start(listeners: BoundListeners): Promise<void> {
    const { config, log } = this;
    const selfPeer = config.peers.find((p) => p.id === config.id)?.address;
    const guard = await IdentityGuard.open({
      self: config.id,
      identity: () => this.identity,
      db: this.dataDir.db,
      log,
      state: () => this.replica.current,
      config: () => this.driver.node.config,
      seeds: () => new Set([...this.seeds.keys(), ...(this.joined?.ids ?? [])]),
      joinedCluster: () => this.joined?.clusterId ?? null,
      ownRaftAddress: () => this.own.raftAddress,
      onLostState: (message) => this.end({ reason: 'state_lost', exitCode: 1, message }),
      onRolledBack: (message) => void this.rolledBack(message),
      onRemoved: (message) => void this.removed(message),
    });
    this.guard = guard;
    const initial = [...this.peerAddresses()];
    const transport = new TcpTransport({
      id: config.id,
      listen: { host: config.raft.host, port: config.raft.port },
      peers: new Map(initial.map(([id, p]) => [id, p.address])),
      alternates: new Map(initial.map(([id, p]) => [id, p.alternates])),
      ...(config.clusterToken === undefined ? {} : { token: config.clusterToken }),
      ...(config.peerTls === undefined ? {} : { tls: config.peerTls }),
      ...(config.maxPendingConnections === undefined ? {} : { maxPendingConnections: config.maxPendingConnections }),
      ...(config.maxPendingPerSource === undefined ? {} : { maxPendingPerSource: config.maxPendingPerSource }),
      log: log.child({ component: 'raft-transport' }),
      onMessage: (m) => {
        // An isolated node (fault injection) hears nothing: not even that a peer is alive.
        if (!this.gate.admit(m)) return;
        this.membership?.heard(m.from);
        if (m.type === 'MsgPreVote' || m.type === 'MsgVote') {
          const gone = parseLeaderGoneContext(m.context);
          if (gone !== undefined) this.deathWatch.candidateSaysGone(gone.term, gone.leader);
        }
        this.driver.receive(m);
      },
      onUnreachable: (id) => this.driver.unreachable(id),
      identity: (to) => guard.helloFor(to),
      admit: (hello) => {
        const admitted = (): void => {
          this.heardAddress(hello);
          this.bootstrapGate.reachedPeer(hello.from);
        };
        const verdict = guard.admit(hello);
        if (verdict === undefined) admitted();
        return verdict instanceof Promise ? verdict.then((v) => (v === undefined && admitted(), v)) : verdict;
      },
      onControl: (from, frame, hello) => {
        if (!this.gate.isolated) this.membership?.onControl(from, frame, hello);
      },
      onRefused: (peer, refusal) => guard.onRefused(peer, refusal),
      onPeerClosed: (peer) => this.deathWatch.connectionClosed(peer),
      onPeerWelcomed: (peer) => this.bootstrapGate.reachedPeer(peer),
    });
    await transport.start().catch((err: NodeJS.ErrnoException) => {
      throw new StoreOpenError(`cannot listen for Raft peers on ${formatHostPort(config.raft)}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err });
    });
    this.transport = transport;
    const raftBound = { host: config.raft.host, port: transport.port };
    log.info({ event: 'listening', listener: 'raft', host: config.raft.host, port: transport.port, address: formatHostPort(raftBound) }, `raft listening on ${formatHostPort(raftBound)}`);
    this.own = ownAttributes(raftBound, config.raftAdvertise ?? selfPeer, listeners);

    this.fetch = listeners.fetch;
    if (this.mode === 'join' && this.identity.since === null) await this.join(config.join!);
    else if (config.join !== undefined) await this.checkJoinTarget(config.join);

    this.replica.onMembersChange((state) => this.membersChanged(state));
    this.driver.onRoleChange((role, leader) => {
      log.info({ event: 'raft_role', role, leader, term: this.driver.node.term }, `raft role: ${role}${leader === null ? '' : `, leader ${leader}`}`);
    });
    this.membership = new MembershipManager({
      self: config.id,
      driver: this.driver,
      replica: this.replica,
      store: this.store,
      log: log.child({ component: 'membership' }),
      electionTimeoutMs: config.electionTimeoutMs,
      incarnation: this.identity.incarnation,
      seedAddress: (id) => this.seeds.get(id),
      own: () => this.own,
      // An isolated node publishes nothing either (the record waits for the heal).
      sendControl: (to, frame) => !this.gate.isolated && transport.sendControl(to, frame),
    });
    this.driver.start(this.gate.wrap(transport));
    this.membership.start();
    this.watchTimer = setInterval(() => this.watchMembers(), 1000);
    this.watchTimer.unref();
    this.servingTracker.start();
    log.info(
      { event: 'member', mode: this.mode, clusterId: this.replica.current.cluster.clusterId, incarnation: this.identity.incarnation, since: this.identity.since },
      `member ${config.id} (${this.mode}), incarnation ${this.identity.incarnation}`,
    );
  }

  activate(): void {}

  /** Times this node waived its promise on evidence that the leader's process was gone (weldr_raft_fast_failovers_total). */
  get fastFailovers(): number {
    return this.deathWatch.fastFailovers;
  }

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
    this.servingTracker.abdicate();
    this.servingTracker.stop();
  }

  serving(): ServingStatus {
    return this.servingTracker.status();
  }

  /**
   * Until when (performance.now() ms) this node stays active without another quorum
   * acknowledgement; null when not active. The VIP guard removes the address then.
   */
  activeUntil(): number | null {
    if (this.shuttingDown) return null;
    return this.driver.leaseExpiresAt();
  }

  // ---- fault injection (failover drills; off unless the node was started with it) ----

  get faultInjection(): boolean {
    return this.config.faultInjection === true;
  }

  faultStatus(): { readonly enabled: boolean } & IsolationStatus {
    return { enabled: this.faultInjection, ...this.gate.status() };
  }

  /** The leader abdicates at once, as if it had lost its quorum (no transfer). */
  async stepDown(): Promise<{ readonly term: number }> {
    this.refuseUnlessEnabled();
    const term = this.driver.node.term;
    if (this.driver.node.role !== 'leader') throw new FaultRefusedError('notLeader', `this node is not the leader${this.driver.node.leader === null ? '' : `; ${this.driver.node.leader} is`}`);
    this.servingTracker.abdicate();
    this.log.warn({ event: 'fault_step_down', term }, 'fault injection: stepping down as leader without a transfer');
    if (!(await this.driver.stepDown())) throw new FaultRefusedError('notLeader', 'this node stopped being the leader before it could step down');
    return { term };
  }

  /** Drop all Raft traffic to and from this node for `ms`; heals by itself. */
  isolate(ms: number): void {
    this.refuseUnlessEnabled();
    this.gate.isolate(ms);
  }

  /** End an isolation now; returns whether there was one. */
  heal(): boolean {
    this.refuseUnlessEnabled();
    return this.gate.heal('requested');
  }

  private refuseUnlessEnabled(): void {
    if (!this.faultInjection) throw new FaultRefusedError('disabled', 'fault injection is off on this node (start it with --fault-injection on)');
  }

  isActive(): boolean {
    return !this.shuttingDown && this.driver.isActive();
  }

  /** Where a write this node cannot take should go: the leader's admin URL from its member record. */
  leaderAdminUrl(): { leaderId: NodeId; url: string | undefined } | null {
    const { role, leader } = this.driver.node;
    if (role === 'leader' || leader === null) return null;
    const admin = this.replica.current.cluster.members.get(leader)?.adminAddress;
    return { leaderId: leader, url: admin === undefined ? undefined : adminUrlOf(admin) };
  }

  /**
   * Where a write that arrives now should go: here (this node leads and is not handing
   * its leadership over), to the leader's admin URL, or nowhere yet — no leader is known,
   * or this leader is transferring (it refuses proposals until that ends, thesis §3.10).
   * The admin relay holds a write through the last case instead of failing it.
   */
  writeTarget(): { kind: 'local' } | { kind: 'relay'; leaderId: NodeId; url: string | undefined } | { kind: 'settling' } {
    const node = this.driver.node;
    if (this.shuttingDown) return { kind: 'local' };
    if (node.role === 'leader') return node.leadTransferee === null ? { kind: 'local' } : { kind: 'settling' };
    const leader = node.leader;
    if (leader === null) return { kind: 'settling' };
    const admin = this.replica.current.cluster.members.get(leader)?.adminAddress;
    return { kind: 'relay', leaderId: leader, url: admin === undefined ? undefined : adminUrlOf(admin) };
  }

  /**
   * This node's admin URL: from its own member record, or — before the record holds it
   * (a leader elected right after the start publishes its record with its first
   * commands) — from the listener this node bound itself.
   */
  selfAdminUrl(): string | undefined {
    const admin = this.replica.current.cluster.members.get(this.config.id)?.adminAddress ?? this.own.adminAddress;
    return admin === undefined ? undefined : adminUrlOf(admin);
  }

  /** Every member's proxy and admin listener (from the records): POST /servers refuses them as origins. */
  memberListeners(): { name: string; address: HostPort }[] {
    const out: { name: string; address: HostPort }[] = [];
    for (const m of this.replica.current.cluster.members.values()) {
      if (m.proxyAddress !== undefined) out.push({ name: `proxy (member ${m.id})`, address: parseHostPort(m.proxyAddress) });
      if (m.adminAddress !== undefined) out.push({ name: `admin (member ${m.id})`, address: parseHostPort(m.adminAddress.replace(/^https?:\/\//, '')) });
    }
    return out;
  }

  info(): ClusterStatus {
    const s = this.driver.status();
    const records = this.replica.current.cluster.members;
    // On the leader: how far each member's log is known to match (replication lag).
    const leader = s.role === 'leader';
    const progress = leader ? this.driver.node.status().progress : undefined;
    const about = (id: NodeId): Partial<ClusterMemberStatus> => {
      const r = records.get(id);
      const address = r?.raftAddress ?? (id === this.config.id ? this.own.raftAddress : this.seeds.get(id));
      const seen = this.seen(id, s.role, s.leader);
      const p = progress?.[id];
      const judged = id === this.config.id ? undefined : this.watch.judgement(id);
      return {
        ...(address === undefined ? {} : { address }),
        ...(r?.adminAddress === undefined ? {} : { adminAddress: r.adminAddress }),
        ...(r?.proxyAddress === undefined ? {} : { proxyAddress: r.proxyAddress }),
        ...seen,
        ...(p === undefined ? {} : { matchIndex: p.match, replication: p.state }),
        ...(leader && this.membership !== null ? { live: this.membership.isLive(id) } : {}),
        ...(judged === undefined ? {} : { condition: judged.condition, ...(judged.reason === undefined ? {} : { reason: judged.reason }) }),
      };
    };
    return {
      nodeId: this.config.id,
      role: this.isActive() ? 'active' : 'passive',
      serving: this.serving(),
      leaderId: s.leader,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      clusterId: this.replica.current.cluster.clusterId,
      members: [...s.config.voters.map((id) => ({ id, role: 'voter' as const, ...about(id) })), ...s.config.learners.map((id) => ({ id, role: 'learner' as const, ...about(id) }))],
    };
  }

  // ---- membership API -------------------------------------------------------------------

  /** The member records; linearizable (ReadIndex) unless `stale`. */
  async listMembers(options: { stale?: boolean; timeoutMs?: number } = {}): Promise<MemberList> {
    if (options.stale !== true) await this.store.linearizableSnapshot({ timeoutMs: options.timeoutMs ?? 5000 });
    return this.manager().list();
  }

  addMember(command: AddMemberCommand, options?: MemberWriteOptions): Promise<MemberWriteResult> {
    return this.manager().add(command, options);
  }

  promoteMember(id: NodeId, options?: MemberWriteOptions): Promise<MemberWriteResult> {
    return this.manager().promote(id, options);
  }

  removeMember(id: NodeId, options?: MemberWriteOptions): Promise<MemberWriteResult> {
    return this.manager().remove(id, options);
  }

  /** A consistent backup of the replicated state (linearizable unless `stale`). */
  async snapshot(options: { stale?: boolean; timeoutMs?: number } = {}): Promise<SnapshotDocument> {
    if (options.stale !== true) await this.store.linearizableSnapshot({ timeoutMs: options.timeoutMs ?? 5000 });
    return snapshotDocument(this.replica.current, this.config.id);
  }

  private manager(): MembershipManager {
    if (this.membership === null) throw new StoreError('STOPPED', 'the cluster is not started');
    return this.membership;
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
    this.deactivate();
    this.gate.heal('stopping');
    this.membership?.stop();
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
    this.servingTracker.stop();
    this.membership?.stop();
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
    if (this.driver.node.role !== 'leader' || this.transport === null) return;
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
    this.servingTracker.abdicate();
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

  // ---- internals ------------------------------------------------------------------------

  /**
   * The members this node should connect to: each one's Raft address (its record's,
   * else its seed's, else what its hello said) and, when this start's --peers names
   * another one for it, that one to try as well: a cluster whose members all moved can
   * find itself again from the --peers it is given.
   */
  private peerAddresses(): Map<NodeId, { address: HostPort; alternates: HostPort[] }> {
    const state = this.replica.current;
    const conf = this.driver.node.config;
    const ids = new Set([...state.cluster.members.keys(), ...conf.voters, ...conf.learners]);
    if (ids.size === 0) for (const id of [...this.seeds.keys(), ...this.heard.keys()]) ids.add(id);
    const out = new Map<NodeId, { address: HostPort; alternates: HostPort[] }>();
    for (const id of ids) {
      if (id === this.config.id) continue;
      const address = state.cluster.members.get(id)?.raftAddress ?? this.seeds.get(id) ?? this.heard.get(id);
      if (address === undefined) continue;
      const alternates = [...new Set([this.seeds.get(id), this.claimed.get(id)])].filter((a): a is string => a !== undefined && a !== address);
      out.set(id, { address: parseHostPort(address), alternates: alternates.map(parseHostPort) });
    }
    return out;
  }

  /**
   * An admitted peer this node has no address for (it has not received the peer's record
   * yet: a joining node, or one that lags behind a join) is answered at the address the
   * peer gave in its hello, until a record names one. Without it a new node that was
   * given an incomplete member list could never answer the leader, and so never receive
   * the records. The connection back checks the peer as any other (token, certificate).
   */
  private heardAddress(hello: PeerHello): void {
    if (hello.raft === undefined || this.transport === null || hello.from === this.config.id) return;
    let address: string;
    try {
      address = validateHostPort(hello.raft, 'raft');
    } catch {
      return;
    }
    if (this.claimed.get(hello.from) !== address) {
      this.claimed.set(hello.from, address);
      if (this.transport.peerAddresses().has(hello.from)) this.syncPeers();
    }
    if (this.transport.peerAddresses().has(hello.from) || this.replica.current.cluster.members.get(hello.from)?.raftAddress !== undefined) return;
    if (this.heard.get(hello.from) === address) return;
    this.log.info({ event: 'peer_address_heard', peer: hello.from, address }, `no record names ${hello.from}'s Raft address yet: answering it at ${address}, as its hello says`);
    this.heard.set(hello.from, address);
    this.syncPeers();
  }

  /** The transport's peer set follows the applied configuration. */
  private syncPeers(): void {
    const transport = this.transport;
    if (transport === null) return;
    const want = this.peerAddresses();
    for (const id of transport.peerAddresses().keys()) if (!want.has(id)) transport.setPeer(id, undefined);
    for (const [id, { address, alternates }] of want) transport.setPeer(id, address, alternates);
  }

  private membersChanged(state: PoolState): void {
    const prev = this.lastState;
    this.lastState = state;
    this.syncPeers();
    void this.guard?.membersChanged(prev, state).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not update peer incarnation records'));
    // Removed members are told at once on the connections they already have.
    for (const id of prev.cluster.members.keys()) {
      if (state.cluster.members.has(id) || id === this.config.id) continue;
      this.transport?.refuseFrom(id, {
        code: 'not-member',
        message: `${id} was removed from the cluster at index ${state.appliedIndex}`,
        index: state.appliedIndex,
        ...(state.cluster.clusterId === null ? {} : { cluster: state.cluster.clusterId }),
      });
    }
    const self = this.config.id;
    if (prev.cluster.members.has(self) && !state.cluster.members.has(self) && this.identity.since !== null) {
      void this.removed(`this member (${self}) was removed from the cluster at index ${state.appliedIndex}`);
    }
  }

  /** Removed from the cluster: mark the data directory, then stop (exit 0). */
  private async removed(message: string): Promise<void> {
    if (this.identity.removedAt !== undefined) return;
    this.identity = { ...this.identity, removedAt: this.replica.current.appliedIndex };
    await writeIdentity(this.dataDir.db, this.identity).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'could not mark the data directory as removed'));
    // Time for the answer to the request that removed this node (it may be this node's
    // own admin API, on the leader) to leave before shutdown closes the listener. A
    // removed member is in no configuration any more: lingering costs nothing.
    setTimeout(() => this.end({ reason: 'member_removed', exitCode: 0, message: `${message}; this data directory cannot serve again: to bring the host back, empty it and start with --join <admin URL of a member>` }), REMOVED_LINGER_MS).unref();
  }

  /** A peer showed that this data directory is an older copy of itself: mark it (it never serves again) and stop. */
  private async rolledBack(message: string): Promise<void> {
    this.identity = { ...this.identity, rolledBack: message };
    await writeIdentity(this.dataDir.db, this.identity).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'could not mark the data directory as an older copy'));
    this.end({ reason: 'state_lost', exitCode: 1, message });
  }

  private end(end: ClusterEnd): void {
    if (this.endWith === null) return;
    const resolve = this.endWith;
    this.endWith = null;
    this.shuttingDown = true;
    if (end.reason === 'state_lost') {
      // Never vote or acknowledge again, from this very moment: the driver refuses
      // all input once stopped, and the transport drops every connection.
      void this.driver.stop();
      void this.transport?.close();
    }
    this.log.error({ event: end.reason, exitCode: end.exitCode }, end.message);
    resolve(end);
  }

  /** Ask the cluster to add this node (a learner), then take its configuration from the answer. */
  private async join(url: string): Promise<void> {
    const { config, own } = this;
    // A joining node must say where it listens: with a wildcard --raft and no
    // --raft-advertise, the host name is the best guess.
    const raftAddress = own.raftAddress ?? guessRaftAddress({ host: config.raft.host, port: this.transport?.port ?? config.raft.port });
    if (raftAddress === undefined || own.adminAddress === undefined) {
      throw new StoreOpenError('cannot join: this node has no address peers could reach (give --raft-advertise, or --raft and --admin on a specific address)');
    }
    let answer;
    try {
      answer = await joinCluster(
        url,
        {
          id: config.id,
          raftAddress,
          adminAddress: own.adminAddress,
          ...(own.proxyAddress === undefined ? {} : { proxyAddress: own.proxyAddress }),
          incarnation: this.identity.incarnation,
        },
        {
          ...(config.adminToken === undefined ? {} : { token: config.adminToken }),
          log: this.log,
          ...(config.joinDeadlineMs === undefined ? {} : { deadlineMs: config.joinDeadlineMs }),
          ...(this.fetch === undefined ? {} : { fetch: this.fetch }),
          signal: config.signal,
        },
      );
    } catch (err) {
      throw new StoreOpenError(`cannot join the cluster at ${url}: ${(err as Error).message}`, { cause: err });
    }
    // Right after a cluster starts its records may still lack addresses (the leader fills
    // them in one entry at a time): those members are admitted all the same.
    this.seeds = new Map(answer.members.filter((m) => m.id !== config.id && m.raftAddress !== undefined).map((m) => [m.id, m.raftAddress!]));
    this.joined = { ids: new Set(answer.members.map((m) => m.id).filter((id) => id !== config.id)), clusterId: answer.clusterId };
    this.identity = { ...this.identity, since: answer.member.addedIndex };
    await writeIdentity(this.dataDir.db, this.identity);
    this.syncPeers();
  }

  /** A member restarted with --join still set: the URL must lead to its own cluster. */
  private async checkJoinTarget(url: string): Promise<void> {
    let theirs;
    try {
      theirs = await fetchMembers(url.replace(/\/+$/, ''), { ...(this.config.adminToken === undefined ? {} : { token: this.config.adminToken }), ...(this.fetch === undefined ? {} : { fetch: this.fetch }) }, 3000);
    } catch (err) {
      this.log.warn({ event: 'join_target_unreachable', url, err: (err as Error).message }, `--join ${url} could not be checked; starting from the data directory`);
      return;
    }
    const ours = this.replica.current.cluster.clusterId;
    const mine = theirs.members.find((m) => m.id === this.config.id);
    const sameCluster = ours !== null && theirs.clusterId === ours;
    const knownThere = mine !== undefined && mine.incarnation === this.identity.incarnation;
    if (sameCluster || (ours === null && knownThere)) return;
    throw new StoreOpenError(
      `data directory ${this.config.data} belongs to ${ours === null ? 'another cluster' : `cluster ${ours}`}, but ${url} is ${theirs.clusterId === null ? 'a cluster without an id yet' : `cluster ${theirs.clusterId}`}: ` +
        'a node joins with an empty data directory (move this one away, or drop --join to restart the member it belongs to)',
    );
  }
}

function guessRaftAddress(raft: HostPort): string | undefined {
  try {
    return validateHostPort(formatHostPort(advertisedAddress(raft, raft, undefined)), 'raft');
  } catch {
    return undefined;
  }
}

/** The addresses this node publishes in its record. */
function ownAttributes(raft: HostPort, selfPeer: HostPort | undefined, listeners: BoundListeners): OwnAttributes {
  const valid = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch {
      return undefined;
    }
  };
  // Published only when it is what the operator named (--raft-advertise, the own --peers
  // entry, a specific --raft): a host name guessed for a wildcard --raft might not
  // resolve elsewhere, and the leader fills seeds in from --peers anyway.
  const named = selfPeer !== undefined || !isWildcard(raft.host);
  const raftAddress = named ? valid(() => validateHostPort(formatHostPort(advertisedAddress(selfPeer ?? raft, raft, selfPeer)), 'raft')) : undefined;
  const adminAddress = valid(() => validateAdminAddress(`${listeners.adminTls === true ? 'https://' : ''}${formatHostPort(advertisedAddress(listeners.admin, raft, selfPeer))}`, 'admin'));
  const proxyAddress = listeners.proxy === undefined ? undefined : valid(() => validateHostPort(formatHostPort(advertisedAddress(listeners.proxy!, raft, selfPeer)), 'proxy'));
  return {
    ...(raftAddress === undefined ? {} : { raftAddress }),
    ...(adminAddress === undefined ? {} : { adminAddress }),
    ...(proxyAddress === undefined ? {} : { proxyAddress }),
  };
}

/** Decides what the data directory is and writes this node's identity when it becomes a member's. */
async function prepare(
  db: PoolDb,
  config: RaftClusterOptions,
  log: ClusterLogger,
): Promise<{ mode: Mode; identity: NodeIdentity; restore?: ReturnType<typeof restoredSnapshot> }> {
  let identity = await readIdentity(db);
  const hasLog = (await db.get(RAFT_KEYS.hardState, UTF8 as never)) !== undefined;
  if (identity !== undefined && identity.memberId !== config.id) {
    throw new StoreOpenError(`data directory ${config.data} belongs to member ${identity.memberId}, not ${config.id}: use --id ${identity.memberId}, or another data directory`);
  }
  if (identity?.rolledBack !== undefined) {
    throw new StoreOpenError(`data directory ${config.data} cannot serve again: ${identity.rolledBack}`);
  }
  if (identity?.removedAt !== undefined) {
    throw new StoreOpenError(
      `member ${config.id} was removed from the cluster at index ${identity.removedAt}; data directory ${config.data} cannot serve again. ` +
        'To bring this host back, empty the data directory and start it with --join <admin URL of a member>',
    );
  }
  const fresh = (since: number | null): NodeIdentity => ({ memberId: config.id, incarnation: randomBytes(8).toString('hex'), createdAt: new Date().toISOString(), since });
  if (hasLog) {
    if (config.restore !== undefined) throw new StoreOpenError(`--restore needs an empty data directory; ${config.data} already holds a Raft log`);
    if (identity === undefined) {
      identity = fresh(0);
      await writeIdentity(db, identity);
      log.warn({ event: 'identity_created', incarnation: identity.incarnation }, 'this data directory had no member identity (written by an older weldr): created one');
    }
    return { mode: identity.since === null ? 'join' : 'member', identity };
  }
  const pool = await loadState(db);
  if (pool !== undefined && pool.appliedIndex > 0) {
    throw new StoreOpenError(
      `data directory ${config.data} holds a single-node pool (${pool.servers.size} servers, index ${pool.appliedIndex}) and no Raft log; ` +
        'start cluster members on empty data directories and add the servers again through the admin API (or save it with GET /cluster/snapshot and start the first member with --restore)',
    );
  }
  if (identity?.since === null) return { mode: 'join', identity }; // a join cut short: ask again, same incarnation
  if (identity !== undefined && identity.bootstrap === undefined && config.join !== undefined) {
    // Added, then stopped before it received anything: no Raft state was ever written, so
    // it promised nothing (no vote, no acknowledged entry). It asks again under the same
    // incarnation, and the cluster answers with the record it already holds.
    log.info({ event: 'join_again', incarnation: identity.incarnation, since: identity.since }, 'this node was added to the cluster but stopped before it received anything: asking again');
    return { mode: 'join', identity: { ...identity, since: null } };
  }
  if (config.restore !== undefined) {
    const { state } = parseSnapshotDocument(config.restore.text);
    identity = fresh(0);
    const restore = restoredSnapshot(state, { id: config.id, incarnation: identity.incarnation });
    await writeIdentity(db, identity);
    return { mode: 'restore', identity, restore };
  }
  if (config.join !== undefined) {
    identity = fresh(null);
    await writeIdentity(db, identity);
    return { mode: 'join', identity };
  }
  if (config.peers.some((p) => p.id !== config.id)) {
    identity = { ...fresh(0), bootstrap: bootstrapDigest([config.id, ...config.peers.map((p) => p.id)]) };
    await writeIdentity(db, identity);
    return { mode: 'bootstrap', identity };
  }
  throw new StoreOpenError(`data directory ${config.data} is empty: name the other members with --peers to start a new cluster, or --join an existing one`);
}

/** Identifies the bootstrap log a seed list makes (bootstrapEntries sorts and dedupes the ids the same way). */
function bootstrapDigest(ids: readonly string[]): string {
  return createHash('sha256').update([...new Set(ids)].sort().join(',')).digest('hex').slice(0, 16);
}

/** LevelDB's I/O failures (classic-level: code LEVEL_IO_ERROR, message "IO error: …"). */
function isIoError(err: Error): boolean {
  return (err as { code?: unknown }).code === 'LEVEL_IO_ERROR' || err.message.startsWith('IO error');
}

/** The core's role names as /cluster spells them. */
function raftRoleName(role: Role): string {
  return role === 'preCandidate' ? 'pre-candidate' : role;
}

export { JoinRefused };
