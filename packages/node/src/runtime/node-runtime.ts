// The composition root: config → store → proxy → admin → listeners, and the reverse on
// shutdown. Nothing here handles requests; it wires the packages together and owns
// process-level concerns (ports, lifecycle, logs).
import { collectDefaultMetrics } from 'prom-client';
import { MetricsRegistry } from '@weldr/proxy';
import { ConfigError } from '../config/config-error.js';
import { readTlsFiles } from './tls-files.js';
import { readFileSync } from 'node:fs';
import type { PoolStore } from '@weldr/store';
import { formatHostPort, type HostPort } from '../config/values.js';
import type { NodeConfig } from '../config/options.js';
import { listenError } from './listen.js';
import { isLoopbackHost, ownListenerLookup, startAdminListener, type AdminListener } from './admin-listener.js';
import type { Logger } from './logger.js';
import { SingleNodeCluster } from './single-node-cluster.js';
import { readFile } from 'node:fs/promises';
import { fetch as undiciFetch } from 'undici';
import { RaftCluster, type ClusterEnd, type ClusterFailure, type ClusterView, type RaftClusterOptions } from '@weldr/cluster';
import { clusterMembers, singleNodeMembers } from './members-admin.js';
import { RoleHooks } from './role-hooks.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import { openStore, StoreOpenError } from './store-factory.js';
import { faultInjector, NodeClusterView } from './node-cluster-view.js';
import { registerServingMetrics } from './serving-metrics.js';
import { VipManager } from './vip.js';
import { autoMaxConnections, openFileLimit } from '../config/fd-limit.js';
import { registerPeerMetrics } from './peer-metrics.js';
import { registerRaftMetrics } from './raft-metrics.js';
import { relayDispatcher, type RelayDispatcher } from './relay-dispatcher.js';
import type { NodeTls } from './tls-setup.js';
import { NodeEvents, StatsHistory, type NodeView } from '@weldr/admin';
import { settingsView } from '../config/settings-view.js';
import { weldrVersion } from '../cli/version.js';
import { createDataPlane } from './data-plane.js';

/**
 * The data directory belongs to a cluster member but no peer authentication is given:
 * a configuration mistake like a cluster started without it (exit 2, not restarted by
 * the systemd unit), found only once the directory is read.
 */
export class MemberWithoutAuthError extends StoreOpenError {
  override readonly name: string = 'MemberWithoutAuthError';
}

const NO_TLS: NodeTls = { peer: undefined, admin: undefined, reload: () => undefined, close: () => undefined };

export interface RunningNode {
  readonly proxyAddress: HostPort;
  readonly proxyTlsAddress: HostPort | undefined;
  readonly adminAddress: HostPort;
  /**
   * SIGHUP: reread the --tls-cert/--tls-key files and serve new handshakes with them
   * (established connections keep theirs). A problem is logged; the certificates in use
   * stay.
   */
  reloadTls(): void;
  /** SIGHUP: reopen the access-log file (log rotation). */
  reopenLogs(): void;
  /** Graceful stop: readiness off, proxy drains within the deadline, admin and store close. */
  stop(): Promise<void>;
  /** Resolves when a cluster member must stop on its own (removed; state lost); never otherwise. */
  readonly ended: Promise<ClusterEnd>;
}

/**
 * The node cannot go on: a write to the data directory failed, or a listener threw
 * inside the store or the Raft loop. One line for the operator in `message`.
 */
export interface NodeFailure {
  readonly kind: ClusterFailure['kind'];
  readonly message: string;
  /** The data directory, when the failure concerns it. */
  readonly data?: string;
  readonly error: Error;
}

export interface StartNodeOptions {
  /**
   * Called once after a fatal failure, when the node has already given up its role
   * (/ready 503, on-passive run): the caller should exit. Default: log it.
   */
  readonly onFatal?: (failure: NodeFailure) => void;
  /** Peer and admin TLS material, checked and reloadable; default none. */
  readonly tls?: NodeTls;
  /** Aborted when the operator stops the node before it has started: a join in progress gives up. */
  readonly signal?: AbortSignal;
}

export async function startNode(config: NodeConfig, log: Logger, options: StartNodeOptions = {}): Promise<RunningNode> {
  const tls = options.tls ?? NO_TLS;
  const cleanups: (() => Promise<void> | void)[] = [];
  const unwind = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        log.error({ err }, 'cleanup step failed');
      }
    }
  };

  // A fatal failure: give up every role first (readiness off, on-passive), then report.
  let view: ClusterView | undefined;
  let hooks: RoleHooks | undefined;
  let vipManager: VipManager | undefined;
  let failing = false;
  const fatal = (failure: NodeFailure): void => {
    if (failing) return;
    failing = true;
    view?.deactivate();
    void (async () => {
      await vipManager?.stop().catch(() => undefined);
      await hooks?.stop('fatal').catch(() => undefined);
      if (options.onFatal !== undefined) options.onFatal(failure);
      else log.fatal({ event: 'fatal', kind: failure.kind, data: failure.data, err: { message: failure.error.message } }, failure.message);
    })();
  };

  try {
    // Cluster mode: new members (--peers, --join, --restore), and any data directory
    // that already belongs to one (a joined member restarted without --join, a cluster
    // shrunk to one member): its replicated records say who the members are.
    const clustered =
      config.peers.some((p) => p.id !== config.id) || config.join !== undefined || config.restore !== undefined || (config.store === 'level' && (await RaftCluster.holdsMember(config.data)));
    let raft: RaftCluster | null = null;
    let store: PoolStore;
    if (clustered && config.clusterToken === undefined && config.peerCert === undefined && !config.insecurePeers) {
      // A member restarted without --peers or --join: the configuration check could not
      // know it runs a cluster. The same rule applies (security-checks.ts).
      // Typically a user who ran `npm start` (weldr dev-cluster) and then `weldr start`:
      // both default to ./data/n1. Say how to run that member, and how not to.
      throw new MemberWithoutAuthError(
        `data directory ${config.data} belongs to a cluster member (a node started with --peers, --join or --restore, or by weldr dev-cluster), and cluster mode needs peer authentication: to run that member, set the cluster token (WELDR_CLUSTER_TOKEN, the same on every member; weldr dev-cluster keeps its own in <its --data>/cluster-token) or peer TLS (--peer-cert, --peer-key, --peer-ca); to run a new single node instead, give it another data directory (--data DIR)`,
      );
    }
    if (clustered) {
      raft = await RaftCluster.open({ ...(await clusterOptions(config, tls, fatal)), signal: options.signal }, log);
      const r = raft;
      cleanups.push(() => r.stop());
      store = raft.store;
    } else {
      const single = await openStore(config, log, fatal);
      cleanups.push(() => single.close());
      store = single;
    }
    log.info({ event: 'store_opened', store: clustered ? 'raft' : config.store, ...(config.store === 'level' ? { data: config.data } : {}), index: store.snapshot().index, servers: store.snapshot().servers.length }, 'pool store opened');
    if (!clustered) await applyBalancer(store, config, log);

    const metrics = new MetricsRegistry();
    metrics.setDefaultLabels({ nodeId: config.id });
    collectDefaultMetrics({ register: metrics });

    // Read before anything listens: a missing or unusable file is a configuration error.
    const proxyTls = config.listenTls === undefined ? undefined : readTlsFiles(config.tlsCert, config.tlsKey);
    const dataPlane = createDataPlane({
      config,
      log,
      metrics,
      tls: proxyTls,
      proxyOptions: {
      snapshot: store.snapshot(),
      timeouts: {
        clientHeadersMs: config.clientHeadersTimeout,
        clientIdleMs: config.clientIdleTimeout,
        clientBodyIdleMs: config.clientBodyTimeout,
        clientRequestMs: config.clientRequestTimeout,
        originConnectMs: config.originConnectTimeout,
        originResponseMs: config.originResponseTimeout,
        originIdleMs: config.originIdleTimeout,
        originKeepAliveMs: config.originKeepaliveTimeout,
      },
      log,
      nodeId: config.id,
      maxHeaderSize: config.maxHeaderSize,
      maxRetries: config.maxRetries,
      limits: {
        maxConnections: config.maxConnections,
        maxConnectionsPerSource: config.maxConnectionsPerSource,
        maxPipelineDepth: config.maxPipelineDepth,
        originMaxConnections: config.originMaxConnections,
        clientBodyMinRate: config.clientBodyMinRate,
        clientBodyRateGraceMs: config.clientBodyRateGrace,
      },
      originClient: config.originClient,
      ...(config.originTls === undefined ? {} : { originTls: readOriginTls(config) }),
      },
    });
    let proxyClosed = false;
    cleanups.push(() => (proxyClosed ? undefined : dataPlane.close(0)));
    // Every applied command yields a new immutable snapshot; the proxy (and every worker) swaps it in.
    const unsubscribe = store.subscribe((snapshot) => dataPlane.update(snapshot));
    cleanups.push(unsubscribe);

    // Filled in as the listeners bind (ports may be ephemeral).
    const listeners: { name: string; address: HostPort }[] = [];
    // What the status page shows besides /cluster and /stats.
    const history = new StatsHistory(() => dataPlane.totals());
    history.start();
    cleanups.push(() => history.stop());
    const events = new NodeEvents();
    const startedAt = Date.now();
    const nodeView = (): NodeView => ({
      id: config.id,
      version: weldrVersion(),
      pid: process.pid,
      startedAt,
      listeners: Object.fromEntries([...listeners.map((l) => [l.name, formatHostPort(l.address)] as const), ...(raft === null ? [] : [['raft', formatHostPort({ host: config.raft.host, port: raft.raftPort ?? config.raft.port })] as const])]),
      settings: settingsView(config),
    });
    if (raft !== null) {
      const r = raft;
      // Followers tell their workers of pool changes in batches (data-plane.ts): only the
      // leader answers pool writes, and only the leader can become active.
      dataPlane.setEager(r.driver.node.role === 'leader');
      r.driver.onRoleChange((role, leader) => {
        dataPlane.setEager(role === 'leader');
        const term = r.driver.node.term;
        const message =
          role === 'leader'
            ? `this node leads (term ${term})`
            : role === 'follower'
              ? leader === null
                ? `follower, no leader known (term ${term})`
                : `following ${leader} (term ${term})`
              : `${role === 'preCandidate' ? 'pre-candidate' : 'candidate'}: an election (term ${term})`;
        events.add('role', message, { role: role === 'preCandidate' ? 'pre-candidate' : role, leader, term });
      });
    }

    // --- serving, VIP and fault injection (issue 12) ---
    let vip: VipManager | null = null;
    const cluster = new NodeClusterView(raft ?? new SingleNodeCluster(config.id, store), raft, () => (vip === null ? {} : { vip: vip.status() }));
    view = cluster;
    if (failing) cluster.deactivate();
    registerServingMetrics(metrics, () => cluster.serving());
    if (config.vip !== undefined && config.vipInterface !== undefined) {
      const r = raft;
      vip = new VipManager({
        vip: config.vip,
        iface: config.vipInterface,
        log: log.child({ component: 'vip' }),
        metrics,
        role: {
          decide: () => {
            if (r === null) return cluster.isActive() ? { hold: true, until: null } : { hold: false };
            const until = r.activeUntil();
            if (until !== null) return { hold: true, until };
            const s = r.serving();
            return s.serving && !s.active ? { hold: true, until: null } : { hold: false };
          },
        },
      });
      const v = vip;
      vipManager = v;
      // Before the node can become active: the guard removes a leftover address first.
      await v.start();
      cleanups.push(() => v.stop());
      if (r !== null) r.driver.onRoleChange(() => v.check());
    }
    // --- end serving, VIP and fault injection ---
    warnIfAdminExposed(log, config);
    warnIfOverFdLimit(log, config);
    const raftNow = raft;
    let lastLeader: string | null | undefined;
    registerClusterMetrics(
      metrics,
      cluster,
      raftNow === null
        ? undefined
        : (listener) =>
            raftNow.driver.onRoleChange((_role, leader) => {
              if (leader !== lastLeader) listener();
              lastLeader = leader;
            }),
      raftNow === null ? undefined : () => raftNow.driver.stats(),
    );
    if (raftNow !== null) {
      registerPeerMetrics(metrics, () => raftNow.transportStats());
      registerRaftMetrics(metrics, {
        stats: () => raftNow.driver.stats(),
        info: () => raftNow.info(),
        state: () => ({ role: raftNow.driver.node.role === 'preCandidate' ? 'pre-candidate' : raftNow.driver.node.role, hasLease: raftNow.driver.node.role === 'leader' && raftNow.driver.node.hasLease() }),
        fastFailovers: () => raftNow.fastFailovers,
      });
    }
    let relay: RelayDispatcher | undefined;
    if (raft !== null) {
      const r = relayDispatcher(tls.peer);
      cleanups.push(() => r.close());
      relay = r;
    }
    // This node's own listeners, and (cluster mode) every member's proxy and admin
    // listener from the replicated records: none of them may be added as an origin.
    const raftForLookup = raft;
    const ownListenerAt = ownListenerLookup(() => [...listeners, ...(raftForLookup?.memberListeners() ?? [])]);
    const members = raft === null ? singleNodeMembers(config.id, store) : clusterMembers(raft);
    const admin: AdminListener = await startAdminListener({
      config,
      store,
      proxy: dataPlane,
      cluster,
      metrics,
      log,
      forward: raft ?? undefined,
      ownListenerAt,
      members,
      tls: tls.admin,
      relayDispatcher: relay?.get,
      status: { history, events, node: nodeView },
      ...(raft === null ? {} : { faults: faultInjector(raft) }),
    });
    listeners.push({ name: 'admin', address: admin.address });
    cleanups.push(() => admin.close());
    logListening(log, 'admin', admin.address);

    const bound = await dataPlane.listen().catch((err: unknown) => {
      const e = err as NodeJS.ErrnoException & { listener?: string };
      throw e.listener === 'proxy-tls' && config.listenTls !== undefined ? listenError(e, 'the proxy (TLS)', config.listenTls) : listenError(e, 'the proxy', config.listen);
    });
    if (dataPlane.workers > 0) log.info({ event: 'workers_started', workers: dataPlane.workers }, `${dataPlane.workers} proxy worker processes serving`);
    const proxyAddress = { host: config.listen.host, port: bound.proxy };
    listeners.push({ name: 'proxy', address: proxyAddress });
    logListening(log, 'proxy', proxyAddress);
    let proxyTlsAddress: HostPort | undefined;
    if (config.listenTls !== undefined && bound.tls !== null) {
      proxyTlsAddress = { host: config.listenTls.host, port: bound.tls };
      listeners.push({ name: 'proxy-tls', address: proxyTlsAddress });
      logListening(log, 'proxy-tls', proxyTlsAddress);
    }

    if (raft !== null) {
      // After both listeners: the node publishes their addresses in its member record (and
      // a joining node sends them with its request to join, which goes out like the relay:
      // over HTTPS with the cluster's trust when the members' admin APIs speak it).
      const dispatcher = relay?.get;
      await raft.start({
        admin: admin.address,
        adminTls: tls.admin !== undefined,
        proxy: proxyAddress,
        ...(dispatcher === undefined ? {} : { fetch: ((url: string, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: dispatcher() })) as unknown as typeof fetch }),
      });
      if (config.balancer !== undefined) {
        // Replicated: the first leader that sees the flag makes the setting match.
        const r = raft;
        const off = r.driver.onRoleChange((role) => {
          if (role !== 'leader') return;
          off();
          applyBalancer(store, config, log).catch((err: unknown) => log.warn({ err: (err as Error).message }, '--balancer not applied'));
        });
      }
    }

    if (!failing) cluster.activate();
    if (raft === null) events.add('role', 'single node: active', { role: 'leader', leader: config.id, term: 0 });
    const roleHooks = new RoleHooks({ nodeId: config.id, onActive: config.onActive, onPassive: config.onPassive, source: cluster, log });
    hooks = roleHooks;
    roleHooks.start();
    if (raft !== null) raft.driver.onRoleChange(() => roleHooks.check());
    log.info(
      { event: 'started', proxy: formatHostPort(proxyAddress), ...(proxyTlsAddress !== undefined ? { proxyTls: formatHostPort(proxyTlsAddress) } : {}), admin: formatHostPort(admin.address) },
      'weldr node started',
    );

    let stopping: Promise<void> | undefined;
    return {
      proxyAddress,
      proxyTlsAddress,
      adminAddress: admin.address,
      ended: raft?.ended ?? new Promise<ClusterEnd>(() => undefined),
      reloadTls: () => {
        if (config.listenTls === undefined) return;
        try {
          dataPlane.setTls(readTlsFiles(config.tlsCert, config.tlsKey));
          log.info({ event: 'tls_reloaded', tls: 'proxy TLS', trigger: 'SIGHUP', certificates: config.tlsCert }, 'proxy TLS certificates reloaded');
        } catch (err) {
          log.error({ event: 'tls_reload_failed', tls: 'proxy TLS', trigger: 'SIGHUP', err: { message: (err as Error).message } }, `proxy TLS certificates not reloaded, the previous ones stay: ${(err as Error).message}`);
        }
      },
      reopenLogs: () => dataPlane.reopenAccessLog(),
      stop: () =>
        (stopping ??= (async () => {
          cluster.deactivate();
          // The VIP goes first: before the proxy drains and the leadership is handed over.
          await vip?.stop();
          await roleHooks.stop();
          const started = Date.now();
          await dataPlane.close(config.shutdownTimeout);
          proxyClosed = true;
          log.info({ event: 'proxy_drained', ms: Date.now() - started }, 'proxy drained');
          await unwind();
        })()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** --origin-tls: the CA bundle to verify origins against (the system's when absent) and the name to expect. */
function readOriginTls(config: NodeConfig): { ca?: string; servername?: string } {
  const out: { ca?: string; servername?: string } = {};
  const tls = config.originTls;
  if (tls !== undefined && tls !== 'system') {
    try {
      out.ca = readFileSync(tls.caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read --origin-tls file ${tls.caFile}: ${(err as Error).message}`);
    }
    if (!out.ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`--origin-tls file ${tls.caFile} holds no PEM certificate`);
  }
  if (config.originTlsServername !== undefined) out.servername = config.originTlsServername;
  return out;
}

function logListening(log: Logger, listener: 'proxy' | 'proxy-tls' | 'admin', address: HostPort): void {
  log.info({ event: 'listening', listener, host: address.host, port: address.port, address: formatHostPort(address) }, `${listener} listening on ${formatHostPort(address)}`);
}

/**
 * Off loopback the admin API has a token (the configuration refuses to start otherwise);
 * its reads stay open unless --admin-auth-reads: say so once.
 */
function warnIfAdminExposed(log: Logger, config: NodeConfig): void {
  if (isLoopbackHost(config.admin.host) || config.adminAuthReads) return;
  const address = formatHostPort(config.admin);
  log.warn({ event: 'admin_exposed', address }, `the admin API is configured on ${address}, which is not loopback: writes need the token, but reads (pool, stats, metrics) are open (--admin-auth-reads closes them)`);
}

/**
 * Connections beyond what the open-file limit allows are not refused by the proxy but
 * by libuv, which accepts and closes them with a reserve descriptor, uncounted — and the
 * admin API and LevelDB starve at the same time. Say so at start.
 */
function warnIfOverFdLimit(log: Logger, config: NodeConfig): void {
  const limit = openFileLimit();
  if (limit === undefined || config.maxConnections <= autoMaxConnections(limit)) return;
  log.warn(
    { event: 'max_connections_over_fd_limit', maxConnections: config.maxConnections, openFileLimit: limit, fits: autoMaxConnections(limit) },
    `--max-connections ${config.maxConnections} needs more file descriptors than the open-file limit (${limit}) leaves: raise the limit (ulimit -n, LimitNOFILE=) or lower --max-connections to ${autoMaxConnections(limit)}`,
  );
}

/** `--balancer` makes the replicated setting match; a no-op when it already does. */
async function applyBalancer(store: PoolStore, config: NodeConfig, log: Logger): Promise<void> {
  if (config.balancer === undefined || store.snapshot().settings.balancer === config.balancer) return;
  // Audited as received on this node (from its own flags: no client address).
  await store.propose({ type: 'UpdateSettings', balancer: config.balancer }, { origin: { nodeId: config.id } });
  log.info({ event: 'balancer_set', balancer: config.balancer }, `balancer set to ${config.balancer}`);
}

/** The node's settings as the cluster package takes them. */
async function clusterOptions(config: NodeConfig, tls: NodeTls, onFatal: (failure: NodeFailure) => void): Promise<RaftClusterOptions> {
  let restore: { path: string; text: string } | undefined;
  if (config.restore !== undefined) {
    try {
      restore = { path: config.restore, text: await readFile(config.restore, 'utf8') };
    } catch (err) {
      throw new StoreOpenError(`cannot read --restore ${config.restore}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
    }
  }
  return {
    onFatal: (f) => onFatal({ kind: f.kind, message: f.message, data: f.data, error: f.error }),
    maxQueuedRequests: config.raftMaxQueue,
    maxPendingReads: config.raftMaxPendingReads,
    id: config.id,
    data: config.data,
    raft: config.raft,
    raftAdvertise: config.raftAdvertise,
    peers: config.peers,
    clusterToken: config.clusterToken,
    peerTls: tls.peer,
    maxPendingConnections: config.raftMaxPending,
    maxPendingPerSource: config.raftMaxPendingPerSource,
    heartbeatMs: config.raftHeartbeat,
    electionTimeoutMs: config.raftElectionTimeout,
    fastFailover: config.raftFastFailover,
    serving: { mode: config.serve, staleLimitMs: config.serveStaleLimit, quorumLoss: config.quorumLoss },
    faultInjection: config.faultInjection,
    join: config.join,
    adminToken: config.adminToken,
    restore,
  };
}
