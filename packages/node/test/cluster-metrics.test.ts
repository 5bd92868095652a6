// The Raft driver's counters of refused and dropped work reach /metrics (issue 8, item 7).
import test from 'ava';
import { Registry } from 'prom-client';
import type { ClusterView, DriverStats } from '@weldr/cluster';
import { registerClusterMetrics } from '../src/runtime/cluster-metrics.js';

const view: ClusterView = {
  isActive: () => true,
  info: () => ({ nodeId: 'n1', role: 'active', leaderId: 'n1', term: 2, commitIndex: 5, appliedIndex: 5, members: [] }),
  activate() {},
  deactivate() {},
};

test('the driver counters and queue gauges are exported, read at scrape time', async (t) => {
  const stats: DriverStats = { proposalsRejected: 3, readsRejected: 2, readsExpired: 1, messagesDropped: 7, queued: 4, pendingReads: 5 };
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
