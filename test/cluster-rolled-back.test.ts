// A member's data directory put back from an older copy of itself (a cold backup taken
// by stopping the node and copying the directory, as docs/operations.md suggested, or a
// reverted VM or volume snapshot). The copy keeps the member's incarnation, so the
// wiped-disk check cannot see it, yet it has lost the entries the member acknowledged
// since: with a lagging member it made a majority that elected a leader without them,
// and the writes the cluster had acknowledged were overwritten when the member that
// still held them came back (found by a drill: back up n3, run on, stop n2, four writes
// acknowledged by n1 and n3, put n3's copy back, kill -9 n1, start n3 and n2).
// Now every start of a directory is counted (with a random id) and peers record the
// latest one they saw: the copy shows a start its peers have seen under another id, is
// refused, marks itself and stops for good.
import { cpSync, rmSync } from 'node:fs';
import test from 'ava';
import { MemberCluster } from './helpers/members.js';
import { eventually, scaled, sleep } from './helpers/wait.js';

test.serial('a member started from an older copy of its data directory is refused and stops for good; the writes it had acknowledged stay', async (t) => {
  t.timeout(180_000, 'a drill with restarts on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => c.member(id));
  const write = async (port: number): Promise<void> => {
    const r = await eventually(`write ${port}`, async () => {
      const x = await c.call('n1', 'POST', '/servers', { ip: '127.6.0.1', port }, { 'idempotency-key': `rb-${port}` });
      return x.status === 201 || x.status === 200 ? x : undefined;
    }, 30_000, 100);
    t.true(r.status === 201 || r.status === 200);
  };
  for (const port of [1, 2, 3]) await write(port);

  // A cold backup of n3, then n3 runs on from its directory.
  await n3!.proc!.stop('SIGTERM');
  const backup = `${n3!.dataDir}.backup`;
  cpSync(n3!.dataDir, backup, { recursive: true });
  t.teardown(() => rmSync(backup, { recursive: true, force: true }));
  await c.restart('n3');
  // n2 saw this later start (the copy is told by a peer that did).
  await n2!.proc!.waitForLine('n2 recorded n3\'s second start', (l) => l.event === 'peer_start_recorded' && l.peer === 'n3' && l.start === 2, 30_000);
  // n2 stops; four writes are acknowledged by n1 and n3 alone.
  await n2!.proc!.stop('SIGTERM');
  for (const port of [4, 5, 6, 7]) await write(port);
  await eventually('n3 applied them', async () => ((await c.ports('n3', true)).length === 7 ? true : undefined), 30_000);

  // n3's copy put back; n1 (the only other holder of writes 4–7) dies; n3 and n2 start.
  await n3!.proc!.stop('SIGTERM');
  rmSync(n3!.dataDir, { recursive: true, force: true });
  cpSync(backup, n3!.dataDir, { recursive: true });
  await c.kill('n1');
  const copy = c.spawn(n3!, []);
  await c.restart('n2');
  const exit = await Promise.race([copy.exited, sleep(scaled(15_000)).then(() => null)]);
  t.not(exit, null, 'the copy must stop');
  t.is(exit?.code, 1, copy.stderr);
  t.regex(copy.stderr, /older copy of the directory/);
  t.deepEqual(await c.activeNow(), [], 'n2 alone is not active');
  // Marked: it refuses to start again.
  const again = c.spawn(n3!, []);
  t.is((await again.exited).code, 1);
  t.regex(again.stderr, /cannot serve again/);

  // n1 back: every acknowledged write is there, on n1 and n2.
  await c.restart('n1');
  await c.active();
  for (const id of [n1!.id, n2!.id]) {
    await eventually(`${id} holds every acknowledged write`, async () => ((await c.ports(id)).join() === '1,2,3,4,5,6,7' ? true : undefined), 30_000);
  }
  t.pass();
});
