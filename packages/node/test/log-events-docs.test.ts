// Every `event` a log line carries (the field tools match on) is in docs/operations.md's
// log table, so the table cannot fall behind the code again (issue 14: events were missing).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

test('every log event in the code is in the log table of docs/operations.md', (t) => {
  const doc = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Logs'), doc.indexOf('## Health, readiness, metrics'));
  const events = new Set<string>();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const file of sources(src)) for (const [, name] of readFileSync(file, 'utf8').matchAll(/\bevent: '([a-z_]+)'/g)) events.add(name!);
  }
  t.true(events.size > 20, `${events.size} events found`);
  for (const name of [...events].sort()) t.true(table.includes(`\`${name}\``), `${name} is in the log table`);
});
