// The two control planes the cluster benchmark compares, behind one interface: a
// 3-member weldr cluster and a 3-member etcd 3.4 cluster, both on loopback with the
// same settings — pre-vote on, 50 ms heartbeat, 500 ms election timeout, synced writes
// (weldr always fsyncs; etcd's WAL does unless --unsafe-no-fsync, which is not set).
// Each target knows how to write, find its leader, hand leadership over, kill -9 a
// member and start it again. Every process started here is stopped by stopAll().
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Pool } from 'undici';
import { spawnProcess } from './procs.js';

/** A free TCP port below the kernel's ephemeral range (32768+), so no outbound connection takes it. */
let nextPort = 20_000 + Math.floor(Math.random() * 10_000);
export async function reservePort() {
  for (;;) {
    const port = nextPort;
    nextPort = nextPort >= 32_000 ? 20_000 : nextPort + 1;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

const started = new Set();

/** Spawn a process we own (procs.js's spawnProcess), remembered until it exits so that stopAll() stops it. */
export function startProcess(name, cmd, args, env = {}) {
  const proc = spawnProcess(name, cmd, args, { env });
  started.add(proc);
  proc.exited.then(() => started.delete(proc));
  return proc;
}

export async function stopProcess(proc, signal = 'SIGTERM', timeoutMs = 5000) {
  if (!proc.running) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Stop every process this module started (by its own PID). */
export async function stopAll() {
  await Promise.all([...started].map((p) => stopProcess(p)));
}

export async function waitFor(what, fn, timeoutMs = 20_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP exchange on a member's keep-alive pool: { status, text }. */
export async function call(pool, method, path, body, timeoutMs = 5000) {
  const r = await pool.request({
    method,
    path,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: r.statusCode, text: await r.body.text() };
}

function pools(url, connections = 64) {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

// What the two targets do alike with their members, each member's `proc` a startProcess().

/** kill -9 of a member: resolves once it has exited. */
function killMember(m) {
  m.proc.child.kill('SIGKILL');
  return m.proc.exited;
}

/** The PIDs of the members running now. */
function runningPids(members) {
  return members.filter((m) => m.proc?.running).map((m) => m.proc.pid);
}

/** A catch handler that rethrows with the members' output: why they did not come up. */
function withOutputOf(members) {
  return (e) => {
    throw new Error(`${e.message}\n${members.map((m) => m.proc.output()).join('\n')}`);
  };
}

// ---- weldr --------------------------------------------------------------------------

export async function startWeldr({ root, dir, size = 3, heartbeatMs = 50, electionMs = 500, logLevel = 'warn', nodeArgs = [], workers = 'auto' }) {
  const members = [];
  for (let i = 1; i <= size; i++) {
    members.push({ id: `n${i}`, raft: await reservePort(), admin: await reservePort(), proxy: await reservePort(), data: join(dir, `weldr-n${i}`), proc: null, pool: null });
  }
  const peers = members.map((m) => `${m.id}=127.0.0.1:${m.raft}`).join(',');
  const spawnMember = (m) => {
    m.proc = startProcess(`weldr ${m.id}`, process.execPath, [
      ...nodeArgs, join(root, 'packages/node/bin/weldr.js'), 'start',
      '--id', m.id, '--listen', `127.0.0.1:${m.proxy}`, '--admin', `127.0.0.1:${m.admin}`, '--raft', `127.0.0.1:${m.raft}`,
      '--peers', peers, '--insecure-peers', '--data', m.data, '--log-level', logLevel,
      '--raft-heartbeat', `${heartbeatMs}ms`, '--raft-election-timeout', `${electionMs}ms`,
      // Every benchmark client, and the other members' relays, come from 127.0.0.1.
      '--admin-max-connections', '1024', '--admin-max-connections-per-source', '1024',
      '--workers', String(workers),
    ], { WELDR_CONFIG: '' });
  };
  for (const m of members) {
    rmSync(m.data, { recursive: true, force: true });
    m.pool = pools(`http://127.0.0.1:${m.admin}`);
    m.proxyPool = pools(`http://127.0.0.1:${m.proxy}`, 8);
    spawnMember(m);
  }
  const t = {
    name: 'weldr',
    members,
    async leader() {
      for (const m of members) {
        if (!m.proc?.running) continue;
        try {
          const r = await call(m.pool, 'GET', '/cluster?stale=true', undefined, 1000);
          const leaderId = JSON.parse(r.text).leaderId;
          const l = members.find((x) => x.id === leaderId && x.proc?.running);
          if (l) return l;
        } catch {
          // try the next member
        }
      }
      return null;
    },
    /** Resolves once `m` answers /ready 200 (the active node). */
    async isActive(m) {
      const r = await call(m.pool, 'GET', '/ready', undefined, 1000);
      return r.status === 200;
    },
    /** A write that adds a new server (health checks off: it does not exist). */
    addWrite(seq) {
      return { method: 'POST', path: '/servers', body: { ip: fakeAddress(seq), port: 1000 + (seq % 60_000), healthCheck: { enabled: false } } };
    },
    /** A write that changes a real server's weight (the pool keeps only real origins). */
    updateWrite(seq, origins) {
      const o = origins[seq % origins.length];
      return { method: 'PATCH', path: `/servers/${o.ip}/${o.port}`, body: { weight: 1 + (seq % 50) } };
    },
    ok: (status) => status === 200 || status === 201,
    async transfer(leader, to) {
      const r = await call(leader.pool, 'POST', '/cluster/transfer-leadership', { to: to.id }, 10_000);
      if (r.status !== 200) throw new Error(`transfer: ${r.status} ${r.text}`);
    },
    kill: killMember,
    async restart(m) {
      spawnMember(m);
      await waitFor(`${m.id} up`, async () => (await call(m.pool, 'GET', '/health', undefined, 500)).status === 200, 20_000, 20);
    },
    /** `m` knows a leader and has applied what that leader had committed when asked. */
    async caughtUp(m) {
      const l = await waitFor('leader', () => t.leader(), 20_000);
      const commit = JSON.parse((await call(l.pool, 'GET', '/cluster', undefined, 2000)).text).commitIndex;
      await waitFor(`${m.id} caught up`, async () => {
        const c = JSON.parse((await call(m.pool, 'GET', '/cluster?stale=true', undefined, 1000)).text);
        return c.leaderId !== null && c.appliedIndex >= commit;
      }, 20_000, 20);
    },
    async ready() {
      await waitFor('weldr members up', async () => {
        for (const m of members) if ((await call(m.pool, 'GET', '/health', undefined, 500)).status !== 200) return false;
        return true;
      }).catch(withOutputOf(members));
      await waitFor('a weldr leader', () => t.leader());
    },
    pids: () => runningPids(members),
    async stop() {
      await Promise.all(members.map((m) => m.proc && stopProcess(m.proc)));
      await Promise.all(members.flatMap((m) => [m.pool.close(), m.proxyPool.close()]));
    },
  };
  await t.ready();
  return t;
}

/** Addresses of fictitious servers the write benchmarks add (never contacted: health checks off). */
function fakeAddress(seq) {
  return `127.2.${(seq >> 8) & 255}.${(seq & 255) || 1}`;
}

// ---- etcd ---------------------------------------------------------------------------

const b64 = (s) => Buffer.from(s).toString('base64');

export async function startEtcd({ dir, size = 3, heartbeatMs = 50, electionMs = 500, etcdBin = 'etcd' }) {
  const members = [];
  for (let i = 1; i <= size; i++) {
    members.push({ id: `e${i}`, client: await reservePort(), peer: await reservePort(), data: join(dir, `etcd-e${i}`), proc: null, pool: null, memberId: null });
  }
  const cluster = members.map((m) => `${m.id}=http://127.0.0.1:${m.peer}`).join(',');
  const spawnMember = (m) => {
    m.proc = startProcess(`etcd ${m.id}`, etcdBin, [
      '--name', m.id, '--data-dir', m.data,
      '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${process.pid}`,
      '--heartbeat-interval', String(heartbeatMs), '--election-timeout', String(electionMs), '--pre-vote',
      '--logger', 'zap', '--log-level', 'error',
    ], { ETCD_UNSUPPORTED_ARCH: '' });
  };
  for (const m of members) {
    rmSync(m.data, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    m.pool = pools(`http://127.0.0.1:${m.client}`);
    spawnMember(m);
  }
  const status = async (m) => JSON.parse((await call(m.pool, 'POST', '/v3/maintenance/status', {}, 1000)).text);
  const t = {
    name: 'etcd',
    members,
    async leader() {
      for (const m of members) {
        if (!m.proc?.running) continue;
        try {
          const s = await status(m);
          const l = members.find((x) => x.memberId === s.leader && x.proc?.running);
          if (l) return l;
        } catch {
          // next
        }
      }
      return null;
    },
    addWrite(seq) {
      const key = `servers/${fakeAddress(seq)}:${1000 + (seq % 60_000)}`;
      return { method: 'POST', path: '/v3/kv/put', body: { key: b64(key), value: b64(JSON.stringify({ weight: 1 })) } };
    },
    updateWrite(seq, origins) {
      const o = origins[seq % origins.length];
      return { method: 'POST', path: '/v3/kv/put', body: { key: b64(`servers/${o.ip}:${o.port}`), value: b64(JSON.stringify({ weight: 1 + (seq % 50) })) } };
    },
    ok: (status) => status === 200,
    async transfer(leader, to) {
      const r = await call(leader.pool, 'POST', '/v3/maintenance/transfer-leadership', { targetID: to.memberId }, 10_000);
      if (r.status !== 200) throw new Error(`transfer: ${r.status} ${r.text}`);
    },
    kill: killMember,
    async restart(m) {
      spawnMember(m);
      await waitFor(`${m.id} up`, async () => (await status(m)).header !== undefined, 20_000, 20);
    },
    /** `m` knows a leader and has applied what that leader had committed when asked. */
    async caughtUp(m) {
      const l = await waitFor('leader', () => t.leader(), 20_000);
      const commit = Number((await status(l)).raftIndex);
      await waitFor(`${m.id} caught up`, async () => {
        const s = await status(m);
        return s.leader !== undefined && s.leader !== '0' && Number(s.raftAppliedIndex ?? s.raftIndex) >= commit;
      }, 20_000, 20);
    },
    async ready() {
      await waitFor('etcd members up', async () => {
        for (const m of members) {
          const s = await status(m);
          m.memberId = s.header.member_id;
        }
        return true;
      }).catch(withOutputOf(members));
      await waitFor('an etcd leader', () => t.leader());
    },
    pids: () => runningPids(members),
    async stop() {
      await Promise.all(members.map((m) => m.proc && stopProcess(m.proc)));
      await Promise.all(members.map((m) => m.pool.close()));
    },
  };
  await t.ready();
  return t;
}
