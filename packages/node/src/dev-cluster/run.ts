// `weldr dev-cluster` (what `npm start` runs): a three-node cluster and two origins on
// loopback, for trying weldr out and for demos. It starts `weldr test-server` origins and
// `weldr start` members as child processes, registers the origins through the admin API
// (one atomic batch, idempotent, so a restart on the same data changes nothing), prints
// who is active and what to try, and on SIGINT/SIGTERM stops every child it started by
// PID. Data and logs stay in --data (./data) and are reused by the next run.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { makeDirectorySync } from '@weldr/store';
import { join } from 'node:path';
import { AdminClient } from '../ctl/client.js';
import { CtlError } from '../ctl/errors.js';
import { Child } from './child.js';
import { DEFAULT_ADMIN_PORTS, type DevLayout } from './layout.js';

/** Bounds: generous, a loaded laptop or CI machine is slow to start six processes. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
/** A second signal this long after the first means "hurry": SIGKILL what is left. */
const HURRY_AFTER_MS = 1_000;
/** Members drain for at most this long on Ctrl-C (the default 10 s is for production). */
const MEMBER_SHUTDOWN_TIMEOUT = '2s';
/** How often, under `npm start`, it checks that npm is still its parent (watchNpmParent). */
const PARENT_CHECK_MS = 500;
/** A member that dies (a kill drill, a crash) is started again after this long, as systemd's Restart=on-failure would. */
const RESTART_DELAY_MS = 500;
/** …but not more often than this many times a minute (a member that cannot start at all). */
const MAX_RESTARTS_PER_MINUTE = 10;

export interface DevClusterOutput {
  out(text: string): void;
}

/** The members' shared secret: kept in the data directory so a restart uses the same one. */
function clusterToken(dataRoot: string): string {
  const fromEnv = process.env['WELDR_CLUSTER_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const file = join(dataRoot, 'cluster-token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const token = randomBytes(24).toString('base64url');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return token;
  }
}

/** Runs until a signal; returns the exit code. */
export async function runDevCluster(layout: DevLayout, io: DevClusterOutput): Promise<number> {
  makeDirectorySync(layout.dataRoot);
  const children: Child[] = [];
  const pidFile = join(layout.dataRoot, 'dev-cluster.pids');
  let stopping = false;
  let firstSignalAt = 0;
  let resolveSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (resolveSignal = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!stopping) {
      stopping = true;
      firstSignalAt = Date.now();
      resolveSignal(signal);
      return;
    }
    // npm forwards the terminal's SIGINT too: a duplicate right away is not a second request.
    if (Date.now() - firstSignalAt < HURRY_AFTER_MS) return;
    io.out('second signal: killing what is left\n');
    for (const c of children) c.signal('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const unwatch = watchNpmParent(() => {
    if (stopping) return;
    io.out('npm has exited: stopping the dev cluster\n');
    onSignal('SIGTERM');
  });
  const recordPids = (): void => writeFileSync(pidFile, JSON.stringify(children.map((c) => ({ name: c.name, pid: c.pid }))) + '\n');

  let code = 0;
  try {
    const ready = startAll(layout, children, recordPids);
    const outcome = await Promise.race([ready, signalled.then(() => 'signal' as const)]);
    if (outcome !== 'signal') {
      io.out(banner(layout, await describe(layout, outcome)));
      const memberNames = new Set(layout.members.map((m) => m.id));
      const restarts: number[] = [];
      const watch = (c: Child): void => {
        void c.exited.then((exit) => {
          if (stopping) return;
          // A member killed by a signal or crashed (exit 1) is restarted, as a supervisor
          // would (systemd Restart=on-failure): `weldr drill --kind kill` relies on it.
          const crashed = exit.signal !== null || exit.code === 1;
          // Its peers told it that its data directory is not the one they know (emptied or
          // replaced while they kept theirs): restarting cannot help, so say what can.
          const lost = c.logged('state_lost');
          const now = Date.now();
          while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
          if (!memberNames.has(c.name) || !crashed || lost || restarts.length >= MAX_RESTARTS_PER_MINUTE) {
            io.out(`${c.name} exited (${exit.signal ?? `code ${exit.code}`}); its log: ${c.logFile}\n`);
            if (exit.signal === null && exit.code !== 0) io.out(`  ${c.failure()}\n`);
            if (lost) {
              io.out(
                `  ${c.name} is not restarted: its data directory is not the one the other members know. To start the dev cluster afresh, ` +
                  `stop it (Ctrl-C) and remove ${layout.dataRoot}; to keep the pool, rejoin ${c.name} (docs/operations.md, "Rejoin after data loss")\n`,
              );
            }
            return;
          }
          restarts.push(now);
          io.out(`${c.name} exited (${exit.signal ?? `code ${exit.code}`}); restarting it in ${RESTART_DELAY_MS} ms\n`);
          setTimeout(() => {
            if (stopping) return;
            const again = new Child(c.name, c.args, c.logFile, c.env);
            children[children.indexOf(c)] = again;
            recordPids();
            watch(again);
          }, RESTART_DELAY_MS);
        });
      };
      for (const c of children) watch(c);
      await signalled;
    } else {
      ready.catch(() => undefined);
    }
  } catch (err) {
    io.out(`weldr dev-cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    code = 1;
  }
  stopping = true;
  io.out('stopping…\n');
  await stopAll(children);
  rmSync(pidFile, { force: true });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  unwatch();
  io.out('stopped\n');
  return code;
}

/**
 * Under `npm start` npm is the parent, and npm killed by its PID (a script's `kill`,
 * `timeout`, a CI harness) exits without passing the signal on: the cluster would run
 * on, orphaned, holding its ports, and the next `npm start` would fail on them. So when
 * run by npm (npm_lifecycle_event is set), `onGone` is called once the parent changes.
 * npm runs a script through `sh -c`, and dash (Debian's sh) waits for its command
 * instead of exec'ing it: the parent is then that shell, which outlives npm (npm sent
 * SIGINT or SIGKILL: dash defers SIGINT while its command runs) — so when the parent is
 * a shell, the shell's own parent is watched too (Linux: /proc). `weldr dev-cluster`
 * run directly keeps its own lifetime (nohup, a supervisor). Ctrl-C reaches the whole
 * process group, so it stops as before.
 */
function watchNpmParent(onGone: () => void): () => void {
  if (process.env['npm_lifecycle_event'] === undefined) return () => undefined;
  const parent = process.ppid;
  const shellsParent = SHELLS.has(processName(parent) ?? '') ? parentOf(parent) : undefined;
  const timer = setInterval(() => {
    if (process.ppid !== parent || (shellsParent !== undefined && parentOf(parent) !== shellsParent)) onGone();
  }, PARENT_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** What npm's script shell can be (its `script-shell`, /bin/sh by default). */
const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'zsh', 'busybox']);

/** A process's name (/proc/PID/comm), or undefined where there is no /proc. */
export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A process's parent PID (/proc/PID/stat), or undefined (no /proc, or it is gone). */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the origins and members, registers the origins; resolves with the origins' ports. */
async function startAll(layout: DevLayout, children: Child[], recordPids: () => void): Promise<number[]> {
  const token = clusterToken(layout.dataRoot);
  // Flags win over the environment, but a WELDR_CONFIG file could still set a memory
  // store or other ports: the dev cluster's members take nothing from it.
  const env = { ...process.env, WELDR_CONFIG: undefined, WELDR_CLUSTER_TOKEN: token };
  const origins = layout.origins.map((o) => {
    const child = new Child(o.id, ['test-server', '--host', layout.host, '--port', String(o.port), '--id', o.id], o.logFile, env);
    children.push(child);
    return child;
  });
  const peers = layout.members.map((m) => `${m.id}=${layout.host}:${m.raftPort}`).join(',');
  const members = layout.members.map((m) => {
    const child = new Child(
      m.id,
      [
        'start',
        '--id', m.id,
        '--listen', `${layout.host}:${m.proxyPort}`,
        '--admin', `${layout.host}:${m.adminPort}`,
        '--raft', `${layout.host}:${m.raftPort}`,
        '--peers', peers,
        '--data', m.dataDir,
        '--store', 'level',
        '--shutdown-timeout', MEMBER_SHUTDOWN_TIMEOUT,
        // Loopback only: `weldr drill --kind step-down|isolate` works out of the box.
        '--fault-injection', 'on',
      ],
      m.logFile,
      env,
    );
    children.push(child);
    return child;
  });
  recordPids();
  const originPorts = await Promise.all(origins.map(async (c) => Number((await c.waitForLine('listening line', (l) => l['event'] === 'listening', START_TIMEOUT_MS))['port'])));
  await Promise.all(members.map((c) => c.waitForLine('"started" log line', (l) => l['event'] === 'started', START_TIMEOUT_MS)));
  if (originPorts.length === 0) return originPorts;
  // Through the admin API like any client: the first write waits for the first leader
  // (the client retries 503 NOT_LEADER), and re-adding on a restart changes nothing.
  const client = new AdminClient({ endpoints: layout.members.map((m) => `http://${layout.host}:${m.adminPort}`), token: process.env['WELDR_ADMIN_TOKEN'] || undefined, cacert: undefined, timeoutMs: START_TIMEOUT_MS });
  try {
    await client.call('POST', '/servers/batch', { body: { commands: originPorts.map((port) => ({ type: 'AddServer', ip: layout.host, port })) } });
  } catch (err) {
    if (err instanceof CtlError) throw new Error(`could not register the origins: ${err.message}`);
    throw err;
  } finally {
    await client.close();
  }
  return originPorts;
}

interface Described {
  readonly active: string | undefined;
  readonly originPorts: readonly number[];
  /** /cluster names every member's admin address: one endpoint is enough for the CLI. */
  readonly membersKnowAdmin: boolean;
}

/** Who is active (bounded wait: an election may still be settling) and where the origins listen. */
async function describe(layout: DevLayout, originPorts: readonly number[]): Promise<Described> {
  const client = new AdminClient({ endpoints: layout.members.map((m) => `http://${layout.host}:${m.adminPort}`), token: undefined, cacert: undefined, timeoutMs: 10_000 });
  let active: string | undefined;
  let membersKnowAdmin = false;
  try {
    const deadline = Date.now() + 10_000;
    while (active === undefined && Date.now() < deadline) {
      for (const m of layout.members) {
        try {
          const view = await client.get<{ nodeId: string; role: string; members: { adminAddress?: unknown }[] }>('/cluster', { only: `http://${layout.host}:${m.adminPort}` });
          if (view.body.role === 'active') active = view.body.nodeId;
          if (view.body.members.every((x) => typeof x.adminAddress === 'string')) membersKnowAdmin = true;
        } catch {
          // that member is not answering: look at the others
        }
      }
      if (active === undefined) await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.close();
  }
  return { active, originPorts, membersKnowAdmin };
}

function banner(layout: DevLayout, d: Described): string {
  // The CLI's default endpoint is 127.0.0.1:8687; list them all unless that one suffices.
  const oneIsEnough = d.membersKnowAdmin && layout.members[0]?.adminPort === DEFAULT_ADMIN_PORTS[0];
  const endpoints = oneIsEnough ? '' : ` --endpoints ${layout.members.map((m) => `${layout.host}:${m.adminPort}`).join(',')}`;
  const first = layout.members[0]!;
  const rows = layout.members.map(
    (m) =>
      `  ${m.id}  proxy http://${layout.host}:${m.proxyPort}  admin http://${layout.host}:${m.adminPort}  raft ${layout.host}:${m.raftPort}  data ${m.dataDir}${m.id === d.active ? '  ← active' : ''}`,
  );
  const origins = layout.origins.map((o, i) => `${o.id} on ${layout.host}:${d.originPorts[i]}`).join(', ');
  return `
weldr dev cluster is up: ${layout.members.length} members${d.active === undefined ? ' (no member active yet)' : `, ${d.active} is active`}
${rows.join('\n')}
  origins: ${origins === '' ? 'none' : origins}; logs: ${join(layout.dataRoot, '<name>.log')}

Try, in another terminal:
  curl ${layout.host}:${first.proxyPort}/
  npx weldr cluster status${endpoints}
  npx weldr servers list${endpoints}
  npx weldr cluster transfer${endpoints}      # move the active role to another member
  npx weldr drill --kind kill --rounds 3${endpoints}   # a failover drill, with a report
Ctrl-C stops everything (the data in ${layout.dataRoot} is kept for the next run).
`;
}

async function stopAll(children: readonly Child[]): Promise<void> {
  for (const c of children) c.signal('SIGTERM');
  const timer = setTimeout(() => {
    for (const c of children) c.signal('SIGKILL');
  }, STOP_TIMEOUT_MS);
  await Promise.all(children.map((c) => c.exited));
  clearTimeout(timer);
}
