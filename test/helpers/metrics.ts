// Reading a Prometheus text exposition in e2e tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './repo-root.js';

/** The weldr_* metric families in a Prometheus text exposition, sorted. */
export function families(text: string): string[] {
  return [...new Set([...text.matchAll(/^# TYPE (weldr_\w+) /gm)].map((m) => m[1]!))].sort();
}

/** docs/operations.md, where every metric is listed (› Metrics). */
export const OPERATIONS_DOC = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');

/** The families in `text` that docs/operations.md does not list. */
export function undocumented(text: string): string[] {
  return families(text).filter((name) => !OPERATIONS_DOC.includes(`\`${name}\``));
}
