// The fast failover path's evidence (leader-death.ts): only a closed connection with the
// current leader starts a check, and only two refused Raft probes with an admin port
// that does not accept count as its death. Probe outcomes are scripted here; probeTcp
// itself is checked against real sockets on loopback.
import net from 'node:net';
import test from 'ava';
import { LeaderDeathWatch, MAX_PROBES, probeTcp, type ProbeOutcome } from '../src/leader-death.js';
import type { HostPort } from '../src/types.js';

const RAFT: HostPort = { host: '127.0.0.1', port: 7001 };
const ADMIN: HostPort = { host: '127.0.0.1', port: 7002 };

interface Setup {
  readonly watch: LeaderDeathWatch;
  readonly calls: { term: number; leader: string }[];
  readonly probed: string[];
  readonly infos: object[];
  view: { term: number; leader: string | null; role: string };
  enabled: boolean;
  /** Outcomes of the Raft probes in order, and of the admin probe. */
  raft: ProbeOutcome[];
  admin: ProbeOutcome;
  waive: boolean;
  /** Whether a connection with the leader is up (checked after every Raft probe). */
  connected: boolean;
  raftAddress: HostPort;
  adminAddress: HostPort | undefined;
  /** Runs after the first Raft probe (e.g. the term moves on). */
  afterFirst?: () => void;
}

function setup(): Setup {
  const s = {
    calls: [],
    probed: [],
    infos: [],
    view: { term: 5, leader: 'n1', role: 'follower' },
    enabled: true,
    raft: ['refused', 'refused'],
    admin: 'refused',
    waive: true,
    connected: false,
    raftAddress: RAFT,
    adminAddress: ADMIN,
  } as unknown as Setup;
  (s as { watch: LeaderDeathWatch }).watch = new LeaderDeathWatch({
    self: 'n2',
    view: () => s.view,
    raftAddress: () => s.raftAddress,
    connected: () => s.connected,
    adminAddress: () => s.adminAddress,
    enabled: () => s.enabled,
    leaderGone: (term, leader) => {
      s.calls.push({ term, leader });
      return Promise.resolve(s.waive);
    },
    log: { info: (o) => s.infos.push(o), debug: () => undefined },
    probe: (a) => {
      const isAdmin = a === s.adminAddress && a.port === ADMIN.port;
      s.probed.push(isAdmin ? 'admin' : 'raft');
      if (isAdmin) return Promise.resolve(s.admin);
      const o = s.raft.shift() ?? 'timeout';
      if (s.probed.filter((p) => p === 'raft').length === 1) s.afterFirst?.();
      return Promise.resolve(o);
    },
    sleep: () => Promise.resolve(),
  });
  return s;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

test('refused twice with the admin port refusing too: the core is told, once, and it is counted and logged', async (t) => {
  const s = setup();
  s.watch.connectionClosed('n1');
  s.watch.connectionClosed('n1'); // the other connection closes too: one check
  await settle();
  t.deepEqual(s.calls, [{ term: 5, leader: 'n1' }]);
  t.deepEqual(s.probed, ['raft', 'raft', 'admin'], 'the admin address after two refusals');
  t.is(s.watch.fastFailovers, 1);
  t.is(s.infos.length, 1);
  t.like(s.infos[0], { event: 'raft_fast_failover', leader: 'n1', term: 5 });
});

const ACCEPTED_ALWAYS: ProbeOutcome[] = new Array(20).fill('accepted');
for (const [name, raft] of [
  ['the port accepts, every time (a live or paused process)', ACCEPTED_ALWAYS],
  ['a timed-out first probe', ['timeout']],
  ['another error', ['error']],
  ['refused, then timed out', ['refused', 'timeout']],
  ['never two refusals in a row', ['refused', 'accepted', 'refused', 'accepted', 'refused', 'accepted', 'refused', 'accepted', 'refused', 'refused']],
] as const) {
  test(`no evidence: ${name}`, async (t) => {
    const s = setup();
    s.raft = [...raft];
    s.watch.connectionClosed('n1');
    await settle();
    t.deepEqual(s.calls, []);
    t.is(s.watch.fastFailovers, 0);
    t.true(s.probed.filter((p) => p === 'raft').length <= MAX_PROBES);
  });
}

test('the listener closing a moment after the connections (the exit race): accepted, then refused twice, is evidence', async (t) => {
  const s = setup();
  s.raft = ['accepted', 'refused', 'refused'];
  s.watch.connectionClosed('n1');
  await settle();
  t.deepEqual(s.calls, [{ term: 5, leader: 'n1' }]);
});

test('a candidate saying the leader is gone makes a voter check for itself, only when its own connections with the leader are down', async (t) => {
  const s = setup();
  s.connected = true;
  s.watch.candidateSaysGone(5, 'n1');
  s.connected = false;
  s.watch.candidateSaysGone(4, 'n1'); // an older term
  s.watch.candidateSaysGone(5, 'n3'); // not our leader
  await settle();
  t.deepEqual(s.probed, []);
  s.watch.candidateSaysGone(5, 'n1');
  await settle();
  t.deepEqual(s.calls, [{ term: 5, leader: 'n1' }]);
});

test('the admin address accepting vetoes two refused Raft probes (a REJECT rule or relay on the Raft port only)', async (t) => {
  const s = setup();
  s.admin = 'accepted';
  s.watch.connectionClosed('n1');
  await settle();
  t.deepEqual(s.calls, []);
});

test('an admin address on loopback is not probed for a leader on another host', async (t) => {
  const s = setup();
  s.raftAddress = { host: '10.1.2.3', port: 7001 };
  s.admin = 'accepted'; // would veto, were it probed: it would be this host's own port
  s.watch.connectionClosed('n1');
  await settle();
  t.false(s.probed.includes('admin'));
  t.is(s.calls.length, 1);
});

test('nothing is probed for a peer that is not the leader, on the leader, or with the path off', async (t) => {
  const s = setup();
  s.watch.connectionClosed('n3');
  s.view = { term: 5, leader: 'n2', role: 'leader' };
  s.watch.connectionClosed('n2');
  s.view = { term: 5, leader: 'n1', role: 'follower' };
  s.enabled = false;
  s.watch.connectionClosed('n1');
  await settle();
  t.deepEqual(s.probed, []);
  t.deepEqual(s.calls, []);
});

test('the term moving on during the probes drops the evidence; a refusal by the core is not counted', async (t) => {
  const s = setup();
  s.afterFirst = () => (s.view = { term: 6, leader: null, role: 'follower' });
  s.watch.connectionClosed('n1');
  await settle();
  t.deepEqual(s.calls, []);
  const s2 = setup();
  s2.waive = false;
  s2.watch.connectionClosed('n1');
  await settle();
  t.is(s2.calls.length, 1);
  t.is(s2.watch.fastFailovers, 0);
  t.is(s2.infos.length, 0);
});

test('probeTcp: a listening port accepts, a closed one refuses', async (t) => {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  t.is(await probeTcp({ host: '127.0.0.1', port }), 'accepted');
  await new Promise<void>((r) => server.close(() => r()));
  t.is(await probeTcp({ host: '127.0.0.1', port }), 'refused');
});
