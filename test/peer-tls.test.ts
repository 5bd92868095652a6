// Peer mTLS and admin HTTPS on a real three-node cluster (issue 9): certificates from
// `weldr certs init`; writes, relays over HTTPS with client certificates, failover; and
// members with the wrong certificate — another member's, an expired one, none — refused.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { Agent, request } from 'undici';
import { issueCertificate } from '@weldr/cluster';
import { makeTempDir } from './helpers/node.js';
import { runWeldr, type Teardown } from './helpers/process.js';
import { frame, sendRaw } from './helpers/raft-wire.js';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { eventually } from './helpers/wait.js';

async function certs(t: Teardown): Promise<string> {
  const dir = makeTempDir(t, 'weldr-certs-');
  const r = await runWeldr(t, ['certs', 'init', '--dir', dir, '--nodes', 'n1,n2,n3']);
  if (r.code !== 0) throw new Error(`weldr certs init: ${r.code} ${r.stderr}`);
  return dir;
}

function tlsArgs(dir: string, m: Member, peerCertOf = m.id): string[] {
  return [
    '--peer-cert', join(dir, peerCertOf, 'peer.pem'), '--peer-key', join(dir, peerCertOf, 'peer-key.pem'), '--peer-ca', join(dir, 'ca.pem'),
    '--admin-cert', join(dir, m.id, 'admin.pem'), '--admin-key', join(dir, m.id, 'admin-key.pem'), '--admin-client-ca', join(dir, 'ca.pem'),
  ];
}

function secureCluster(t: Teardown, dir: string): Promise<TestCluster> {
  return TestCluster.create(t, {
    args: (m) => tlsArgs(dir, m),
    adminTls: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), cert: readFileSync(join(dir, 'admin-client.pem'), 'utf8'), key: readFileSync(join(dir, 'admin-client-key.pem'), 'utf8') },
  });
}

async function metric(c: TestCluster, m: Member, name: string, label: string): Promise<number> {
  const r = await c.call(m, 'GET', '/metrics');
  const line = (r.json as string).split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test.serial('peer mTLS + admin HTTPS: writes through any member, relays over HTTPS, kill -9 of the leader, catch-up after restart', async (t) => {
  const dir = await certs(t);
  const c = await secureCluster(t, dir);
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader)!;
  const created = await c.call(follower, 'POST', '/servers', { ip: '127.0.0.1', port: 7101 });
  t.is(created.status, 201, JSON.stringify(created.json));
  t.is(created.headers['x-weldr-leader'], leader.id, 'relayed to the leader over HTTPS');
  for (const m of c.members) await eventually(`${m.id} has the server`, async () => ((await c.servers(m)).includes('127.0.0.1:7101') ? true : undefined));

  // The Raft port speaks TLS only: a plain hello gets no challenge.
  const plain = await sendRaw(leader.raftPort, frame({ hello: 'weldr-raft/2', from: 'n9', to: leader.id, nonce: randomBytes(32).toString('base64'), proof: '' }), 5000);
  t.true(plain.closedByPeer);
  t.false(plain.received.includes(Buffer.from('challenge')));
  // The admin API wants a client certificate, except for the probes.
  const bare = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8') } });
  t.teardown(() => bare.close());
  const noCert = await request(`${c.adminUrl(leader)}/servers`, { dispatcher: bare });
  t.is(noCert.statusCode, 401);
  t.like(await noCert.body.json(), { error: { code: 'UNAUTHORIZED' } });
  const health = await request(`${c.adminUrl(leader)}/health`, { dispatcher: bare });
  t.is(health.statusCode, 200);
  await health.body.dump();

  leader.proc!.signal('SIGKILL');
  await leader.proc!.exited;
  const next = await c.leader(20_000, leader);
  const other = c.members.find((m) => m !== leader && m !== next)!;
  const second = await eventually('a write through the remaining follower', async () => {
    const r = await c.call(other, 'POST', '/servers', { ip: '127.0.0.1', port: 7102 }, { 'idempotency-key': 'tls-7102' });
    return r.status === 201 || r.status === 200 ? r : undefined;
  }, 20_000, 200);
  t.is(second.headers['x-weldr-leader'], next.id);
  await c.start(leader);
  await eventually('the restarted member caught up', async () => ((await c.servers(leader)).join() === '127.0.0.1:7101,127.0.0.1:7102' ? true : undefined), 20_000);
});

test.serial('a member with another member\'s certificate, an expired one, or none is refused', async (t) => {
  const dir = await certs(t);
  const caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const ca = { cert: caPem, key: readFileSync(join(dir, 'ca-key.pem'), 'utf8') };
  const expired = issueCertificate(ca, { commonName: 'n3', nodeId: 'n3', hosts: ['127.0.0.1'], usage: 'both', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  writeFileSync(join(dir, 'expired.pem'), expired.cert);
  writeFileSync(join(dir, 'expired-key.pem'), expired.key, { mode: 0o600 });

  const c = await TestCluster.prepare(t, {
    args: (m) => tlsArgs(dir, m),
    adminTls: { ca: caPem, cert: readFileSync(join(dir, 'admin-client.pem'), 'utf8'), key: readFileSync(join(dir, 'admin-client-key.pem'), 'utf8') },
  });
  const [n1, n2, n3] = c.members as [Member, Member, Member];
  // A new cluster elects its first leader once every seed was reached (bootstrap-gate.ts):
  // n3 takes part once, then stops and loses its directory, and comes back as below.
  await Promise.all([c.start(n1), c.start(n2), c.start(n3)]);
  await c.leader();
  n3.proc!.signal('SIGTERM');
  await n3.proc!.exited;
  rmSync(n3.dataDir, { recursive: true, force: true });

  // Started with n2's certificate, or an expired one: n3 does not start, and says why.
  const asN2 = c.spawn(n3, ['--peer-cert', join(dir, 'n2', 'peer.pem'), '--peer-key', join(dir, 'n2', 'peer-key.pem')]);
  t.is((await asN2.exited).code, 2);
  t.regex(asN2.stderr, /--peer-cert .*n2\/peer\.pem is the certificate of node n2, this node is n3/);
  const old = c.spawn(n3, ['--peer-cert', join(dir, 'expired.pem'), '--peer-key', join(dir, 'expired-key.pem')]);
  t.is((await old.exited).code, 2);
  t.regex(old.stderr, /expired on/);

  // The same certificates used by hand against n1's Raft port: refused there too.
  const hello = async (cert: { cert: string; key: string } | null, from: string): Promise<boolean> => {
    const s = tls.connect({ host: '127.0.0.1', port: n1.raftPort, ca: caPem, ...(cert ?? {}), checkServerIdentity: () => undefined });
    s.on('error', () => undefined);
    let welcomed = false;
    s.on('data', (d: Buffer) => {
      if (d.includes(Buffer.from('challenge'))) s.write(frame({ hello: 'weldr-raft/2', from, to: 'n1', nonce: randomBytes(32).toString('base64'), proof: '' }));
      if (d.includes(Buffer.from('welcome'))) welcomed = true;
    });
    await new Promise((resolve) => {
      s.on('close', resolve);
      setTimeout(() => s.destroy(), 5000).unref();
    });
    return welcomed;
  };
  const n2Cert = { cert: readFileSync(join(dir, 'n2', 'peer.pem'), 'utf8'), key: readFileSync(join(dir, 'n2', 'peer-key.pem'), 'utf8') };
  t.false(await hello(n2Cert, 'n3'), 'n2\'s certificate saying hello as n3');
  t.false(await hello({ cert: expired.cert, key: expired.key }, 'n3'), 'an expired certificate');
  t.false(await hello(null, 'n3'), 'no certificate');
  t.true(await metric(c, n1, 'weldr_raft_connections_refused_total', 'reason="certificate_id"') >= 1);
  await eventually('two TLS refusals counted', async () => ((await metric(c, n1, 'weldr_raft_connections_refused_total', 'reason="tls"')) >= 2 ? true : undefined));

  // n3 with no certificate at all (running, with peer authentication off) cannot join:
  // n1 refuses its plain connections, and n3 never hears from a leader.
  const tlsRefusals = await metric(c, n1, 'weldr_raft_connections_refused_total', 'reason="tls"');
  const bare = c.spawn(n3, [], ['--insecure-peers']);
  await bare.waitForLine('started', (l) => l.event === 'started');
  await eventually('n1 refused n3 again', async () => ((await metric(c, n1, 'weldr_raft_connections_refused_total', 'reason="tls"')) >= tlsRefusals + 2 ? true : undefined), 20_000);
  const r = await request(`http://127.0.0.1:${n3.adminPort}/cluster`);
  t.like(await r.body.json(), { leaderId: null });
  t.deepEqual(await c.servers(n1), [], 'nothing changed on the cluster');
});
