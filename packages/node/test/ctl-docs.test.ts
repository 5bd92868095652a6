// docs/operations.md documents every operator command, every common flag and every
// dev-cluster flag: the help texts and the docs are written separately, so check them.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { COMMON_FLAGS } from '../src/ctl/common-options.js';
import { NOUNS } from '../src/ctl/run.js';

const docs = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');

test('every operator command is in the CLI section of operations.md', (t) => {
  for (const [noun, spec] of Object.entries(NOUNS)) {
    for (const verb of Object.keys(spec.verbs)) {
      const command = spec.defaultVerb === verb ? `weldr ${noun}` : `weldr ${noun} ${verb}`;
      t.true(docs.includes(`\`${command}`), command);
      for (const flag of Object.keys(spec.verbs[verb]!.flags ?? {})) t.true(docs.includes(`--${flag}`), `${command} --${flag}`);
    }
  }
  for (const flag of Object.keys(COMMON_FLAGS)) if (flag !== 'help') t.true(docs.includes(`\`--${flag}`), `--${flag}`);
});

test('every dev-cluster flag and the exit codes 3, 4, 5 are documented', (t) => {
  for (const flag of ['--data', '--proxy-ports', '--admin-ports', '--raft-ports', '--origin-ports']) t.true(docs.includes(`\`${flag}`), flag);
  for (const code of ['| 3 |', '| 4 |', '| 5 |']) t.true(docs.includes(code), code);
});
