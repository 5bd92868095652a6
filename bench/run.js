#!/usr/bin/env node
// weldr's cross-proxy benchmark: in ONE run, with the same pinning, measure
//   direct     wrk -> origin
//   weldr      wrk -> weldr -> origin
//   nginx      wrk -> nginx -> origin
//   haproxy    wrk -> haproxy -> origin
// on a small body at 50 connections, a 1 MiB body, and one connection (added latency).
// The origin (nginx, static) and wrk share CPU 1; the proxy under test runs alone on CPU 0
// for the throughput scenarios and on CPU 1 for the one-connection latency scenario.
// Prints req/s, p50/p99, CPU time per request of the proxy process and ratios to direct
// and to nginx. Not a test: nothing here passes or fails on a number.
//
//   npm run bench -- [--duration 10] [--warmup 3] [--rounds 1] [--targets direct,weldr,nginx,haproxy]
//                    [--scenarios small,large,latency] [--write] [--json out.json]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startPinned, stop, cpuSeconds, freePort, waitFor, httpStatus } from './lib/procs.js';
import { originNginx, proxyNginx, proxyHaproxy } from './lib/configs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    targets: { type: 'string', default: 'direct,weldr,nginx,haproxy' },
    scenarios: { type: 'string', default: 'small,large,latency' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 13).join('\n') + '\n');
  process.exit(0);
}
const duration = positiveInt('duration', opt.duration);
const warmup = Number(opt.warmup);
const rounds = positiveInt('rounds', opt.rounds);
const targets = list('targets', opt.targets, ['direct', 'weldr', 'nginx', 'haproxy']);
const scenarioNames = list('scenarios', opt.scenarios, ['small', 'large', 'latency']);

// proxyCpu: where the proxy under test runs. Throughput scenarios give it a core of its
// own. At one connection nothing runs in parallel, and a cross-core wake-up on these VMs
// costs ~100 µs per hop (measured: nginx adds 116 µs p50 across cores, 25 µs on one), so
// the latency scenario runs proxy, origin and wrk on the same core.
const SCENARIOS = {
  small: { path: '/', connections: 50, proxyCpu: '0', label: 'small body, 50 connections' },
  large: { path: '/large', connections: 10, proxyCpu: '0', label: '1 MiB body, 10 connections' },
  latency: { path: '/', connections: 1, proxyCpu: '1', label: 'small body, 1 connection (all on one core)' },
};

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
function list(name, v, allowed) {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i)) fail(`--${name}: unknown ${JSON.stringify(i)} (allowed: ${allowed.join(', ')})`);
  return items;
}
function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---- tools ------------------------------------------------------------------------
function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
function ensureTools() {
  const need = { wrk: 'wrk', nginx: 'nginx-light', haproxy: 'haproxy', taskset: 'util-linux' };
  const missing = Object.entries(need).filter(([cmd]) => !have(cmd) && !existsSync(`/usr/sbin/${cmd}`));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, p]) => p);
  log(`installing ${pkgs.join(' ')} from Debian packages`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r1 = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r2 = r1.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env }) : r1;
  if (r2.status !== 0) fail(`could not install ${pkgs.join(' ')}; install them and re-run`);
}
const bin = (cmd) => (have(cmd) ? cmd : `/usr/sbin/${cmd}`);

// ---- wrk ----------------------------------------------------------------------------
function runWrk(port, scenario, seconds) {
  const args = ['-c', '1', bin('wrk'), '-t1', `-c${scenario.connections}`, `-d${seconds}s`, '--timeout', '5s',
    '-s', join(root, 'bench/wrk-report.lua'), `http://127.0.0.1:${port}${scenario.path}`];
  const out = execFileSync('taskset', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk printed no report:\n${out}`);
  return JSON.parse(line);
}

// ---- targets ------------------------------------------------------------------------
async function startTarget(name, dir, originPort) {
  if (name === 'direct') return { port: originPort, proc: null };
  const port = await freePort();
  let proc;
  if (name === 'nginx') {
    const conf = join(dir, 'proxy-nginx.conf');
    writeFileSync(conf, proxyNginx({ dir, port, originPort }));
    proc = startPinned('nginx', '0', bin('nginx'), ['-p', dir, '-c', conf]);
  } else if (name === 'haproxy') {
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, proxyHaproxy({ port, originPort }));
    proc = startPinned('haproxy', '0', bin('haproxy'), ['-db', '-f', conf]);
  } else {
    const admin = await freePort();
    // One weldr process with every feature on (health checks, stats, metrics, header rewriting).
    proc = startPinned('weldr', '0', process.execPath, [
      join(root, 'packages/node/bin/weldr.js'), 'start',
      '--id', 'bench', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`,
      '--store', 'memory', '--log-level', 'warn',
    ]);
    await waitFor('weldr admin', async () => (await fetch(`http://127.0.0.1:${admin}/health`)).ok).catch((e) => {
      throw new Error(`${e.message}\n${proc.output()}`);
    });
    const res = await fetch(`http://127.0.0.1:${admin}/servers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ip: '127.0.0.1', port: originPort }),
    });
    if (res.status !== 201 && res.status !== 200) throw new Error(`adding the origin to weldr: ${res.status} ${await res.text()}`);
  }
  await waitFor(`${name} proxying`, async () => (await httpStatus(port, '/')) === 200).catch((e) => {
    throw new Error(`${e.message}\n${proc.output()}`);
  });
  return { port, proc };
}

// ---- main ---------------------------------------------------------------------------
async function main() {
  ensureTools();
  if (cpus().length < 2) log('warning: fewer than 2 CPUs; pinning cannot separate the proxy from wrk and the origin');
  if (targets.includes('weldr') && !existsSync(join(root, 'packages/node/dist/src/main.js'))) {
    fail('weldr is not built: run `npm run build` (npm run bench does it for you)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'weldr-bench-'));
  for (const d of ['tmp-body', 'tmp-proxy', 'tmp-origin-body']) mkdirSync(join(dir, d));
  // 1 MiB of deterministic bytes.
  const large = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
  writeFileSync(join(dir, 'large.bin'), large);

  const originPort = await freePort();
  writeFileSync(join(dir, 'origin.conf'), originNginx({ dir, port: originPort }));
  const origin = startPinned('origin', '1', bin('nginx'), ['-p', dir, '-c', join(dir, 'origin.conf')]);
  const started = [origin];
  const results = []; // { round, target, scenario, ...wrk, cpuUsPerReq, originCpuUsPerReq }
  try {
    await waitFor('origin', async () => (await httpStatus(originPort, '/')) === 200);
    for (let round = 1; round <= rounds; round++) {
      // Rotate the order each round so no target always runs first (or on a warmer machine).
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]);
      for (const target of order) {
        log(`round ${round}: ${target}`);
        const { port, proc } = await startTarget(target, dir, originPort);
        if (proc) started.push(proc);
        try {
          for (const s of scenarioNames) {
            const scenario = SCENARIOS[s];
            if (proc) execFileSync('taskset', ['-a', '-p', '-c', scenario.proxyCpu, String(proc.pid)], { stdio: 'ignore' });
            if (warmup > 0) runWrk(port, scenario, warmup);
            const pid = proc ? proc.pid : origin.pid;
            const cpu0 = cpuSeconds(pid);
            const ocpu0 = cpuSeconds(origin.pid);
            const r = runWrk(port, scenario, duration);
            const cpu = cpuSeconds(pid) - cpu0;
            const ocpu = cpuSeconds(origin.pid) - ocpu0;
            const rps = r.requests / (r.durationUs / 1e6);
            results.push({
              round, target, scenario: s, rps, ...r,
              cpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests),
              cpuUtil: cpu / (r.durationUs / 1e6),
              originCpuUsPerReq: (ocpu * 1e6) / Math.max(1, r.requests),
            });
            log(`  ${s}: ${rps.toFixed(0)} req/s p50 ${r.p50}µs p99 ${r.p99}µs cpu ${((cpu * 1e6) / Math.max(1, r.requests)).toFixed(1)}µs/req errors ${r.connectErrors + r.readErrors + r.writeErrors + r.timeouts} non2xx ${r.non2xx}`);
          }
        } finally {
          if (proc) await stop(proc);
        }
      }
    }
  } finally {
    for (const p of started.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }

  const table = summarise(results);
  process.stdout.write(table + '\n');
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ date: new Date().toISOString(), duration, rounds, results }, null, 2));
  if (opt.write) writeDoc(table);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarise(results) {
  const lines = [];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; node ${process.version}; ${tool('nginx', ['-v'])}; ${tool('haproxy', ['-v']).split(' - ')[0]}; ${tool('wrk', ['--version']).split(' [')[0]}`;
  lines.push(`Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
  lines.push(`${duration}s per measurement after ${warmup}s warm-up, ${rounds} round(s), median shown. Origin (nginx, static) and wrk (1 thread) on CPU 1; the proxy on CPU 0, except at 1 connection where it shares CPU 1.`);
  for (const s of scenarioNames) {
    const sc = SCENARIOS[s];
    lines.push('', `**${sc.label}** (\`GET ${sc.path}\`)`, '');
    lines.push('| target | req/s | p50 | p99 | CPU/req | CPU use | vs direct | vs nginx | added p50 | added p99 | errors |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const agg = {};
    for (const t of targets) {
      const rs = results.filter((r) => r.target === t && r.scenario === s);
      if (rs.length === 0) continue;
      agg[t] = {
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        cpu: median(rs.map((r) => r.cpuUsPerReq)),
        util: median(rs.map((r) => r.cpuUtil)),
        errors: rs.reduce((n, r) => n + r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx, 0),
      };
    }
    for (const t of targets) {
      const a = agg[t];
      if (!a) continue;
      const vsDirect = agg.direct ? `${((100 * a.rps) / agg.direct.rps).toFixed(0)}%` : '–';
      const vsNginx = agg.nginx ? `${((100 * a.rps) / agg.nginx.rps).toFixed(0)}%` : '–';
      const addP50 = agg.direct && t !== 'direct' ? `${(a.p50 - agg.direct.p50).toFixed(0)} µs` : '–';
      const addP99 = agg.direct && t !== 'direct' ? `${(a.p99 - agg.direct.p99).toFixed(0)} µs` : '–';
      const cpuLabel = t === 'direct' ? `${a.cpu.toFixed(1)} µs (origin)` : `${a.cpu.toFixed(1)} µs`;
      lines.push(`| ${t} | ${a.rps.toFixed(0)} | ${a.p50} µs | ${a.p99} µs | ${cpuLabel} | ${(a.util * 100).toFixed(0)}% | ${vsDirect} | ${vsNginx} | ${addP50} | ${addP99} | ${a.errors} |`);
    }
  }
  return lines.join('\n');
}

function tool(cmd, args) {
  const r = spawnSync(bin(cmd), args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n')[0].trim();
}

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';
function writeDoc(table) {
  const file = join(root, 'docs/benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  if (i < 0 || j < i) fail(`${file} has no ${BEGIN} … ${END} section to replace`);
  writeFileSync(file, `${text.slice(0, i + BEGIN.length)}\n${table}\n${text.slice(j)}`);
  log(`wrote ${file}`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
