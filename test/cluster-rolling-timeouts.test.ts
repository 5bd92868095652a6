// A rolling change of --raft-election-timeout (issue 8): one member at a time is
// restarted with its new flag, 1 s → 500 ms and back, and after each step the leader —
// always the member with the longest timeout, whose lease then outlasts its followers'
// own timeouts — is cut off from the others. /ready is sampled every 5 ms on every node
// the whole time: never may two nodes answer 200 at once. On the code before the lease
// rested on the followers' promise, the steps with a 1 s leader over 500 ms followers
// showed two active nodes.
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { isReady, readyTerm, watchReadyPerNode } from './helpers/active-watch.js';
import { makeTempDir } from './helpers/node.js';
import { reservedPort } from './helpers/ports.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './helpers/process.js';
import { Relay } from './helpers/relay.js';
import { eventually, scaled } from './helpers/wait.js';

interface Member {
  readonly id: string;
  readonly raftPort: number;
  readonly adminPort: number;
  timeoutMs: number;
  proc: RunningProcess | null;
}

function ready(m: Member): Promise<boolean> {
  return isReady(`http://127.0.0.1:${m.adminPort}`, 1000);
}

async function admin(m: Member, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const r = await request(`http://127.0.0.1:${m.adminPort}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: 10_000,
  });
  const text = await r.body.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.statusCode, json };
}

/**
 * Three members whose Raft traffic goes through relays: relays.get('n2') is where every
 * member reaches n2 (n2 advertises it with --raft-advertise, so its member record holds
 * it), and the relay tells the callers apart by their hello.
 */
async function relayedCluster(t: Teardown, timeoutMs: number) {
  const dir = makeTempDir(t, 'weldr-rolling-');
  const members: Member[] = [];
  for (const id of ['n1', 'n2', 'n3']) members.push({ id, raftPort: await reservedPort(), adminPort: await reservedPort(), timeoutMs, proc: null });
  const relays = new Map<string, Relay>();
  for (const m of members) relays.set(m.id, await Relay.start(t, m.id, m.raftPort));
  const peers = members.map((p) => `${p.id}=127.0.0.1:${relays.get(p.id)!.port}`).join(',');
  const start = async (m: Member): Promise<void> => {
    m.proc = spawnWeldr(t, `weldr ${m.id}`, [
      'start', '--id', m.id, '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${m.adminPort}`,
      '--raft', `127.0.0.1:${m.raftPort}`, '--raft-advertise', `127.0.0.1:${relays.get(m.id)!.port}`, '--peers', peers, '--data', join(dir, m.id),
      '--raft-heartbeat', '50ms', '--raft-election-timeout', `${m.timeoutMs}ms`,
    ], { WELDR_CONFIG: undefined, WELDR_CLUSTER_TOKEN: 'e2e-cluster-secret-0123456789' });
    await m.proc.waitForLine('started', (l) => l.event === 'started');
  };
  await Promise.all(members.map(start));
  const isolate = (id: string, cut: boolean): void => {
    for (const other of members) {
      if (other.id === id) continue;
      relays.get(id)!.setCut(other.id, cut);
      relays.get(other.id)!.setCut(id, cut);
    }
  };
  /** A rolling step: stop the member (SIGTERM, as a supervisor does) and start it with its new timeout. */
  const restart = async (m: Member, newTimeoutMs: number): Promise<void> => {
    await m.proc!.stop('SIGTERM');
    m.timeoutMs = newTimeoutMs;
    await start(m);
  };
  return { members, isolate, restart };
}

test.serial('rolling change of the election timeout (1 s → 500 ms and back) with the leader cut off after every step: never two nodes active', async (t) => {
  t.timeout(scaled(240_000));
  const { members, isolate, restart } = await relayedCluster(t, 1000);
  const activeNow = async (): Promise<Member[]> => {
    const answers = await Promise.all(members.map(ready));
    return members.filter((_, i) => answers[i]);
  };
  const oneActive = (what: string, except?: Member): Promise<Member> =>
    eventually(what, async () => {
      const a = await activeNow();
      return a.length === 1 && a[0] !== except ? a[0] : undefined;
    }, 20_000, 10);

  const watch = watchReadyPerNode(members.map((m) => ({ id: m.id, ready: () => readyTerm(`http://127.0.0.1:${m.adminPort}`, 1000) })), 5);
  t.teardown(async () => {
    await watch.stop(); // a failed step must not leave the samplers running
  });
  let vulnerable = 0;
  let writes = 0;

  /** Make the longest-timeout member lead, let it settle, cut it off, wait for the next active node, heal. */
  const cutOffLeader = async (step: string): Promise<void> => {
    const target = members.reduce((a, b) => (b.timeoutMs > a.timeoutMs ? b : a));
    const active = await oneActive(`${step}: an active node`);
    if (active !== target) {
      // A member that has just restarted may not follow the leader yet: the transfer
      // then times out (504) and is asked again.
      await eventually(`${step}: leadership moved to ${target.id}`, async () => {
        const r = await admin(active, 'POST', '/cluster/transfer-leadership', { to: target.id });
        return r.status === 200 ? true : undefined;
      }, 30_000);
      await eventually(`${step}: ${target.id} active`, async () => ((await activeNow()).map((m) => m.id).join() === target.id ? true : undefined), 20_000, 10);
    }
    // A write through the leader: rounds are flowing and acknowledged right before the cut.
    writes++;
    t.is((await admin(target, 'POST', '/servers', { ip: '127.10.1.1', port: writes })).status, 201, `${step}: write ${writes}`);
    const followers = members.filter((m) => m !== target);
    if (followers.every((f) => f.timeoutMs < target.timeoutMs)) vulnerable++;
    isolate(target.id, true);
    const next = await oneActive(`${step}: another node active after ${target.id} was cut off`, target);
    isolate(target.id, false);
    // Healed, the cut-off member follows a leader again: next, or whoever won an election
    // a loaded machine needed since (the drill's point is the overlap watch, not who leads).
    await eventually(`${step}: ${target.id} follows a leader again`, async () => {
      const r = await admin(target, 'GET', '/cluster');
      const leaderId = (r.json as { leaderId?: string | null }).leaderId;
      return typeof leaderId === 'string' && leaderId !== target.id ? true : undefined;
    }, 20_000);
    if (process.env['DRILL_DEBUG']) process.stderr.write(`${new Date().toISOString()} ${step}: ${watch.overlapsSoFar()} overlaps so far\n`);
    t.log(`${step}: timeouts ${members.map((m) => `${m.id}=${m.timeoutMs}ms`).join(' ')}; ${target.id} cut off, ${next.id} took over`);
  };

  for (const [timeoutMs, phase] of [[500, '1 s → 500 ms'], [1000, '500 ms → 1 s']] as const) {
    for (const m of members) {
      await restart(m, timeoutMs);
      // Where every follower's own timeout is shorter than the leader's, the cut is
      // repeated: whether the old code overlapped depended on the followers' randomized
      // timeouts (an election before the leader's 750 ms lease ran out), not certain once.
      const longest = Math.max(...members.map((x) => x.timeoutMs));
      const cuts = members.filter((x) => x.timeoutMs < longest).length === 2 ? 6 : 1;
      for (let i = 1; i <= cuts; i++) await cutOffLeader(`${phase}, ${m.id} restarted, cut ${i}/${cuts}`);
    }
  }

  const { samples, overlaps, slow } = await watch.stop();
  const active = samples.filter((s) => s.active).length;
  t.log(`${samples.length} /ready samples (${active} active, ${slow} slower than 50 ms; of those, term-less ones are left out); ${vulnerable} cuts with every follower on a shorter timeout than the leader`);
  t.true(vulnerable >= 12, 'the drill reached the configurations that matter');
  t.true(active > 100, 'the sampler saw the active role');
  const shown = overlaps.slice(0, 5).map((o) => `${o.members.join(' and ')} at ${o.at.toFixed(0)} ms (${o.rule}${o.terms === undefined ? '' : `, terms ${o.terms.join('/')}`})`);
  t.is(overlaps.length, 0, `two nodes answered /ready 200 at once ${overlaps.length} times: ${shown.join('; ')}`);
  const final = (await admin(members[0]!, 'GET', '/servers?stale=true')).json as { port: number }[];
  t.is(final.length, writes, 'every acknowledged write is on the pool');
});
