// Acceptance tests of issue 9, part 1: only members holding the cluster's credentials
// can talk Raft to a node. The attack of the security review: one MsgApp carrying a
// Batch, sent to a follower's Raft port by someone who is not a member, claiming to be
// the leader. It must be refused and change nothing.
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { commandData, frame, msgApp, sendRaw } from './helpers/raft-wire.js';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { eventually } from './helpers/wait.js';
import type { Teardown } from './helpers/process.js';

/**
 * The least a cluster needs in order to start. Before issue 9 that was nothing, and the
 * attack below succeeded (this file's first version, with no token, failed); now it is
 * a cluster token, which the attacker does not hold.
 */
const TOKEN = 'peer-auth-e2e-token-0123456789';
const MINIMAL_SECURITY = { args: () => [] as string[], env: () => ({ WELDR_CLUSTER_TOKEN: TOKEN }) };

test.serial('a cluster without peer authentication does not start: exit 2, the fix in the message', async (t) => {
  const c = await TestCluster.prepare(t);
  const proc = c.spawn(c.members[0]!);
  const exit = await proc.exited;
  t.is(exit.code, 2, proc.stderr);
  t.regex(proc.stderr, /cluster mode needs peer authentication.*WELDR_CLUSTER_TOKEN.*--peer-cert.*--insecure-peers/);
});

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
  const app = frame(msgApp({ from: leader.id, to: follower.id, term: view.term, index: view.commitIndex, logTerm: view.term, data: commandData(batch) }));
  const nonce = randomBytes(32).toString('base64');
  // What an attacker without the token can try: the MsgApp alone, the old hello with an
  // empty or a guessed token, the new hello with no proof or a made-up one.
  const attempts: [string, Buffer][] = [
    ['no hello', app],
    ['old hello, empty token', Buffer.concat([frame({ hello: 'weldr-raft/1', from: leader.id, to: follower.id, token: '' }), app])],
    ['old hello, guessed token', Buffer.concat([frame({ hello: 'weldr-raft/1', from: leader.id, to: follower.id, token: 'e2e-cluster-secret-0123456789' }), app])],
    ['new hello, no proof', Buffer.concat([frame({ hello: 'weldr-raft/2', from: leader.id, to: follower.id, nonce, proof: '' }), app])],
    ['new hello, made-up proof', Buffer.concat([frame({ hello: 'weldr-raft/2', from: leader.id, to: follower.id, nonce, proof: randomBytes(32).toString('base64') }), app])],
  ];
  for (const [name, bytes] of attempts) {
    const r = await sendRaw(follower.raftPort, bytes, 5000);
    t.true(r.closedByPeer, `${name}: the follower closed the connection`);
    t.false(r.received.includes(Buffer.from('welcome')), `${name}: no welcome`);
  }

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

test.serial('the cluster token never appears in a node\'s log, whatever happens (debug level, writes, a leader change)', async (t) => {
  const c = await TestCluster.create(t, MINIMAL_SECURITY);
  const leader = await c.leader();
  t.is((await c.call(c.members.find((m) => m !== leader)!, 'POST', '/servers', { ip: '127.0.0.1', port: 7001 })).status, 201);
  const moved = await c.call(leader, 'POST', '/cluster/transfer-leadership', undefined);
  t.is(moved.status, 200, JSON.stringify(moved.json));
  // A stranger knocking, and a node with a wrong token, are logged too.
  await sendRaw(leader.raftPort, frame({ hello: 'weldr-raft/1', from: 'n9', to: leader.id, token: TOKEN }), 2000);
  for (const m of c.members) {
    await m.proc!.stop('SIGTERM');
    const everything = m.proc!.stdout + m.proc!.stderr;
    t.true(everything.length > 1000, `${m.id} logged something`);
    t.false(everything.includes(TOKEN), `${m.id}'s log does not contain the token`);
    t.true(m.proc!.lines.some((l) => l.event === 'starting' && (l.config as Record<string, unknown>).clusterToken === '[redacted]'), `${m.id}: the starting line says a token is set, redacted`);
  }
});

/** The client's proof of the weldr-raft/2 handshake, written out from its definition. */
function proof(token: string, serverNonce: string, clientNonce: string, from: string, to: string): string {
  return createHmac('sha256', token).update(['weldr-raft/2', 'client', serverNonce, clientNonce, from, to].join('\0')).digest('base64');
}

/**
 * Says hello to `target`'s Raft port as `claim`, advertising `admin` as its admin URL
 * (with the token when given), and keeps the connection open until the test ends.
 */
async function forgedHello(t: Teardown, port: number, target: string, claim: string, admin: string, token: string | undefined): Promise<boolean> {
  const s = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => void s.destroy());
  s.on('error', () => undefined);
  return new Promise<boolean>((resolve) => {
    let buffered = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      const text = buffered.toString();
      const challenge = /"challenge":"weldr-raft\/2","nonce":"([^"]+)"/.exec(text);
      if (challenge !== null && !text.includes('"welcome"') && !(s as { said?: boolean }).said) {
        (s as { said?: boolean }).said = true;
        const nonce = randomBytes(32).toString('base64');
        s.write(frame({ hello: 'weldr-raft/2', from: claim, to: target, nonce, proof: token === undefined ? '' : proof(token, challenge[1]!, nonce, claim, target), info: { admin } }));
      }
      if (text.includes('"welcome"')) resolve(true);
    });
    s.on('close', () => resolve(false));
  });
}

for (const withToken of [false, true]) {
  // With the token an insider can still claim to be the leader (the token proves
  // membership, not identity): the relay takes the leader's admin address from its
  // replicated member record, never from a hello, and such a hello is refused anyway for
  // not showing the incarnation the cluster knows for the leader's id (peer TLS binds the
  // id to the certificate as well).
  test.serial(`a forged hello claiming to be the leader ${withToken ? 'with' : 'without'} the token cannot redirect the relay`, async (t) => {
    const ADMIN_TOKEN = 'relay-admin-token-0123456789';
    const c = await TestCluster.create(t, { ...MINIMAL_SECURITY, env: () => ({ WELDR_CLUSTER_TOKEN: TOKEN, WELDR_ADMIN_TOKEN: ADMIN_TOKEN }), adminToken: ADMIN_TOKEN });
    const leader = await c.leader();
    const follower = c.members.find((m) => m !== leader)!;
    // The attacker's "admin API": answers every write 201 and remembers what it got.
    const received: Record<string, unknown>[] = [];
    const fake = http.createServer((req, res) => {
      received.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"forged":true}');
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    t.teardown(() => fake.close());
    const fakeUrl = `http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`;
    const welcomed = await forgedHello(t, follower.raftPort, follower.id, leader.id, fakeUrl, withToken ? TOKEN : undefined);
    t.false(welcomed, withToken ? 'a token holder that does not show the leader\'s incarnation is refused' : 'without the token, no welcome');
    const r = await c.call(follower, 'POST', '/servers', { ip: '127.0.0.1', port: 7201 });
    t.is(r.status, 201, JSON.stringify(r.json));
    t.is(r.headers['x-weldr-leader'], leader.id);
    t.deepEqual(received, [], 'the attacker\'s listener got nothing (no write, no bearer token)');
    t.true((await c.servers(leader)).includes('127.0.0.1:7201'), 'the write reached the real leader');
  });
}
