#!/usr/bin/env node
// Admin-API flood against a 3-member cluster (--workers 0, default admin limits), all on
// loopback: N connections opened at once from 6 source addresses (127.0.0.2–127.0.0.7),
// each sending one `POST /servers` with a new server and `Connection: close`, to the
// leader (or spread over the members with --target all).
//
// It prints: leader changes (term and leader id of every member, polled every 20 ms over
// kept-alive connections from 127.0.0.1 opened before the flood), /ready flaps (the
// active node's id changing or no node active), answers by status, the leader's
// event-loop delay over the flood (prom-client's nodejs_eventloop_lag_* from /metrics,
// reset by a scrape just before), the members' CPU time, and the flood's duration.
// Not a test: nothing passes or fails on a number.
//
//   node bench/admin-flood.js [--connections 1200] [--rounds 1] [--target leader|all]
//                             [--base-port 24100] [--node-args '--foo bar'] [--json]
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    connections: { type: 'string', default: '1200' },
    rounds: { type: 'string', default: '1' },
    target: { type: 'string', default: 'leader' },
    'base-port': { type: 'string', default: '24100' },
    'node-args': { type: 'string', default: '' },
    'log-level': { type: 'string', default: 'info' },
    json: { type: 'boolean', default: false },
    'log-dir': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'pause-before-flood': { type: 'string', default: '0' },
    writers: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '3' },
  },
  strict: true,
});
const CONNECTIONS = Math.min(10_000, Number(opt.connections));
const ROUNDS = Math.min(20, Number(opt.rounds));
const BASE = Number(opt['base-port']);
if (!(BASE >= 24000 && BASE + 20 <= 24999)) throw new Error('--base-port: 24000..24979');
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const TOKEN = 'admin-flood-bench-cluster-token-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'weldr-admin-flood-'));
const members = [1, 2, 3].map((i) => ({ id: `n${i}`, raft: BASE + i, admin: BASE + 10 + i, proxy: BASE + 20 + i, proc: null, log: '' }));
const peers = members.map((m) => `${m.id}=127.0.0.1:${m.raft}`).join(',');
const agent = new Agent({ connections: 2, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, localAddress: '127.0.0.1' });

function startMember(m) {
  const args = [
    ...(opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof'], '--cpu-prof-name', `${m.id}.cpuprofile`] : []),
    join(root, 'packages/node/bin/weldr.js'), 'start', '--id', m.id, '--peers', peers,
    '--raft', `127.0.0.1:${m.raft}`, '--admin', `127.0.0.1:${m.admin}`, '--listen', `127.0.0.1:${m.proxy}`,
    '--data', join(dir, m.id), '--workers', '0', '--log-level', opt['log-level'],
    ...opt['node-args'].split(' ').filter(Boolean),
  ];
  m.proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WELDR_CLUSTER_TOKEN: TOKEN, WELDR_CONFIG: '' } });
  m.lines = 0;
  m.refusedLines = 0;
  const count = (chunk) => {
    const s = chunk.toString();
    for (const line of s.split('\n')) {
      if (!line) continue;
      m.lines++;
      if (line.includes('refused')) m.refusedLines++;
    }
    m.log = (m.log + s).slice(-8192);
    if (opt['log-dir']) appendFileSync(join(opt['log-dir'], `${m.id}.log`), s);
  };
  m.proc.stdout.on('data', count);
  m.proc.stderr.on('data', count);
}

async function get(m, path, timeoutMs = 1000) {
  const r = await request(`http://127.0.0.1:${m.admin}${path}`, { dispatcher: agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  return { status: r.statusCode, text: await r.body.text() };
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

/** One raw connection: POST /servers, read the status line, or note the error. */
function oneWrite(port, source, seq) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ ip: `127.${100 + ((seq >> 16) & 15)}.${(seq >> 8) & 255}.${seq & 255}`, port: 1000 + (seq % 60_000), healthCheck: { enabled: false } });
    const s = net.connect({ host: '127.0.0.1', port, localAddress: source });
    let data = '';
    let done = false;
    const finish = (what) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => finish('timeout'), 30_000);
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`POST /servers HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`));
    s.on('data', (d) => {
      if (data.length < 8192) data += d;
    });
    const settle = (why) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (!m) return finish(why);
      const code = m[1] === '200' || m[1] === '201' ? '' : /"code":"([A-Z_]+)"/.exec(data)?.[1] ?? '';
      const noRetry = m[1] >= '400' && !/\r\nretry-after: /i.test(data) ? ' (no Retry-After)' : '';
      finish(`${m[1]}${code ? ' ' + code : ''}${noRetry}`);
    };
    s.on('end', () => settle('closed'));
    s.on('close', () => settle('closed'));
    s.on('error', (e) => settle(`error ${e.code ?? e.message}`));
  });
}

async function main() {
  for (const m of members) startMember(m);
  const deadline = Date.now() + 30_000;
  let leader;
  while (Date.now() < deadline) {
    for (const m of members) {
      try {
        const r = await get(m, '/ready');
        if (r.status === 200) leader = m;
      } catch {}
    }
    if (leader) break;
    await sleep(100);
  }
  if (!leader) throw new Error('no active node within 30 s');
  process.stderr.write(`pids ${members.map((m) => m.proc.pid).join(',')} leader ${leader.id} ${leader.proc.pid}\n`);
  await sleep(Math.min(60_000, Number(opt['pause-before-flood']) * 1000));
  if (Number(opt.writers) > 0) return steady(leader);
  const results = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await sleep(1000);
    // The poller: every member's /cluster and /ready every 20 ms, on kept-alive connections.
    const seen = { leaders: new Set(), terms: new Set(), actives: [], noActive: 0, pollErrors: 0, samples: 0 };
    let polling = true;
    let lastActive;
    const poller = (async () => {
      while (polling) {
        const t0 = Date.now();
        const active = [];
        const unknownBefore = seen.unknown ?? 0;
        await Promise.all(members.map(async (m) => {
          try {
            const c = JSON.parse((await get(m, '/cluster?stale=true')).text);
            if (c.leaderId) seen.leaders.add(`${c.term}:${c.leaderId}`);
            seen.terms.add(c.term);
            const r = await get(m, '/ready');
            if (r.status === 200) active.push(m.id);
            else if (!r.text.includes('NOT_ACTIVE')) seen.unknown = (seen.unknown ?? 0) + 1; // refused: no news
          } catch {
            seen.pollErrors++;
          }
        }));
        seen.samples++;
        if (active.length === 0 && (seen.unknown ?? 0) === unknownBefore) seen.noActive++;
        const a = active.join('+');
        if (a && a !== lastActive) { seen.actives.push(a); lastActive = a; }
        await sleep(Math.max(0, 20 - (Date.now() - t0)));
      }
    })();
    await sleep(200);
    const target = leader;
    const before = {};
    for (const m of members) before[m.id] = cpuSeconds(m.proc.pid);
    await get(target, '/metrics', 5000); // resets prom-client's event-loop histogram
    const t0 = performance.now();
    const ports = opt.target === 'all' ? members.map((m) => m.admin) : [target.admin];
    const answers = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => oneWrite(ports[i % ports.length], SOURCES[i % SOURCES.length], round * 100_000 + i)));
    const floodMs = performance.now() - t0;
    let loop = { p99: NaN, max: NaN };
    try {
      const mt = (await get(target, '/metrics', 5000)).text;
      loop = { p50: metric(mt, 'nodejs_eventloop_lag_p50_seconds') * 1000, p99: metric(mt, 'nodejs_eventloop_lag_p99_seconds') * 1000, max: metric(mt, 'nodejs_eventloop_lag_max_seconds') * 1000 };
    } catch (e) {
      loop = { error: String(e) };
    }
    await sleep(1500);
    polling = false;
    await poller;
    const cpu = {};
    for (const m of members) cpu[m.id] = +(cpuSeconds(m.proc.pid) - before[m.id]).toFixed(2);
    const byStatus = {};
    for (const a of answers) byStatus[a] = (byStatus[a] ?? 0) + 1;
    const terms = [...seen.terms].sort((a, b) => a - b);
    const r = {
      round, connections: CONNECTIONS, target: opt.target, floodMs: Math.round(floodMs),
      leaderChanges: seen.leaders.size - 1, terms, actives: seen.actives, samplesWithNoActive: seen.noActive, samples: seen.samples, pollErrors: seen.pollErrors, pollsRefused: seen.unknown ?? 0,
      answers: byStatus, leaderLoopMs: loop, cpuSeconds: cpu,
      logLines: Object.fromEntries(members.map((m) => [m.id, m.lines])),
    };
    results.push(r);
    process.stdout.write((opt.json ? JSON.stringify(r) : JSON.stringify(r, null, 1)) + '\n');
    // The next round floods whoever leads now.
    for (const m of members) {
      try { if ((await get(m, '/ready')).status === 200) leader = m; } catch {}
    }
  }
  return results;
}

/** --writers N: N clients on kept-alive connections, one write after another, for --seconds: writes/s (normal use, not a flood). */
async function steady(leader) {
  const writers = Math.min(256, Number(opt.writers));
  const until = Date.now() + Math.min(60, Number(opt.seconds)) * 1000;
  const pool = new Agent({ connections: writers, localAddress: '127.0.0.2' });
  let ok = 0;
  let other = 0;
  const latencies = [];
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; Date.now() < until; i++) {
      const seq = w * 1_000_000 + i;
      const t0 = performance.now();
      const r = await request(`http://127.0.0.1:${leader.admin}/servers`, { method: 'POST', dispatcher: pool, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ip: `127.${100 + ((seq >> 16) & 15)}.${(seq >> 8) & 255}.${seq & 255}`, port: 1000 + (seq % 60_000), healthCheck: { enabled: false } }) });
      await r.body.text();
      latencies.push(performance.now() - t0);
      if (r.statusCode === 201) ok++;
      else other++;
    }
  }));
  await pool.close();
  latencies.sort((a, b) => a - b);
  const r = { writers, seconds: Number(opt.seconds), writesPerSecond: Math.round(ok / Number(opt.seconds)), other, p50Ms: +latencies[Math.floor(latencies.length / 2)].toFixed(1), p99Ms: +latencies[Math.floor(latencies.length * 0.99)].toFixed(1) };
  process.stdout.write(JSON.stringify(r) + '\n');
  return [r];
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  exitCode = 1;
  process.stderr.write(`${e.stack}\n`);
  for (const m of members) process.stderr.write(`--- ${m.id}\n${m.log}\n`);
} finally {
  for (const m of members) {
    if (m.proc && m.proc.exitCode === null) {
      m.proc.kill('SIGTERM');
      await Promise.race([new Promise((r) => m.proc.once('exit', r)), sleep(5000)]);
      if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    }
  }
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
