// The operator CLI end to end: `weldr servers|cluster|member|settings|stats …` as separate
// processes against a real three-node cluster (admin token on, an unreachable endpoint
// first in --endpoints), their --json output and exit codes; POST /servers/batch all or
// nothing through a follower; export from the cluster → import into a fresh node.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { Cleanup } from './helpers/cleanup.js';
import { startCluster, type ClusterMember } from './helpers/cluster.js';
import { makeTempDir, startNode } from './helpers/node.js';
import { startOrigins, type Origin } from './helpers/origins.js';
import { reservedPort } from './helpers/ports.js';
import { runWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

const TOKEN = 'e2e-admin-token-0123456789';
const cleanup = new Cleanup();
let members: ClusterMember[] = [];
let origins: Origin[] = [];
/** A closed port first, then every member: the CLI must skip the first. */
let endpoints = '';
let dir = '';

test.before(async () => {
  [members, origins] = await Promise.all([startCluster(cleanup, { env: { WELDR_ADMIN_TOKEN: TOKEN } }), startOrigins(cleanup, ['ctl-a', 'ctl-b'])]);
  endpoints = [`http://127.0.0.1:${await reservedPort()}`, ...members.map((m) => m.adminUrl)].join(',');
  dir = makeTempDir(cleanup, 'weldr-ctl-e2e-');
});
test.after.always(() => cleanup.run());

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `weldr <args> --endpoints <all, unreachable first>`, with the admin token in the environment. */
function weldr(t: ExecutionContext, args: string[], env: Record<string, string | undefined> = { WELDR_ADMIN_TOKEN: TOKEN }): Promise<Run> {
  return runWeldr(t, [...args, '--endpoints', endpoints], { WELDR_ENDPOINTS: undefined, WELDR_TIMEOUT: undefined, ...env });
}

function parse<T>(run: Run): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
}

interface StatusJson {
  leaderId: string | null;
  term: number;
  members: { id: string; role: string; raftRole: string | null; active: boolean | null; term: number | null; commitIndex: number | null; appliedIndex: number | null; lag: number | null; reachable: boolean | null; adminUrl: string | null }[];
  endpoints: { url: string; nodeId: string | null; error: string | null }[];
}

async function status(t: ExecutionContext): Promise<StatusJson> {
  const run = await weldr(t, ['cluster', 'status', '--json']);
  t.is(run.code, 0, run.stderr);
  return parse<StatusJson>(run);
}

/** Until one member is active (an election may be in progress), then its id. */
async function activeMember(t: ExecutionContext): Promise<string> {
  return eventually('one active member in weldr cluster status', async () => {
    const s = await status(t);
    const active = s.members.filter((m) => m.active === true);
    return active.length === 1 ? active[0]!.id : undefined;
  }, 20_000, 200);
}

/**
 * A member's pool and settings by its own linearizable read. Retried while the member
 * answers 503 (an election on a loaded machine: "leadership changed while reading"), as
 * the CLI itself does.
 */
async function pool(m: Pick<ClusterMember, 'adminUrl'>): Promise<{ servers: { id: string; weight: number; draining: boolean; healthCheck: object }[]; settings: object }> {
  const get = (path: string): Promise<unknown> =>
    eventually(`${m.adminUrl}${path} to answer 200`, async () => {
      const r = await request(`${m.adminUrl}${path}`);
      const body: unknown = await r.body.json();
      if (r.statusCode === 200) return body;
      if (r.statusCode === 503) return undefined;
      throw new Error(`${path}: ${r.statusCode} ${JSON.stringify(body)}`);
    });
  return { servers: (await get('/servers')) as never, settings: (await get('/settings')) as object };
}

test.serial('cluster status: every member with its role, term and indexes, exactly one active, the unreachable endpoint named', async (t) => {
  const active = await activeMember(t);
  const s = await status(t);
  t.deepEqual(s.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);
  t.is(s.members.filter((m) => m.active === true).length, 1);
  t.is(s.leaderId, active);
  for (const m of s.members) {
    t.is(m.role, 'voter');
    t.is(m.reachable, true, m.id);
    t.is(m.raftRole, m.id === active ? 'leader' : 'follower');
    t.is(typeof m.term, 'number');
    t.true((m.appliedIndex ?? -1) >= 0);
    t.is(typeof m.lag, 'number', 'the leader reports every member\'s match index');
  }
  const unreachable = s.endpoints.find((e) => e.nodeId === null);
  t.regex(unreachable?.error ?? '', /connection refused/);
  const human = await weldr(t, ['cluster', 'status']);
  t.is(human.code, 0);
  t.regex(human.stdout, /^ID +RAFT ADDRESS +ADMIN +ROLE +ACTIVE +TERM +COMMIT\/APPLIED +LAG +LIVE +LAST CONTACT\n/);
  t.regex(human.stdout, new RegExp(`active: ${active}\\b`));
});

test.serial('servers add / list / drain / remove through any member, tables and --json, refusals exit 4', async (t) => {
  const [a, b] = origins as [Origin, Origin];
  const added = await weldr(t, ['servers', 'add', `127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`, '--weight', '2']);
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /added\n.*added\n\(one atomic change at index \d+\)/);
  // Replicated: every member's own linearizable read shows both.
  for (const m of members) t.deepEqual((await pool(m)).servers.map((s) => [s.id, s.weight]).sort(), [[`127.0.0.1:${a.port}`, 2], [`127.0.0.1:${b.port}`, 2]].sort());
  const listed = parse<{ id: string }[]>(await weldr(t, ['servers', 'list', '--json']));
  t.is(listed.length, 2);
  // Proxied through any member's proxy.
  const body = await eventually('the proxy routes to the new origins', async () => {
    const r = await request(`${members[0]!.proxyUrl}/`);
    const text = await r.body.text();
    return r.statusCode === 200 ? text : undefined;
  });
  t.regex(body, /hello from ctl-/);

  const drained = parse<{ results: { status: string; server: { draining: boolean } }[] }>(await weldr(t, ['servers', 'drain', `127.0.0.1:${a.port}`, '--json']));
  t.like(drained.results[0], { status: 'updated', server: { draining: true } });
  t.is((await weldr(t, ['servers', 'drain', `127.0.0.1:${a.port}`, '--undo'])).code, 0);

  const missing = await weldr(t, ['servers', 'remove', '127.0.0.1:9', `127.0.0.1:${a.port}`]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /404 NOT_FOUND: server 127\.0\.0\.1:9 is not in the pool/);
  t.is((await pool(members[1]!)).servers.length, 2, 'nothing of the refused batch was applied');
});

test.serial('the admin token: without it a write is refused (exit 4) and says how to pass one', async (t) => {
  const r = await weldr(t, ['servers', 'add', '127.0.0.1:9'], { WELDR_ADMIN_TOKEN: undefined });
  t.is(r.code, 4);
  t.regex(r.stderr, /401 UNAUTHORIZED/);
  t.regex(r.stderr, /--token TOKEN or set WELDR_ADMIN_TOKEN/);
  const wrong = await weldr(t, ['servers', 'add', '127.0.0.1:9', '--token', 'not-the-token'], { WELDR_ADMIN_TOKEN: undefined });
  t.is(wrong.code, 4);
  t.regex(wrong.stderr, /403 FORBIDDEN/);
});

test.serial('POST /servers/batch through a follower: all or nothing, one log entry', async (t) => {
  const leader = (await status(t)).leaderId;
  const follower = members.find((m) => m.id !== leader)!;
  const before = await pool(follower);
  // Retried while the follower cannot reach a leader (503), with one Idempotency-Key per batch.
  const post = (commands: unknown[]): Promise<{ status: number; body: unknown; index: number }> => {
    const key = `ctl-e2e-${Math.random()}`;
    return eventually('the batch to be answered by a leader', async () => {
      const r = await request(`${follower.adminUrl}/servers/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, 'idempotency-key': key },
        body: JSON.stringify({ commands }),
      });
      const answer = { status: r.statusCode, body: await r.body.json(), index: Number(r.headers['x-weldr-index']) };
      return answer.status === 503 ? undefined : answer;
    });
  };
  const bad = await post([{ type: 'AddServer', ip: '127.10.99.1', port: 80 }, { type: 'UpdateSettings', balancer: 'power-of-two' }, { type: 'RemoveServer', ip: '127.10.99.9', port: 80 }]);
  t.is(bad.status, 404);
  t.like(bad.body, { error: { code: 'NOT_FOUND', field: 'commands[2]' } });
  for (const m of members) {
    const now = await pool(m);
    t.deepEqual(now.servers, before.servers, `${m.id}: servers unchanged`);
    t.deepEqual(now.settings, before.settings, `${m.id}: settings unchanged`);
  }
  const good = await post([{ type: 'AddServer', ip: '127.10.99.1', port: 80 }, { type: 'AddServer', ip: '127.10.99.2', port: 80 }, { type: 'RemoveServer', ip: '127.10.99.1', port: 80 }]);
  t.is(good.status, 200, JSON.stringify(good.body));
  const after = await pool(follower);
  t.deepEqual(after.servers.filter((s) => s.id.startsWith('127.10.99.')).map((s) => s.id), ['127.10.99.2:80']);
  // All three commands at one index: the record the batch created carries it.
  const created = after.servers.find((s) => s.id === '127.10.99.2:80') as unknown as { createdIndex: number };
  t.is(created.createdIndex, good.index);
  t.is((await weldr(t, ['servers', 'remove', '127.10.99.2:80'])).code, 0);
});

test.serial('settings get / set, stats of a member', async (t) => {
  const set = await weldr(t, ['settings', 'set', 'balancer=least-connections', 'healthCheck.path=/health', 'healthCheck.intervalMs=1000', 'healthCheck.timeoutMs=500']);
  t.is(set.code, 0, set.stderr);
  const got = await weldr(t, ['settings', 'get', 'balancer']);
  t.is(got.stdout, 'least-connections\n');
  const settings = (await pool(members[2]!)).settings as { healthCheck: object };
  t.deepEqual(parse(await weldr(t, ['settings', 'get', 'healthCheck', '--json'])), settings.healthCheck);
  const refused = await weldr(t, ['settings', 'set', 'healthCheck.timeoutMs=5000']);
  t.is(refused.code, 4);
  t.regex(refused.stderr, /timeoutMs must be less than/);

  const stats = parse<{ nodeId: string; servers: { id: string; health: string }[] }>(await weldr(t, ['stats', '--json']));
  t.true(['n1', 'n2', 'n3'].includes(stats.nodeId));
  t.is(stats.servers.length, 2);
  const human = await weldr(t, ['stats']);
  t.regex(human.stdout, /^member n\d \((active|passive)\) at http:\/\/127\.0\.0\.1:\d+\n/);
});

interface MembersJson {
  clusterId: string | null;
  leaderId: string | null;
  members: { id: string; role: string; raftAddress?: string; adminAddress?: string; proxyAddress?: string; autoPromote?: boolean }[];
}

test.serial('member list / add / promote / remove against the real cluster: a learner that never caught up is not promoted (exit 4), then removed', async (t) => {
  const list = async (): Promise<MembersJson> => {
    const run = await weldr(t, ['member', 'list', '--json']);
    t.is(run.code, 0, run.stderr);
    return parse<MembersJson>(run);
  };
  const before = await list();
  t.deepEqual(before.members.map((m) => `${m.id}:${m.role}`).sort(), members.map((m) => `${m.id}:voter`).sort());
  t.truthy(before.clusterId);
  const table = await weldr(t, ['member', 'list']);
  t.is(table.code, 0, table.stderr);
  for (const m of members) t.regex(table.stdout, new RegExp(`^${m.id}\\s+voter`, 'm'));

  // A member that is never started: it stays a learner, the voters' quorum is unchanged.
  const [raft, admin, proxy] = [await reservedPort(), await reservedPort(), await reservedPort()];
  const addArgs = ['member', 'add', 'n9', '--raft', `127.0.0.1:${raft}`, '--admin', `127.0.0.1:${admin}`, '--proxy', `127.0.0.1:${proxy}`, '--no-auto-promote'];
  const added = await weldr(t, addArgs);
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /n9 added as a learner\. Start it on an empty data directory with --join http/);
  const again = await weldr(t, addArgs);
  t.is(again.code, 0, 'adding the same member with the same addresses is idempotent');
  t.regex(again.stdout, /already a member/);
  const clash = await weldr(t, ['member', 'add', 'n9', '--raft', `127.0.0.1:${admin}`, '--admin', `127.0.0.1:${raft}`]);
  t.is(clash.code, 4, 'the same id with other addresses is refused');
  t.like((await list()).members.find((m) => m.id === 'n9'), { role: 'learner', raftAddress: `127.0.0.1:${raft}`, autoPromote: false });

  // Its proxy address is a member's listener now: the pool refuses it as an origin.
  const loop = await weldr(t, ['servers', 'add', `127.0.0.1:${proxy}`]);
  t.is(loop.code, 4, loop.stdout);

  const promote = await weldr(t, ['member', 'promote', 'n9']);
  t.is(promote.code, 4, 'a learner that has not caught up is not promoted');
  t.regex(promote.stderr, /NOT_CAUGHT_UP|caught up/);

  const removed = await weldr(t, ['member', 'remove', 'n9', '--json']);
  t.is(removed.code, 0, removed.stderr);
  t.is(parse<{ removed: string }>(removed).removed, 'n9');
  t.deepEqual((await list()).members.map((m) => m.id).sort(), members.map((m) => m.id).sort());
  const usage = await weldr(t, ['member', 'add', 'n10']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /needs --raft/);
});

test.serial('cluster transfer moves the active role; status shows it', async (t) => {
  const before = await activeMember(t);
  const target = members.find((m) => m.id !== before)!.id;
  // A transfer can time out (504, exit 5) when a loaded machine delays the target: retried.
  const moved = await eventually('the transfer to succeed', async () => {
    const run = await weldr(t, ['cluster', 'transfer', '--to', target, '--json']);
    if (run.code === 0) return run;
    if (run.code !== 5) throw new Error(run.stderr);
    return undefined;
  });
  t.deepEqual(parse(moved), { leaderId: target });
  t.is(await activeMember(t), target);
  const bad = await weldr(t, ['cluster', 'transfer', '--to', 'n9']);
  t.is(bad.code, 4);
});

test.serial('export from the cluster → import into a fresh node reproduces the pool and settings exactly', async (t) => {
  const [a] = origins as [Origin];
  t.is((await weldr(t, ['servers', 'drain', `127.0.0.1:${a.port}`])).code, 0);
  const file = join(dir, 'pool.json');
  const exported = await weldr(t, ['servers', 'export', file]);
  t.is(exported.code, 0, exported.stderr);

  const fresh = await startNode(t, { id: 'fresh' });
  const imported = await runWeldr(t, ['servers', 'import', file, '--endpoints', fresh.adminUrl]);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stdout, /imported 2 servers .* in one atomic change/);
  const shape = (p: Awaited<ReturnType<typeof pool>>) => ({ settings: p.settings, servers: p.servers.map((s) => ({ id: s.id, weight: s.weight, draining: s.draining, healthCheck: s.healthCheck })).sort((x, y) => x.id.localeCompare(y.id)) });
  t.deepEqual(shape(await pool(fresh)), shape(await pool(members[0]!)));

  // A file with one bad entry changes nothing on the cluster.
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, '127.10.98.1:80\n127.10.98.2:80 weight=7\n127.10.98.3:80 weight=5000\n');
  const refused = await weldr(t, ['servers', 'import', bad]);
  t.is(refused.code, 2, 'weight out of range is caught in the file, before sending');
  const before = await pool(members[0]!);
  writeFileSync(bad, JSON.stringify({ format: 'weldr-pool/v1', servers: [{ ip: '127.10.98.1', port: 80 }, { ip: '127.10.98.2', port: 80, healthCheck: { intervalMs: 5 } }] }));
  const refusedByCluster = await weldr(t, ['servers', 'import', bad]);
  t.is(refusedByCluster.code, 4, refusedByCluster.stderr);
  t.regex(refusedByCluster.stderr, /127\.10\.98\.2:80: .*intervalMs/);
  t.deepEqual((await pool(members[0]!)).servers, before.servers);
});

test.serial('exit codes: 3 when no endpoint answers, 2 for bad usage (nothing sent)', async (t) => {
  const closed = `http://127.0.0.1:${await reservedPort()}`;
  const down = await runWeldr(t, ['servers', 'list', '--endpoints', closed]);
  t.is(down.code, 3);
  t.regex(down.stderr, /cannot reach .*connection refused/);
  t.regex(down.stderr, /is weldr running there\?/);
  const downJson = await runWeldr(t, ['cluster', 'status', '--json', '--endpoints', closed]);
  t.is(downJson.code, 3);
  t.like(JSON.parse(downJson.stdout), { error: { exitCode: 3 } });
  const usage = await weldr(t, ['servers', 'add', 'not-an-address']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /needs a port/);
});
