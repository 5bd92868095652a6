// `weldr drill` end to end against `weldr dev-cluster` (what `npm start` runs) on
// reserved ports: every kind of fault, a threshold that is missed (exit 6), Ctrl-C in the
// middle of a pause (exit 130, every member running and the cluster healthy afterwards),
// and refusals (an unhealthy cluster, fault injection off). The drill's own figures are
// reported, not asserted: only that each round found a new active node and that two
// nodes were never active at once.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { startCluster } from './helpers/cluster.js';
import { makeTempDir } from './helpers/node.js';
import { reservedPort } from './helpers/ports.js';
import { runWeldr, spawnWeldr, type RunningProcess } from './helpers/process.js';
import { eventually, TIME_SCALE, within } from './helpers/wait.js';

interface DevCluster {
  readonly proc: RunningProcess;
  readonly dir: string;
  readonly endpoints: string;
  readonly admin: readonly number[];
}

interface Report {
  kind: string;
  ok: boolean;
  interrupted: boolean;
  rounds: { round: number; target: string; newActive: string | null; failoverMs: number | null; servedMs: number | null; writeMs: number | null; twoActive: number; error?: string }[];
  summary: { twoActive: number; samples: number; failoverMs: { p50: number | null; max: number | null }; requests: { total: number }; writes: { total: number } };
  thresholds: { name: string; ok: boolean; actual: number | null }[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidsOf = (dir: string): { name: string; pid: number }[] => JSON.parse(readFileSync(join(dir, 'dev-cluster.pids'), 'utf8')) as { name: string; pid: number }[];
/** Process state from /proc: 'T' is stopped (SIGSTOP). */
const stateOf = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').charAt(0);

let cluster: DevCluster | undefined;

async function devCluster(t: ExecutionContext): Promise<DevCluster> {
  const dir = join(makeTempDir(t, 'weldr-drill-'), 'data');
  const ports = { proxy: [] as number[], admin: [] as number[], raft: [] as number[] };
  for (let i = 0; i < 3; i++) {
    ports.proxy.push(await reservedPort());
    ports.admin.push(await reservedPort());
    ports.raft.push(await reservedPort());
  }
  const proc = spawnWeldr(t, 'dev-cluster', [
    'dev-cluster', '--data', dir,
    '--proxy-ports', ports.proxy.join(','), '--admin-ports', ports.admin.join(','), '--raft-ports', ports.raft.join(','),
    '--origin-ports', '0,0',
  ], {
    WELDR_CLUSTER_TOKEN: undefined,
    WELDR_ADMIN_TOKEN: undefined,
    // The members inherit these: the defaults (50 ms, 500 ms) scaled like every other bound
    // of the e2e suite, so that a busy CI host (two test files at once, each member with its
    // proxy workers) stalling a process for a few hundred ms does not read as a failover.
    WELDR_RAFT_HEARTBEAT: `${Math.round(50 * TIME_SCALE)}ms`,
    WELDR_RAFT_ELECTION_TIMEOUT: `${Math.round(500 * TIME_SCALE)}ms`,
  });
  t.teardown(() => {
    if (existsSync(join(dir, 'dev-cluster.pids'))) for (const { pid } of pidsOf(dir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await eventually('the dev cluster banner', () => {
    if (!proc.running) throw new Error(`dev-cluster exited: ${proc.stdout}${proc.stderr}`);
    return proc.stdout.includes('weldr dev cluster is up') ? true : undefined;
  }, 90_000, 100);
  return { proc, dir, endpoints: ports.admin.map((p) => `127.0.0.1:${p}`).join(','), admin: ports.admin };
}

// One cluster for the file: the drills run one after another (test.serial). Its
// teardown (kill whatever is left by PID, remove the data) runs after the last test.
const fileTeardowns: (() => void | Promise<void>)[] = [];

test.before(async (t) => {
  cluster = await devCluster({ log: (...v: unknown[]) => t.log(...v), teardown: (fn: () => void | Promise<void>) => fileTeardowns.push(fn) } as unknown as ExecutionContext);
});

test.after.always(async () => {
  if (cluster !== undefined && cluster.proc.running) {
    cluster.proc.signal('SIGINT');
    await within('dev-cluster to stop', cluster.proc.exited, 30_000).catch(() => cluster!.proc.signal('SIGKILL'));
  }
  for (const fn of fileTeardowns.reverse()) await fn();
});

/** `weldr drill --kind KIND …` to completion: its exit code, parsed --json report and progress (stderr). */
async function drill(t: ExecutionContext, kind: string, args: readonly string[], timeoutMs = 240_000): Promise<{ code: number | null; report: Report | undefined; stderr: string; stdout: string }> {
  const c = cluster!;
  const pids = kind === 'kill' || kind === 'pause' ? ['--pids', join(c.dir, 'dev-cluster.pids')] : [];
  const argv = ['drill', '--kind', kind, '--endpoints', c.endpoints, '--json', '--interval', '500ms', '--round-timeout', '60s', '--heal-timeout', '120s', ...pids, ...args];
  const run = await runWeldr(t, argv, {}, timeoutMs);
  let report: Report | undefined;
  try {
    report = JSON.parse(run.stdout) as Report;
  } catch {
    report = undefined;
  }
  t.log(`weldr ${argv.slice(0, 3).join(' ')} ${args.join(' ')} → exit ${run.code}`);
  for (const line of run.stderr.trim().split('\n')) t.log(`  ${line}`);
  if (run.code !== 0) logMemberRoles(t, c.dir);
  return { code: run.code, report, stderr: run.stderr, stdout: run.stdout };
}

/** After a failed drill: every member's role changes and admin errors from its log, to tell a slow host from a bug. */
function logMemberRoles(t: ExecutionContext, dir: string): void {
  for (const name of ['n1', 'n2', 'n3']) {
    let text: string;
    try {
      text = readFileSync(join(dir, `${name}.log`), 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n').filter((l) => /"event":"(raft_role|role_changed|leadership_[a-z_]+|raft_fast_failover)"|transfer-leadership|"level":[45]0/.test(l));
    t.log(`${name}.log (role changes, transfers, warnings; last 40):`);
    for (const l of lines.slice(-40)) t.log(`  ${l.slice(0, 400)}`);
  }
}

/** Exactly one member answers /ready 200 and every member answers. */
async function healthy(c: DevCluster): Promise<string> {
  return eventually('one active member, all answering', async () => {
    const states = await Promise.all(
      c.admin.map(async (port) => {
        const r = await request(`http://127.0.0.1:${port}/ready`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await r.body.dump();
        return r.statusCode;
      }),
    );
    const active = states.filter((s) => s === 200).length;
    return active === 1 && states.every((s) => s === 200 || s === 503) ? String(states.indexOf(200) + 1) : undefined;
  }, 60_000, 100);
}

for (const kind of ['transfer', 'step-down', 'isolate', 'kill', 'pause'] as const) {
  test.serial(`drill --kind ${kind}: every round finds a new active node, never two at once`, async (t) => {
    const rounds = 2;
    const { code, report, stdout, stderr } = await drill(t, kind, ['--rounds', String(rounds), '--fault-duration', '2s', '--seed', '12']);
    t.truthy(report, `--json report on stdout: ${stdout}${stderr}`);
    t.is(code, 0, stderr);
    t.true(report!.ok);
    t.is(report!.kind, kind);
    t.is(report!.rounds.length, rounds);
    for (const r of report!.rounds) {
      t.not(r.newActive, null, `round ${r.round}`);
      if (kind !== 'step-down') t.not(r.newActive, r.target, `round ${r.round}: the active role moved`);
      t.is(typeof r.failoverMs, 'number');
      t.is(typeof r.servedMs, 'number');
      t.is(typeof r.writeMs, 'number');
      t.is(r.twoActive, 0);
    }
    t.is(report!.summary.twoActive, 0, 'never two active nodes');
    t.true(report!.summary.samples > 0 && report!.summary.requests.total > 0 && report!.summary.writes.total > 0);
    t.regex(stderr, new RegExp(`round ${rounds}/${rounds}: ${kind} `), 'progress while it runs');
    await healthy(cluster!);
    for (const { name, pid } of pidsOf(cluster!.dir)) t.not(stateOf(pid), 'T', `${name} is not left stopped`);
  });
}

test.serial('a missed threshold: the report says so and the exit status is 6; the table is the default output', async (t) => {
  const c = cluster!;
  const run = await runWeldr(t, ['drill', '--endpoints', c.endpoints, '--kind', 'transfer', '--rounds', '1', '--interval', '200ms', '--max-failover', '1ms', '--quiet'], {}, 120_000);
  t.is(run.code, 6, run.stderr);
  t.regex(run.stdout, /^ROUND +FAULT +NEW ACTIVE/);
  t.regex(run.stdout, /--max-failover 1ms: MISSED \(worst round \d+ms\)/);
  t.regex(run.stdout, /result: FAILED\n$/);
  t.is(run.stderr, '', '--quiet: no progress');
  await healthy(c);
});

test.serial('Ctrl-C in the middle of a pause: the member is continued, the cluster is healthy, exit 130 with a partial report', async (t) => {
  const c = cluster!;
  const proc = spawnWeldr(t, 'weldr drill', ['drill', '--endpoints', c.endpoints, '--kind', 'pause', '--rounds', '5', '--interval', '200ms', '--fault-duration', '60s', '--pids', join(c.dir, 'dev-cluster.pids'), '--json']);
  // Wait until one member is really stopped by the drill.
  const paused = await eventually('a member paused by the drill', () => pidsOf(c.dir).find(({ pid }) => alive(pid) && stateOf(pid) === 'T'), 60_000, 20);
  t.log(`${paused.name} (pid ${paused.pid}) is paused; sending SIGINT to the drill`);
  proc.signal('SIGINT');
  const exit = await within('the interrupted drill to exit', proc.exited, 120_000);
  t.is(exit.code, 130, proc.stderr);
  t.regex(proc.stderr, /SIGINT: healing what the drill injected, then stopping/);
  const report = JSON.parse(proc.stdout) as Report;
  t.true(report.interrupted);
  t.false(report.ok);
  t.is(report.summary.twoActive, 0);
  t.not(stateOf(paused.pid), 'T', 'the paused member was continued');
  for (const { pid } of pidsOf(c.dir)) t.true(alive(pid) && stateOf(pid) !== 'T');
  await healthy(c);
});

test.serial('the drill refuses to start on an unhealthy cluster (a member paused by someone else): exit 5, nothing injected', async (t) => {
  const c = cluster!;
  await healthy(c);
  const victim = pidsOf(c.dir).find((p) => p.name === 'n3')!;
  process.kill(victim.pid, 'SIGSTOP');
  try {
    const run = await runWeldr(t, ['drill', '--endpoints', c.endpoints, '--kind', 'step-down', '--rounds', '1', '--timeout', '3s'], {}, 60_000);
    // n3 cannot answer: either discovery (exit 4: no admin API answered for n3) or the health check (exit 5).
    t.true(run.code === 4 || run.code === 5, `${run.code}: ${run.stderr}`);
    t.regex(run.stderr, /weldr drill: (the cluster is not healthy|no admin API answered for n3)/);
    t.is(run.stdout, '');
  } finally {
    process.kill(victim.pid, 'SIGCONT');
  }
  await healthy(c);
});

test('a step-down drill on members started without fault injection is refused (exit 4) and names them', async (t) => {
  const members = await startCluster(t);
  const endpoints = members.map((m) => `127.0.0.1:${m.adminPort}`).join(',');
  await eventually('a leader', async () => {
    const r = await request(`${members[0]!.adminUrl}/cluster`);
    return ((await r.body.json()) as { leaderId: string | null }).leaderId ?? undefined;
  });
  const run = await runWeldr(t, ['drill', '--endpoints', endpoints, '--kind', 'isolate', '--rounds', '1'], {}, 60_000);
  t.is(run.code, 4, run.stderr);
  t.regex(run.stderr, /fault injection is off on n1, n2, n3/);
  t.regex(run.stderr, /--fault-injection on/);
  const direct = await request(`${members[0]!.adminUrl}/faults/isolate`, { method: 'POST', body: '{"durationMs":1000}', headers: { 'content-type': 'application/json' } });
  t.is(direct.statusCode, 403);
  t.like(await direct.body.json(), { error: { code: 'FAULT_INJECTION_DISABLED' } });
});
