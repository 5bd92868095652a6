// Acceptance tests of issue 9, part 1: only members holding the cluster's credentials
// can talk Raft to a node. The attack of the security review: one MsgApp carrying a
// Batch, sent to a follower's Raft port by someone who is not a member, claiming to be
// the leader. It must be refused and change nothing.
import test from 'ava';
import { commandData, frame, msgApp, sendRaw } from './helpers/raft-wire.js';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { eventually } from './helpers/wait.js';

/** The least a cluster needs in order to start (today: nothing). */
const MINIMAL_SECURITY = { args: () => [] as string[], env: () => ({}) };

interface RaftView {
  term: number;
  commitIndex: number;
  leaderId: string | null;
}

async function raftView(c: TestCluster, m: Member): Promise<RaftView> {
  const r = await c.call(m, 'GET', '/cluster');
  return r.json as RaftView;
}

test.serial('an unauthenticated MsgApp carrying a Batch, claiming to come from the leader, is refused and changes nothing', async (t) => {
  const c = await TestCluster.create(t, MINIMAL_SECURITY);
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader)!;
  // The follower's log ends where the leader's does (its no-op of this term).
  const view = await eventually('the follower caught up', async () => {
    const [l, f] = [await raftView(c, leader), await raftView(c, follower)];
    return l.commitIndex === f.commitIndex && l.term === f.term ? f : undefined;
  });
  const batch = { type: 'Batch', commands: [{ type: 'AddServer', ip: '127.0.0.1', port: 6666, weight: 1000 }] };
  const hello = { hello: 'weldr-raft/1', from: leader.id, to: follower.id, token: '' };
  const app = msgApp({ from: leader.id, to: follower.id, term: view.term, index: view.commitIndex, logTerm: view.term, data: commandData(batch) });
  await sendRaw(follower.raftPort, Buffer.concat([frame(hello), frame(app)]), 1000);

  // A legitimate write afterwards: once the follower has it, it has had every chance
  // to apply the forged entry too.
  const created = await c.call(leader, 'POST', '/servers', { ip: '127.0.0.1', port: 7777 });
  t.is(created.status, 201, JSON.stringify(created.json));
  // (Had the forged entry been taken, it would sit at the index the leader gave this
  // write, in the same term: the follower would then never learn of the write.)
  await eventually('the follower applied the legitimate write or the forged one', async () => {
    const servers = await c.servers(follower);
    return servers.includes('127.0.0.1:7777') || servers.includes('127.0.0.1:6666') ? true : undefined;
  });
  for (const m of c.members) t.deepEqual(await c.servers(m), ['127.0.0.1:7777'], `${m.id}'s pool holds only the legitimate server`);
});
