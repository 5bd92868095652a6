// Every setting of `weldr start` has its row in docs/operations.md: flag, variable, key.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { OPTIONS } from '../src/index.js';

test('docs/operations.md lists every flag with its variable and config key', async (t) => {
  const doc = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| `--'));
  for (const o of OPTIONS) {
    const row = rows.find((r) => r.startsWith(`| \`--${o.flag}\``) || r.startsWith(`| \`--${o.flag} `));
    t.truthy(row, `--${o.flag} has a row`);
    t.true(row?.includes(`\`${o.env}\``) === true && row.includes(`\`${o.key}\``), `--${o.flag}: ${o.env}, ${o.key}`);
  }
});
