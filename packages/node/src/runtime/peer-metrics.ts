// Prometheus metrics of the Raft peer transport's door: what it refused and why, and how
// many strangers are waiting to authenticate. Read at scrape time.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TransportStats } from '@weldr/cluster';

export function registerPeerMetrics(registry: Registry, stats: () => TransportStats | undefined): void {
  registry.registerMetric(
    new Counter({
      name: 'weldr_raft_connections_refused_total',
      help: 'Inbound Raft connections refused, by reason (bad_hello, bad_proof, tls, certificate_id, hello_timeout, too_many_pending, too_many_from_source, invalid_message, accept_failed)',
      labelNames: ['reason'],
      registers: [],
      collect() {
        this.reset();
        for (const [reason, n] of stats()?.refused ?? []) this.inc({ reason }, n);
      },
    }),
  );
  registry.registerMetric(
    new Gauge({
      name: 'weldr_raft_pending_connections',
      help: 'Inbound Raft connections that have not authenticated yet',
      registers: [],
      collect() {
        this.set(stats()?.pending ?? 0);
      },
    }),
  );
}
