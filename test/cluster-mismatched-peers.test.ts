// Seeds started with settings that disagree. A seed whose --peers gives two members each
// other's Raft address (n1 at n2's, n2 at n1's) dialled each at the wrong node, whose
// handshake refused it (the hello was addressed to another id), for ever: it received
// the leader's appends but could answer none, never applied the member records (which
// hold the right addresses), and every write and linearizable read through it failed
// while the others ran on two of three (found by a drill with the addresses swapped).
// Now an admitted peer's hello says where it listens, and that address is tried after
// the one --peers gives; only a handshake the peer welcomes under the dialled id makes it
// the one used.
import test from 'ava';
import { MemberCluster } from './helpers/members.js';
import { eventually } from './helpers/wait.js';

test.serial('a seed whose --peers swaps two members\' addresses still reaches them: writes and reads through it succeed, never two active', async (t) => {
  t.timeout(120_000, 'three members on a loaded machine');
  const c = MemberCluster.empty(t);
  for (const id of ['n1', 'n2', 'n3']) await c.define(id);
  c.seeds.push('n1', 'n2', 'n3');
  const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => c.member(id));
  const swapped = `n1=127.0.0.1:${n2!.raftPort},n2=127.0.0.1:${n1!.raftPort},n3=127.0.0.1:${n3!.raftPort}`;
  await Promise.all([c.startSeed('n1'), c.startSeed('n2')]);
  const proc = c.spawn(n3!, ['--peers', swapped]);
  await proc.waitForLine('started', (l) => l.event === 'started', 30_000);
  await c.active();

  const write = await eventually('a write through n3', async () => {
    const r = await c.call(n3!.id, 'POST', '/servers', { ip: '127.7.0.1', port: 1 }, { 'idempotency-key': 'swapped-1' });
    return r.status === 201 || r.status === 200 ? r : undefined;
  }, 30_000, 200);
  t.true(write.status === 201 || write.status === 200);
  t.deepEqual(await c.ports(n3!.id), [1], 'a linearizable read through n3');
  // Its own connections settle on the right addresses (the records name them once applied).
  const reached = await eventually('n3 to reach every member', async () => {
    const view = await c.view(n3!.id);
    return view.members.every((m) => (m as { reachable?: boolean }).reachable === true) ? view.members.map((m) => m.id) : undefined;
  }, 30_000, 100);
  t.deepEqual(reached, ['n1', 'n2', 'n3']);
  t.is((await c.activeNow()).length, 1);
});
