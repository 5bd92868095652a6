// The Raft driver's counters of refused and dropped work reach /metrics (issue 8, item 7).
import test from 'ava';
import { Registry } from 'prom-client';
import type { ClusterView, DriverStats } from '@weldr/cluster';
import { registerClusterMetrics } from '../src/runtime/cluster-metrics.js';
import { registerRaftMetrics } from '../src/runtime/raft-metrics.js';

const view: ClusterView = {
  isActive: () => true,
  info: () => ({ nodeId: 'n1', role: 'active', leaderId: 'n1', term: 2, commitIndex: 5, appliedIndex: 5, members: [] }),
  activate() {},
  deactivate() {},
};

test('the driver counters and queue gauges are exported, read at scrape time', async (t) => {
  const stats: DriverStats = { proposalsRejected: 3, readsRejected: 2, readsExpired: 1, messagesDropped: 7, queued: 4, pendingReads: 5, snapshotsTaken: 0, snapshotsInstalled: 0, proposals: { applied: 0, failed: 0, pending: 0, buckets: [], sum: 0 } };
  let current = stats;
  const registry = new Registry();
  registerClusterMetrics(registry, view, undefined, () => current);
  const text = await registry.metrics();
  for (const [name, value] of [
    ['weldr_raft_proposals_rejected_total', 3],
    ['weldr_raft_reads_rejected_total', 2],
    ['weldr_raft_reads_expired_total', 1],
    ['weldr_raft_messages_dropped_total', 7],
    ['weldr_raft_queue_length', 4],
    ['weldr_raft_pending_reads', 5],
  ] as const) {
    t.regex(text, new RegExp(`^${name} ${value}$`, 'm'), name);
  }
  t.regex(text, /# TYPE weldr_raft_proposals_rejected_total counter/);
  current = { ...stats, proposalsRejected: 10, queued: 0 };
  const later = await registry.metrics();
  t.regex(later, /^weldr_raft_proposals_rejected_total 10$/m);
  t.regex(later, /^weldr_raft_queue_length 0$/m);
});

test('a single node registers no driver metrics', async (t) => {
  const registry = new Registry();
  registerClusterMetrics(registry, view);
  t.notRegex(await registry.metrics(), /weldr_raft_proposals_rejected_total/);
});

test('Raft work, role, lease and each peer as this node sees it are exported', async (t) => {
  const registry = new Registry();
  const stats: DriverStats = {
    proposalsRejected: 0, readsRejected: 0, readsExpired: 0, messagesDropped: 0, queued: 0, pendingReads: 0,
    snapshotsTaken: 2, snapshotsInstalled: 1,
    // 3 applied: one ≤ 1 ms, two ≤ 5 ms (cumulative per PROPOSAL_BUCKETS).
    proposals: { applied: 3, failed: 1, pending: 2, buckets: [1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], sum: 0.0075 },
  };
  registerRaftMetrics(registry, {
    stats: () => stats,
    state: () => ({ role: 'leader', hasLease: true }),
    info: () => ({
      nodeId: 'n1', role: 'active', leaderId: 'n1', term: 4, commitIndex: 50, appliedIndex: 50,
      members: [
        { id: 'n1', role: 'voter', raftRole: 'leader', reachable: true },
        { id: 'n2', role: 'voter', raftRole: 'follower', reachable: true, lastContactMs: 40, matchIndex: 50 },
        { id: 'n3', role: 'voter', reachable: false, lastContactMs: 12_500, matchIndex: 38 },
        { id: 'n4', role: 'learner', reachable: false, lastContactMs: null },
      ],
    }),
  });
  const text = await registry.metrics();
  for (const line of [
    'weldr_raft_proposals_total{result="applied"} 3',
    'weldr_raft_proposals_total{result="failed"} 1',
    'weldr_raft_proposals_pending 2',
    'weldr_raft_proposal_duration_seconds_bucket{le="0.001"} 1',
    'weldr_raft_proposal_duration_seconds_bucket{le="0.005"} 3',
    'weldr_raft_proposal_duration_seconds_bucket{le="+Inf"} 3',
    'weldr_raft_proposal_duration_seconds_sum 0.0075',
    'weldr_raft_proposal_duration_seconds_count 3',
    'weldr_raft_snapshots_total{kind="taken"} 2',
    'weldr_raft_snapshots_total{kind="installed"} 1',
    'weldr_raft_role{role="leader"} 1',
    'weldr_raft_role{role="follower"} 0',
    'weldr_raft_lease 1',
    'weldr_raft_peer_reachable{peer="n2"} 1',
    'weldr_raft_peer_reachable{peer="n3"} 0',
    'weldr_raft_peer_last_contact_seconds{peer="n2"} 0.04',
    'weldr_raft_peer_last_contact_seconds{peer="n3"} 12.5',
    'weldr_raft_peer_lag_entries{peer="n2"} 0',
    'weldr_raft_peer_lag_entries{peer="n3"} 12',
  ]) {
    t.true(text.split('\n').includes(line), line);
  }
  t.notRegex(text, /peer="n1"/, 'no series for this node itself');
  t.notRegex(text, /weldr_raft_peer_last_contact_seconds\{peer="n4"\}/, 'never heard from: no sample rather than a made-up one');
  t.regex(text, /# TYPE weldr_raft_proposal_duration_seconds histogram/);
});
