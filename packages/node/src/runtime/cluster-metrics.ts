// Prometheus metrics of the cluster view: read at scrape time, nothing on any hot path.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterView, DriverStats } from '@weldr/cluster';

/**
 * Register weldr_active, weldr_raft_* (cluster mode fills them; a single node reports
 * itself). `driverStats`: the Raft driver's counters of refused and dropped work.
 */
export function registerClusterMetrics(registry: Registry, cluster: ClusterView, onLeaderChange?: (listener: () => void) => void, driverStats?: () => DriverStats): void {
  registry.registerMetric(
    new Gauge({
      name: 'weldr_active',
      help: '1 while this node is the active one (the same test as /ready), else 0',
      registers: [],
      collect() {
        this.set(cluster.isActive() ? 1 : 0);
      },
    }),
  );
  const info = (): ReturnType<ClusterView['info']> => cluster.info();
  for (const [name, help, pick] of [
    ['weldr_raft_term', 'Current Raft term (0 on a single node)', (i: ReturnType<ClusterView['info']>) => i.term],
    ['weldr_raft_commit_index', 'Highest log index known committed', (i: ReturnType<ClusterView['info']>) => i.commitIndex],
    ['weldr_raft_applied_index', 'Highest log index applied to the pool', (i: ReturnType<ClusterView['info']>) => i.appliedIndex],
    ['weldr_raft_members', 'Members in the current configuration', (i: ReturnType<ClusterView['info']>) => i.members.length],
  ] as const) {
    registry.registerMetric(
      new Gauge({
        name,
        help,
        registers: [],
        collect() {
          this.set(pick(info()));
        },
      }),
    );
  }
  if (driverStats !== undefined) registerDriverMetrics(registry, driverStats);
  if (onLeaderChange !== undefined) {
    const changes = new Counter({ name: 'weldr_raft_leader_changes_total', help: 'Times this node saw the leader change (or become unknown)', registers: [] });
    registry.registerMetric(changes);
    onLeaderChange(() => changes.inc());
  }
}

/** The driver's bounded queues (RaftDriver.stats): what was refused, dropped or expired, and what waits. */
function registerDriverMetrics(registry: Registry, stats: () => DriverStats): void {
  const counters: [string, string, (s: DriverStats) => number][] = [
    ['weldr_raft_proposals_rejected_total', 'Writes refused with OVERLOADED: the queue behind the Raft disk write was full', (s) => s.proposalsRejected],
    ['weldr_raft_reads_rejected_total', 'Linearizable reads refused with OVERLOADED: queue or pending reads full', (s) => s.readsRejected],
    ['weldr_raft_reads_expired_total', 'Linearizable reads failed because they were not released in time', (s) => s.readsExpired],
    ['weldr_raft_messages_dropped_total', 'Peer messages dropped because the queue behind the Raft disk write was full', (s) => s.messagesDropped],
  ];
  for (const [name, help, pick] of counters) {
    registry.registerMetric(
      new Counter({
        name,
        help,
        registers: [],
        collect() {
          // The driver owns the count; mirror it at scrape time.
          this.reset();
          this.inc(pick(stats()));
        },
      }),
    );
  }
  for (const [name, help, pick] of [
    ['weldr_raft_queue_length', 'Requests and peer messages waiting for the current Raft disk write', (s: DriverStats) => s.queued],
    ['weldr_raft_pending_reads', 'Linearizable reads waiting for their read index or its apply', (s: DriverStats) => s.pendingReads],
  ] as const) {
    registry.registerMetric(
      new Gauge({
        name,
        help,
        registers: [],
        collect() {
          this.set(pick(stats()));
        },
      }),
    );
  }
}
