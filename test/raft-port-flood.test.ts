// Pre-authentication limits on the Raft port (issue 9): strangers cannot make a node
// buffer big frames, hold many connections, or flood its log — and the cluster keeps
// working while they try. Real processes; the figures are printed with t.log.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { TestCluster, type Member } from './helpers/test-cluster.js';
import { eventually } from './helpers/wait.js';

const TOKEN = 'flood-e2e-cluster-token-0123456789';
const SECURE = { env: () => ({ WELDR_CLUSTER_TOKEN: TOKEN, WELDR_LOG_LEVEL: 'info' }) };

function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/**
 * Opens `total` connections to 127.0.0.1:port, `concurrency` at a time, from source
 * addresses spread over 127.0.1.0/24; each writes `payload` and waits (at most
 * `holdMs`) for the node to close it.
 */
async function hostileConnections(port: number, total: number, concurrency: number, payload: Buffer[], holdMs: number): Promise<{ closedByNode: number }> {
  let next = 0;
  let closedByNode = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.1.${1 + (i % 200)}` });
      const timer = setTimeout(() => s.destroy(), holdMs);
      s.on('connect', () => {
        for (const p of payload) s.write(p);
      });
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(timer);
        closedByNode++;
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (next < total) await one(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { closedByNode };
}

async function writeThrough(c: TestCluster, m: Member, port: number): Promise<void> {
  await eventually(`a write through ${m.id} commits`, async () => {
    const r = await c.call(m, 'POST', '/servers', { ip: '127.0.0.1', port }, { 'idempotency-key': `flood-${port}` });
    return r.status === 201 || r.status === 200 ? true : undefined;
  }, 20_000, 200);
}

test.serial('1,000 hostile connections, each announcing a 16 MiB frame and sending data: RSS stays bounded and the cluster keeps a leader', async (t) => {
  const c = await TestCluster.create(t, SECURE);
  const leader = await c.leader();
  await writeThrough(c, leader, 5001);
  const pid = leader.proc!.pid;
  const baseline = rssMiB(pid);
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 25);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(16 << 20);
  const data = Buffer.alloc(1 << 20, 0x7b); // 1 MiB of '{' after the header, per connection
  const started = Date.now();
  const attack = hostileConnections(leader.raftPort, 1000, 100, [header, data], 10_000);
  // The cluster goes on working during the attack.
  await writeThrough(c, c.members.find((m) => m !== leader)!, 5002);
  const { closedByNode } = await attack;
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB(pid));
  t.log(`RSS of the attacked node: ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most; 1,000 connections in ${Date.now() - started} ms`);
  t.is(closedByNode, 1000, 'the node closed every hostile connection');
  // Unbounded, 1,000 × 16 MiB frames would be buffered (the review measured 731 MB for 40).
  t.true(peak - baseline < 200, `RSS grew by ${(peak - baseline).toFixed(0)} MiB`);
  await c.leader();
  await writeThrough(c, leader, 5003);
  const metrics = await c.call(leader, 'GET', '/metrics');
  const refused = [...(metrics.json as string).matchAll(/^weldr_raft_connections_refused_total\{reason="([a-z_]+)"[^}]*\} (\d+)$/gm)].map(([, r, n]) => [r, Number(n)] as const);
  t.log(`refused by reason: ${refused.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  t.is(refused.reduce((sum, [, n]) => sum + n, 0), 1000, 'every hostile connection was counted as refused');
});

test.serial('connection churn on the Raft port costs a bounded number of log lines', async (t) => {
  const c = await TestCluster.create(t, SECURE);
  const target = c.members[0]!;
  const before = target.proc!.lines.length;
  const started = Date.now();
  // Connect, send a byte of garbage, go: as fast as this machine allows, bounded.
  await hostileConnections(target.raftPort, 20_000, 200, [Buffer.from('x')], 5_000);
  const seconds = (Date.now() - started) / 1000;
  // The last interval's summary comes at most 10 s later.
  await eventually('the last summary', () => {
    const n = target.proc!.lines.slice(before).filter((l) => l.event === 'raft_connection_refused').reduce((sum, l) => sum + (typeof l.refused === 'number' ? l.refused : 1), 0);
    return n >= 20_000 ? n : undefined;
  }, 30_000, 200);
  const lines = target.proc!.lines.slice(before);
  const refusedLines = lines.filter((l) => l.event === 'raft_connection_refused');
  t.log(`20,000 connections in ${seconds.toFixed(1)} s: ${lines.length} log lines in all, ${refusedLines.length} about refusals`);
  // One line at the first refusal, then one summary per 10 s interval.
  t.true(refusedLines.length <= 2 + Math.ceil(seconds / 10) + 1, `${refusedLines.length} refusal lines`);
  t.true(lines.length < 50, `${lines.length} lines`);
});
