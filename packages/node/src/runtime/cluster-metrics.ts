// Prometheus metrics of the cluster view: read at scrape time, nothing on any hot path.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterView } from '@weldr/cluster';

/** Register weldr_active, weldr_raft_* (cluster mode fills them; a single node reports itself). */
export function registerClusterMetrics(registry: Registry, cluster: ClusterView, onLeaderChange?: (listener: () => void) => void): void {
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
  if (onLeaderChange !== undefined) {
    const changes = new Counter({ name: 'weldr_raft_leader_changes_total', help: 'Times this node saw the leader change (or become unknown)', registers: [] });
    registry.registerMetric(changes);
    onLeaderChange(() => changes.inc());
  }
}
