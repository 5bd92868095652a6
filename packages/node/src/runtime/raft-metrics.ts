// Prometheus metrics of this node's Raft work and of its peers as it sees them, read at
// scrape time from the driver and from /cluster's own view (nothing on any hot path):
// proposals and the time to apply them, snapshots, role and lease, and per peer its
// reachability, last contact and (on the leader) replication lag.
import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import { PROPOSAL_BUCKETS, type ClusterStatus, type DriverStats } from '@weldr/cluster';

export interface RaftMetricsSource {
  readonly stats: () => DriverStats;
  readonly info: () => ClusterStatus;
  /** The core's role and whether it holds the leader lease now. */
  readonly state: () => { readonly role: string; readonly hasLease: boolean };
  /** Times this node waived its promise to a leader whose process was gone (--raft-fast-failover). */
  readonly fastFailovers?: () => number;
}

const ROLES = ['leader', 'follower', 'candidate', 'pre-candidate'] as const;

export function registerRaftMetrics(registry: Registry, source: RaftMetricsSource): void {
  const metrics = [
    new Counter({
      name: 'weldr_raft_proposals_total',
      help: 'Writes this node proposed as the leader, by result: applied, or failed (refused, lost, outcome unknown)',
      labelNames: ['result'],
      registers: [],
      collect() {
        const p = source.stats().proposals;
        this.reset();
        this.inc({ result: 'applied' }, p.applied);
        this.inc({ result: 'failed' }, p.failed);
      },
    }),
    new Gauge({
      name: 'weldr_raft_proposals_pending',
      help: 'Writes proposed on this node and not yet applied or failed',
      registers: [],
      collect() {
        this.set(source.stats().proposals.pending);
      },
    }),
    new ProposalHistogram(source),
    new Counter({
      name: 'weldr_raft_snapshots_total',
      help: 'Raft snapshots: taken (this node compacted its log) or installed (received from a leader)',
      labelNames: ['kind'],
      registers: [],
      collect() {
        const s = source.stats();
        this.reset();
        this.inc({ kind: 'taken' }, s.snapshotsTaken);
        this.inc({ kind: 'installed' }, s.snapshotsInstalled);
      },
    }),
    new Gauge({
      name: 'weldr_raft_role',
      help: "1 for this node's current Raft role, 0 for the others",
      labelNames: ['role'],
      registers: [],
      collect() {
        const role = source.state().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    }),
    new Counter({
      name: 'weldr_raft_fast_failovers_total',
      help: "Times this node waived its promise to the leader on evidence that the leader's process was gone (its connections closed, its Raft port refused connections twice) and campaigned at once (--raft-fast-failover)",
      registers: [],
      collect() {
        this.reset();
        this.inc(source.fastFailovers?.() ?? 0);
      },
    }),
    new Gauge({
      name: 'weldr_raft_lease',
      help: '1 while this node is the leader and holds its check-quorum lease (weldr_active also needs its term applied)',
      registers: [],
      collect() {
        this.set(source.state().hasLease ? 1 : 0);
      },
    }),
    new Gauge({
      name: 'weldr_raft_peer_reachable',
      help: "1 while this node's own connection to the peer is up",
      labelNames: ['peer'],
      registers: [],
      collect() {
        this.reset();
        const info = source.info();
        for (const m of info.members) if (m.id !== info.nodeId && m.reachable !== undefined) this.set({ peer: m.id }, m.reachable ? 1 : 0);
      },
    }),
    new Gauge({
      name: 'weldr_raft_peer_last_contact_seconds',
      help: 'Seconds since this node last received a message from the peer (no sample: never)',
      labelNames: ['peer'],
      registers: [],
      collect() {
        this.reset();
        const info = source.info();
        for (const m of info.members) if (m.id !== info.nodeId && typeof m.lastContactMs === 'number') this.set({ peer: m.id }, m.lastContactMs / 1000);
      },
    }),
    new Gauge({
      name: 'weldr_raft_peer_lag_entries',
      help: "On the leader: the commit index minus the peer's match index (entries it lacks)",
      labelNames: ['peer'],
      registers: [],
      collect() {
        this.reset();
        const info = source.info();
        for (const m of info.members) if (m.id !== info.nodeId && typeof m.matchIndex === 'number') this.set({ peer: m.id }, Math.max(0, info.commitIndex - m.matchIndex));
      },
    }),
  ];
  for (const m of metrics) registry.registerMetric(m);
}

/** weldr_raft_proposal_duration_seconds from the driver's own buckets (no observe() per write). */
class ProposalHistogram extends Histogram<string> {
  constructor(private readonly source: RaftMetricsSource) {
    super({ name: NAME, help: HELP, buckets: [...PROPOSAL_BUCKETS], registers: [] });
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    const p = this.source.stats().proposals;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = PROPOSAL_BUCKETS.map((le, i) => ({ labels: { le }, value: p.buckets[i] ?? 0, metricName: `${NAME}_bucket` }));
    values.push({ labels: { le: '+Inf' }, value: p.applied, metricName: `${NAME}_bucket` });
    values.push({ labels: {}, value: p.sum, metricName: `${NAME}_sum` });
    values.push({ labels: {}, value: p.applied, metricName: `${NAME}_count` });
    return { name: NAME, help: HELP, type: HISTOGRAM, values, aggregator: 'sum', collect: discard };
  }

  /** The registry prefers this (untyped) method when present; keep both in step. */
  async getForPromString(): ReturnType<Histogram<string>['get']> {
    return this.get();
  }
}

function discard(): void {}

const NAME = 'weldr_raft_proposal_duration_seconds';
const HELP = 'Time from a write proposed on this node (the leader) to its apply here: commit on a majority plus apply';
// prom-client declares MetricType as a numeric enum that does not exist at run time; the
// registry prints `type` as given (the proxy's request histogram does the same).
const HISTOGRAM = 'histogram' as unknown as MetricType;
