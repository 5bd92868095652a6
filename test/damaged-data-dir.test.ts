// `weldr start` on a damaged data directory refuses to start — exit 4, one line saying
// what is wrong and what to do — instead of serving a pool that silently lost writes
// (issue 8, item 5). The cases the issue reproduced by hand: 4 bytes flipped in the
// LevelDB log, CURRENT deleted; single node and cluster member alike.
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { adminCall } from './helpers/admin.js';
import { makeTempDir, startNode } from './helpers/node.js';
import { reservedPort } from './helpers/ports.js';
import { spawnWeldr } from './helpers/process.js';
import { within } from './helpers/wait.js';

const EXIT_DATA_REFUSED = 4;

function flipLogBytes(data: string): void {
  const log = readdirSync(data).filter((f) => f.endsWith('.log')).sort().at(-1)!;
  const bytes = readFileSync(join(data, log));
  for (let i = 0; i < 4; i++) bytes[200 + i]! ^= 0xff;
  writeFileSync(join(data, log), bytes);
}

async function refusedStart(t: ExecutionContext, args: readonly string[], reason: 'damaged' | 'lost-files', message: RegExp): Promise<void> {
  const proc = spawnWeldr(t, 'weldr refused', ['start', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], { WELDR_CONFIG: undefined });
  const exit = await within('the refused node exits', proc.exited, 15_000);
  t.is(exit.code, EXIT_DATA_REFUSED, proc.stderr);
  t.regex(proc.stderr, message);
  t.is(proc.stderr.trim().split('\n').length, 1, 'one line on stderr');
  const fatal = proc.lines.filter((l) => l.level === 60);
  t.is(fatal.length, 1);
  t.like(fatal[0], { event: 'start_failed', reason });
  t.false(proc.lines.some((l) => l.event === 'started'));
}

test('single node: 4 bytes flipped in the LevelDB log, then CURRENT deleted: each refused with exit 4 and one line', async (t) => {
  const data = join(makeTempDir(t), 'n1');
  const node = await startNode(t, { dataDir: data });
  for (let port = 1; port <= 40; port++) t.is((await adminCall(node, 'POST', '/servers', { ip: '127.0.0.1', port })).status, 201);
  t.is((await node.proc.stop('SIGTERM')).code, 0);

  flipLogBytes(data);
  await refusedStart(t, ['--id', 'n1', '--data', data], 'damaged', /^weldr start: refusing to open data directory .*: its write-ahead log \d+\.log is damaged at byte \d+ \(checksum mismatch.*restore the directory from a backup/);

  unlinkSync(join(data, 'CURRENT'));
  await refusedStart(t, ['--id', 'n1', '--data', data], 'lost-files', /^weldr start: refusing to open data directory .*: weldr set it up on .* but its database is gone \(no CURRENT file.*\), so it would start with an empty pool; restore/);
});

test('cluster member: a flipped log refuses the start with exit 4 (it would vote and acknowledge with lost entries)', async (t) => {
  const data = join(makeTempDir(t), 'n1');
  const peers = `n1=127.0.0.1:${await reservedPort()},n2=127.0.0.1:${await reservedPort()},n3=127.0.0.1:${await reservedPort()}`;
  const args = ['--id', 'n1', '--peers', peers, '--data', data, '--insecure-peers'];
  // A member alone (no quorum) still writes its bootstrap log and identity (it holds its
  // first election until every seed is reached).
  const first = spawnWeldr(t, 'weldr n1', ['start', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], { WELDR_CONFIG: undefined });
  await first.waitForLine('started', (l) => l.event === 'started');
  t.is((await first.stop('SIGTERM')).code, 0);
  flipLogBytes(data);
  await refusedStart(t, args, 'damaged', /^weldr start: refusing to open data directory .*: its write-ahead log \d+\.log is damaged/);
});
