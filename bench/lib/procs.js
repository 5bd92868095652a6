// Process helpers for the benchmark: start pinned processes, read their CPU time,
// wait for ports, stop them by PID. Every process started here is stopped here.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * Spawn `cmd args` with `opts.env` over this process's environment: the tail of its
 * output (stdout and stderr) is kept for error messages, its exit is awaited by stop().
 */
export function spawnProcess(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
    cwd: opts.cwd,
  });
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return {
    name,
    child,
    get pid() {
      return child.pid;
    },
    output: () => output,
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
  };
}

/** Spawn `cmd args` pinned to `cpus` (a taskset list such as "0" or "1"). */
export function startPinned(name, cpus, cmd, args, opts = {}) {
  // taskset execs the command, so the child's PID is the target's PID.
  return spawnProcess(name, 'taskset', ['-c', cpus, cmd, ...args], opts);
}

/** CPU seconds (user + system, all threads) consumed so far by `pid`. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces; fields resume after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/**
 * CPU seconds used so far by this process's children that have been waited for (wrk, run
 * with execFileSync): cutime + cstime of /proc/self/stat.
 */
export function childrenCpuSeconds() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

/** The pids of `pid` and all its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (children !== '') out.push(...children.split(' ').map(Number));
      } catch {
        // gone
      }
    }
  }
  return out;
}

/** CPU seconds of `pid` and its descendants (a node with workers, nginx with its workers). */
export function treeCpuSeconds(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += cpuSeconds(p);
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

/** Resident set size (KiB) of each process of the tree. */
export function treeRssKiB(pid) {
  return processTree(pid).map((p) => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      return { pid: p, rssKiB: m ? Number(m[1]) : 0 };
    } catch {
      return { pid: p, rssKiB: 0 };
    }
  });
}

/**
 * The socket inodes open in the process tree (each a TCP connection or listener). Two
 * sets taken around a measurement tell how many connections it opened that are still
 * open at its end: with keep-alive working, none but the client's.
 */
export function treeSockets(pid) {
  const out = new Set();
  for (const p of processTree(pid)) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${p}/fd/${fd}`);
        if (link.startsWith('socket:')) out.add(link);
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

export async function stop(proc, timeoutMs = 5000) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exited;
  clearTimeout(timer);
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve once `fn()` resolves truthy; poll every 50 ms, give up after `timeoutMs`. */
export async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

/** One HTTP/1.1 GET over a fresh socket; resolves with the status code. */
export function httpStatus(port, path = '/') {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(2000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      if (m) {
        resolve(Number(m[1]));
        sock.destroy();
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error('closed before a status line')));
  });
}
