// Every weldr_* metric a node serves is listed in docs/operations.md › Metrics, and the
// sample Grafana dashboard queries only metrics that exist. Checked against a real node
// (single) here; the cluster's series are checked by test/quiet-logs.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { startNode } from './helpers/node.js';
import { REPO_ROOT } from './helpers/repo-root.js';
import { families, OPERATIONS_DOC, undocumented } from './helpers/metrics.js';

const operations = OPERATIONS_DOC;

test('every metric a single node serves is in docs/operations.md', async (t) => {
  const node = await startNode(t, { store: 'memory' });
  const text = await (await request(`${node.adminUrl}/metrics`)).body.text();
  t.true(families(text).length > 20, `${families(text).length} weldr_* families`);
  t.deepEqual(undocumented(text), []);
});

test('the Grafana dashboard is valid JSON and queries only documented metrics', (t) => {
  const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'weldr-dashboard.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((x) => x.expr);
  t.true(exprs.length > 20);
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/weldr_\w+/g)) {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      t.true(operations.includes(`\`${family}\``), `${family} (in ${expr}) is documented`);
    }
  }
});
