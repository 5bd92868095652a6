// `weldr --help` against docs/operations.md: the exit codes of `weldr start` (its own
// table) and what SIGHUP does (*Signals and shutdown*).
import { readFileSync } from 'node:fs';
import test from 'ava';
import { MAIN_HELP } from '../src/cli/help.js';

const ops = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');

test("weldr --help names every exit code of weldr start's table in operations.md", (t) => {
  const section = ops.slice(ops.indexOf('## Exit codes'), ops.indexOf('## Signals and shutdown'));
  const table = section.slice(0, section.indexOf('The operator commands'));
  const codes = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => m[1]!);
  t.deepEqual(codes, ['0', '1', '2', '3', '4']);
  const help = MAIN_HELP.replace(/\s+/g, ' ');
  t.regex(help, /0 ok, 1 runtime failure, 2 bad usage or configuration; weldr start also 3 stopped by a failed write to the data directory, 4 data directory refused/);
});

test('weldr --help says what SIGHUP does, as operations.md does', (t) => {
  t.regex(ops, /\*\*SIGHUP\*\* re-reads the TLS certificates[^]*It also reopens the `--access-log` file/);
  t.regex(MAIN_HELP.replace(/\s+/g, ' '), /SIGHUP re-reads the TLS certificates and reopens the --access-log file/);
});

test("the operator commands' --token help says reads need it too with --admin-auth-reads (the CLI sends it with every request)", async (t) => {
  const { COMMON_HELP } = await import('../src/ctl/common-options.js');
  t.regex(COMMON_HELP.replace(/\s+/g, ' '), /--token TOKEN admin token, sent with every request \(writes need it, reads too with --admin-auth-reads\) \[WELDR_ADMIN_TOKEN\]/);
});
