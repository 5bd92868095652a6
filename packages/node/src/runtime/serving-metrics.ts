// weldr_serving and weldr_pool_staleness_seconds: read at scrape time from the serving view.
import { Gauge, type Registry } from 'prom-client';
import type { ServingStatus } from '@weldr/cluster';

export function registerServingMetrics(registry: Registry, serving: () => ServingStatus): void {
  registry.registerMetric(
    new Gauge({
      name: 'weldr_serving',
      help: '1 while this node serves client traffic (GET /serving answers 200), else 0',
      registers: [],
      collect() {
        this.set(serving().serving ? 1 : 0);
      },
    }),
  );
  registry.registerMetric(
    new Gauge({
      name: 'weldr_pool_staleness_seconds',
      help: 'The pool includes every write acknowledged more than this long ago (0 on the active node; NaN: never confirmed since start)',
      registers: [],
      collect() {
        const ms = serving().stalenessMs;
        this.set(ms === null ? Number.NaN : ms / 1000);
      },
    }),
  );
}
