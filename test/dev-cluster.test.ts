// `weldr dev-cluster` (what `npm start` runs) on reserved ports: three members and two
// origins come up, `weldr cluster status` shows three members with one active, the
// origins are routed to, SIGINT stops every child it started, and a second run reuses
// the data directory.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { makeTempDir } from './helpers/node.js';
import { reservedPort } from './helpers/ports.js';
import { runWeldr, spawnWeldr, type RunningProcess } from './helpers/process.js';
import { REPO_ROOT, WELDR_COMMAND } from './helpers/repo-root.js';
import { eventually, within } from './helpers/wait.js';

interface Ports {
  proxy: number[];
  admin: number[];
  raft: number[];
  origin: number[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function childPids(dir: string): { name: string; pid: number }[] {
  return JSON.parse(readFileSync(join(dir, 'dev-cluster.pids'), 'utf8')) as { name: string; pid: number }[];
}

/** Three members' proxy, admin and Raft ports and two origins', reserved for this test. */
async function reservePorts(): Promise<Ports> {
  const ports: Ports = { proxy: [], admin: [], raft: [], origin: [] };
  for (let i = 0; i < 3; i++) {
    ports.proxy.push(await reservedPort());
    ports.admin.push(await reservedPort());
    ports.raft.push(await reservedPort());
  }
  ports.origin.push(await reservedPort(), await reservedPort());
  return ports;
}

async function bringUp(t: ExecutionContext, dir: string, ports: Ports): Promise<{ proc: RunningProcess; pids: number[] }> {
  const proc = spawnWeldr(t, 'dev-cluster', [
    'dev-cluster',
    '--data', dir,
    '--proxy-ports', ports.proxy.join(','),
    '--admin-ports', ports.admin.join(','),
    '--raft-ports', ports.raft.join(','),
    '--origin-ports', ports.origin.join(','),
  ], { WELDR_CLUSTER_TOKEN: undefined, WELDR_ADMIN_TOKEN: undefined });
  // Children run in their own process groups: if the test fails before SIGINT, kill them too.
  t.teardown(() => {
    if (!existsSync(join(dir, 'dev-cluster.pids'))) return;
    for (const { pid } of childPids(dir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await eventually('the dev cluster banner', () => {
    if (!proc.running) throw new Error(`dev-cluster exited: ${proc.stdout}${proc.stderr}`);
    return proc.stdout.includes('weldr dev cluster is up') ? true : undefined;
  }, 90_000, 100);
  return { proc, pids: childPids(dir).map((c) => c.pid) };
}

async function stop(t: ExecutionContext, proc: RunningProcess, pids: number[], signal: NodeJS.Signals): Promise<void> {
  proc.signal(signal);
  const exit = await within('dev-cluster to stop', proc.exited, 30_000);
  t.is(exit.code, 0, proc.stdout + proc.stderr);
  t.regex(proc.stdout, /stopping…\nstopped\n$/);
  t.deepEqual(pids.filter(alive), [], 'every child it started is gone');
}

test('dev-cluster: three members with one active, origins registered and routed; SIGINT stops every child; a second run reuses ./data', async (t) => {
  const dir = join(makeTempDir(t, 'weldr-dev-'), 'data');
  const ports = await reservePorts();
  const endpoints = ports.admin.map((p) => `127.0.0.1:${p}`).join(',');

  const first = await bringUp(t, dir, ports);
  t.is(first.pids.length, 5);
  t.true(first.pids.every(alive));
  t.regex(first.proc.stdout, /, n\d is active\n/);
  t.regex(first.proc.stdout, new RegExp(`weldr cluster status --endpoints ${endpoints.replace(/\./g, '\\.')}`));

  const status = await eventually('one active member', async () => {
    const run = await runWeldr(t, ['cluster', 'status', '--json', '--endpoints', endpoints]);
    if (run.code !== 0) throw new Error(run.stderr);
    const report = JSON.parse(run.stdout) as { members: { id: string; active: boolean | null }[] };
    return report.members.filter((m) => m.active === true).length === 1 ? report : undefined;
  });
  t.deepEqual(status.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);

  const listed = await runWeldr(t, ['servers', 'list', '--json', '--endpoints', endpoints]);
  t.deepEqual((JSON.parse(listed.stdout) as { port: number }[]).map((s) => s.port).sort(), [...ports.origin].sort());
  const body = await eventually('the proxy to route to an origin', async () => {
    const r = await request(`http://127.0.0.1:${ports.proxy[0]}/`);
    const text = await r.body.text();
    return r.statusCode === 200 ? text : undefined;
  });
  t.regex(body, /^hello from origin-[12]/);

  await stop(t, first.proc, first.pids, 'SIGINT');
  t.false(existsSync(join(dir, 'dev-cluster.pids')));
  for (const id of ['n1', 'n2', 'n3']) t.true(existsSync(join(dir, id)), `${id}'s data is kept`);

  // Again on the same data: the same pool (registering the origins again changed nothing).
  const second = await bringUp(t, dir, ports);
  const again = await runWeldr(t, ['servers', 'list', '--json', '--endpoints', endpoints]);
  const servers = JSON.parse(again.stdout) as { port: number; createdIndex: number }[];
  t.deepEqual(servers.map((s) => s.port).sort(), [...ports.origin].sort());
  t.is(readFileSync(join(dir, 'n1.log'), 'utf8').split('\n').filter((l) => l.includes('"event":"starting"')).length, 2, 'n1 started twice on one data directory');
  await stop(t, second.proc, second.pids, 'SIGTERM');
});

test('dev-cluster: SIGKILL of dev-cluster itself (which it cannot catch) still stops every child: their stdin pipe closes and each shuts down gracefully', async (t) => {
  const dir = join(makeTempDir(t, 'weldr-dev-kill-'), 'data');
  const ports = await reservePorts();
  const up = await bringUp(t, dir, ports);
  t.is(up.pids.length, 5);
  t.true(up.pids.every(alive));
  up.proc.signal('SIGKILL');
  await within('dev-cluster to die', up.proc.exited, 30_000);
  // Graceful: each member hands over or drains (2 s in dev-cluster) before it exits.
  await eventually('every child to stop by itself', () => (up.pids.some(alive) ? undefined : true), 30_000, 100);
  t.deepEqual(up.pids.filter(alive), []);
  // (Their last log lines are lost: dev-cluster, which copied their output into the log
  // files, is gone. What the test can see is that nobody is left running.)
});

// rm -rf data/n2, then npm start: the other members know n2 by its old incarnation and
// refuse the new, empty directory (state_lost, exit 1). Restarting it cannot help; it was
// restarted ten times, each refused, and the terminal said only "n2 exited (code 1)".
test('dev-cluster: a member whose data directory was emptied is not restarted in a loop; the terminal says why and what to do', async (t) => {
  const dir = join(makeTempDir(t, 'weldr-dev-wiped-'), 'data');
  const ports = await reservePorts();
  const first = await bringUp(t, dir, ports);
  await stop(t, first.proc, first.pids, 'SIGINT');
  rmSync(join(dir, 'n2'), { recursive: true, force: true });
  const proc = spawnWeldr(t, 'dev-cluster again', [
    'dev-cluster', '--data', dir,
    '--proxy-ports', ports.proxy.join(','), '--admin-ports', ports.admin.join(','),
    '--raft-ports', ports.raft.join(','), '--origin-ports', ports.origin.join(','),
  ], { WELDR_CLUSTER_TOKEN: undefined, WELDR_ADMIN_TOKEN: undefined });
  t.teardown(() => {
    if (!existsSync(join(dir, 'dev-cluster.pids'))) return;
    for (const { pid } of childPids(dir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  // Refused after the banner (not restarted), or during the start (dev-cluster gives up).
  await eventually('n2 refused, and said so', () => (/n2 is not restarted|n2 exited before/.test(proc.stdout) || !proc.running ? true : undefined), 90_000, 100);
  t.regex(proc.stdout, /state was lost or replaced/, 'the refusal itself is shown');
  await new Promise((r) => setTimeout(r, 2000));
  t.true((proc.stdout.match(/n2 exited/g) ?? []).length <= 1, proc.stdout);
  t.notRegex(proc.stdout, /restarting it/);
  if (proc.running) {
    proc.signal('SIGINT');
    await within('dev-cluster to stop', proc.exited, 30_000);
  }
});

// npm runs the script through `sh -c`; Debian's dash waits for its command rather than
// exec it, and outlives npm killed with SIGKILL or SIGINT (it defers SIGINT while its
// command runs): dev-cluster's parent is then that shell, still alive. Both shapes.
for (const viaShell of [false, true]) test(`npm start: npm killed by its PID (it passes no signal on) still stops the dev cluster and every child, instead of leaving them running on its ports${viaShell ? ' — with the sh -c npm runs scripts through in between' : ''}`, async (t) => {
  const dir = join(makeTempDir(t, 'weldr-dev-npm-'), 'data');
  const ports = await reservePorts();
  const pidFile = join(dir, '..', 'dev-cluster.pid');
  // A stand-in for npm: it runs dev-cluster as `npm start` does (npm_lifecycle_event set,
  // stdio inherited), writes its PID down, and stays until it is killed.
  const args = [
    ...WELDR_COMMAND, 'dev-cluster', '--data', dir,
    '--proxy-ports', ports.proxy.join(','), '--admin-ports', ports.admin.join(','),
    '--raft-ports', ports.raft.join(','), '--origin-ports', ports.origin.join(','),
  ];
  const script = `
    const { spawn } = require('node:child_process');
    const { writeFileSync } = require('node:fs');
    const c = ${viaShell}
      ? spawn('sh', ['-c', ${JSON.stringify([process.execPath, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' '))}], { stdio: 'inherit', env: { ...process.env, npm_lifecycle_event: 'start' } })
      : spawn(process.execPath, ${JSON.stringify(args)}, { stdio: 'inherit', env: { ...process.env, npm_lifecycle_event: 'start' } });
    writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));
    setInterval(() => {}, 1000);`;
  const env = { ...process.env };
  delete env['WELDR_CLUSTER_TOKEN'];
  delete env['WELDR_ADMIN_TOKEN'];
  const npm = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: 'ignore', env });
  let pids: number[] = [];
  t.teardown(() => {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const devCluster = await eventually('dev-cluster to start', () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined), 30_000, 100);
  pids.push(devCluster);
  await eventually('the members and origins', async () => {
    if (!existsSync(join(dir, 'dev-cluster.pids'))) return undefined;
    const children = childPids(dir);
    if (children.length < 5) return undefined;
    pids = [devCluster, ...children.map((c) => c.pid)];
    const r = await request(`http://127.0.0.1:${ports.admin[0]}/health`).catch(() => null);
    if (r === null) return undefined;
    await r.body.text();
    return r.statusCode === 200 ? true : undefined;
  }, 90_000, 100);
  t.true(pids.every(alive));
  npm.kill('SIGKILL');
  await eventually('dev-cluster and every child to stop', () => (pids.some(alive) ? undefined : true), 30_000, 100);
  t.deepEqual(pids.filter(alive), []);
  t.false(existsSync(join(dir, 'dev-cluster.pids')), 'it stopped as on a signal: the PID file is removed');
});

// The real `npm start`, stopped by a SIGINT (or SIGTERM) sent to npm's PID alone — what
// a script or harness does, where the terminal's Ctrl-C reaches the whole group. npm
// forwards it to the script's process only; without `exec` in the script that was
// `sh -c`, and dash defers SIGINT while its command runs: nothing stopped, npm waited
// for ever. With `exec node …` the script's process is dev-cluster itself.
for (const signal of ['SIGINT', 'SIGTERM'] as const) test(`npm start: ${signal} to npm's PID stops the dev cluster and every child, and npm exits`, async (t) => {
  const dir = join(makeTempDir(t, 'weldr-dev-npmreal-'), 'data');
  const ports = await reservePorts();
  const env = { ...process.env };
  delete env['WELDR_CLUSTER_TOKEN'];
  delete env['WELDR_ADMIN_TOKEN'];
  const npm = spawn('npm', [
    'start', '--silent', '--', '--data', dir,
    '--proxy-ports', ports.proxy.join(','), '--admin-ports', ports.admin.join(','),
    '--raft-ports', ports.raft.join(','), '--origin-ports', ports.origin.join(','),
  ], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  npm.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  let pids: number[] = [];
  t.teardown(() => {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await eventually('the dev cluster banner', () => (out.includes('weldr dev cluster is up') ? true : undefined), 90_000, 100);
  pids = childPids(dir).map((c) => c.pid);
  t.true(pids.every(alive));
  npm.kill(signal);
  await within('npm to exit', exited, 30_000);
  t.deepEqual(pids.filter(alive), [], out);
  t.regex(out, /stopping…\nstopped\n/);
});
