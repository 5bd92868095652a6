#!/usr/bin/env node
// weldr's cross-proxy benchmark: in ONE run, measure
//   direct       wrk -> origin
//   weldr        wrk -> weldr -> origin            (pinned: one process; multi: --workers auto)
//   weldr-log    the same with --access-log FILE   (the access log's cost)
//   weldr-1000   the same with 1,000 origins in the pool (routing cost vs. pool size)
//   weldr-single multi mode only: one process (--workers 0), unpinned
//   floor        pinned mode only: bench/floor.js, the least node:http + undici can do
//                per proxied request (weldr's request path minus everything of its own)
//   nginx        wrk -> nginx -> origin            (pinned: one worker; multi: worker_processes auto)
//   nginx-1000   nginx with the same 1,000 origins in its upstream (random pick, kept-alive
//                connections): what spreading requests over 1,000 origin connections costs
//                a proxy without a garbage collector — the yardstick for weldr-1000
//   nginx-single multi mode only: nginx with one worker, unpinned (nginx's own scaling: the
//                yardstick for weldr's workers on the same shared cores)
//   haproxy      wrk -> haproxy -> origin          (pinned: nbthread 1; multi: nbthread = cores)
// in two modes: `pinned` (the proxy alone on CPU 0, origin and wrk on CPU 1; a small
// body at 50 connections, a 1 MiB body, one connection) and `multi` (nothing pinned:
// every proxy on every core, sharing the machine with the origin and wrk). Prints
// req/s, p50/p99/p99.9, CPU time per request of the proxy's processes, and ratios to
// direct and to nginx. Not a test: nothing here passes or fails on a number.
//
//   npm run bench -- [--duration 10] [--warmup 3] [--rounds 1] [--modes pinned,multi]
//                    [--targets direct,weldr,weldr-log,weldr-1000,weldr-single,floor,nginx,nginx-1000,nginx-single,haproxy]
//                    [--scenarios small,large,latency] [--write] [--json out.json]
//                    [--origin-client native|undici]   (weldr's origin-side HTTP client; default: weldr's own)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startPinned, stop, treeCpuSeconds, treeRssKiB, treeSockets, childrenCpuSeconds, freePort, waitFor, httpStatus } from './lib/procs.js';
import { originNginx, proxyNginx, proxyHaproxy, writeOriginFiles } from './lib/configs.js';
import { bin, median, scriptHelpers } from './lib/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { fail, log, positiveInt, list, ensureTools, writeDoc } = scriptHelpers('bench');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    targets: { type: 'string', default: 'direct,weldr,weldr-log,weldr-1000,weldr-single,floor,nginx,nginx-1000,nginx-single,haproxy' },
    modes: { type: 'string', default: 'pinned,multi' },
    scenarios: { type: 'string', default: 'small,large,latency' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    'origin-client': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  process.stdout.write(lines.slice(1, lines.findIndex((l, i) => i > 0 && !l.startsWith('//'))).join('\n') + '\n');
  process.exit(0);
}
const duration = positiveInt('duration', opt.duration);
const warmup = Number(opt.warmup);
const rounds = positiveInt('rounds', opt.rounds);
const ALL_TARGETS = ['direct', 'weldr', 'weldr-log', 'weldr-1000', 'weldr-single', 'floor', 'nginx', 'nginx-1000', 'nginx-single', 'haproxy'];
const targets = list('targets', opt.targets, ALL_TARGETS);
const modes = list('modes', opt.modes, ['pinned', 'multi']);
const CORES = cpus().length;
/** Targets measured in each mode (weldr-single and nginx-single are the multi mode's one-process references; the floor is one process, pinned). */
const targetsOf = (mode) => targets.filter((t) => (mode === 'multi' ? t !== 'floor' : t !== 'weldr-single' && t !== 'nginx-single'));
/**
 * Warm-up of the 1,000-origin pool, at least: long enough for every origin to have been
 * health-checked (first checks are spread over the 2 s interval) and to hold a kept-alive
 * connection, so that the measurement sees the steady state rather than 2,000 connections
 * being opened (found with strace: a 2 s warm-up left ~3 % of the measured requests
 * opening an origin connection; after 10 s, none).
 */
const LARGE_POOL_WARMUP = 6;
/** Scenarios of each mode: one connection (added latency) is a pinned measurement. */
const scenariosOf = (mode) => scenarioNames.filter((s) => mode === 'pinned' || s !== 'latency');
/** The 1,000-origin pool is measured on the small body only (routing cost), as is the access log. */
const scenarioApplies = (target, s) => !((target === 'weldr-1000' || target === 'nginx-1000' || target === 'weldr-log') && s !== 'small');
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

// ---- wrk ----------------------------------------------------------------------------
function runWrk(port, scenario, seconds, mode) {
  const wrk = [bin('wrk'), mode === 'multi' ? `-t${CORES}` : '-t1', `-c${scenario.connections}`, `-d${seconds}s`, '--timeout', '5s',
    '-s', join(root, 'bench/wrk-report.lua'), `http://127.0.0.1:${port}${scenario.path}`];
  // Pinned: wrk on CPU 1 with the origin. Multi: wherever the scheduler puts it.
  const out = mode === 'multi'
    ? execFileSync(wrk[0], wrk.slice(1), { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
    : execFileSync('taskset', ['-c', '1', ...wrk], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk printed no report:\n${out}`);
  return JSON.parse(line);
}

// ---- targets ------------------------------------------------------------------------
/** All CPUs, as a taskset list: multi mode leaves every process free to run anywhere. */
const ALL_CPUS = `0-${CORES - 1}`;

async function startTarget(name, dir, originPorts, mode) {
  const originPort = originPorts[0];
  if (name === 'direct') return { port: originPort, proc: null };
  const port = await freePort();
  const cpu = mode === 'multi' ? ALL_CPUS : '0';
  let proc;
  if (name === 'nginx' || name === 'nginx-single' || name === 'nginx-1000') {
    const conf = join(dir, `proxy-${name}-${mode}.conf`);
    const upstream = name === 'nginx-1000' ? originPorts : [originPort];
    writeFileSync(conf, proxyNginx({ dir, port, originPort, originPorts: upstream, workers: mode === 'multi' && name !== 'nginx-single' ? 'auto' : 1 }));
    proc = startPinned('nginx', cpu, bin('nginx'), ['-p', dir, '-c', conf]);
  } else if (name === 'haproxy') {
    const conf = join(dir, `haproxy-${mode}.cfg`);
    writeFileSync(conf, proxyHaproxy({ port, originPort, threads: mode === 'multi' ? CORES : 1 }));
    proc = startPinned('haproxy', cpu, bin('haproxy'), ['-db', '-f', conf]);
  } else if (name === 'floor') {
    proc = startPinned('floor', cpu, process.execPath, [join(root, 'bench/floor.js'), String(port), originPorts.slice(0, 2).join(',')]);
  } else {
    const admin = await freePort();
    // weldr with every feature on (health checks, stats, metrics, header rewriting).
    // Pinned: one process (--workers 0). Multi: --workers auto, except weldr-single.
    const workers = mode === 'multi' && name !== 'weldr-single' ? 'auto' : '0';
    proc = startPinned(name, cpu, process.execPath, [
      join(root, 'packages/node/bin/weldr.js'), 'start',
      '--id', 'bench', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`,
      '--store', 'memory', '--log-level', 'warn', '--workers', workers,
      ...(name === 'weldr-log' ? ['--access-log', join(dir, `access-${mode}.log`)] : []),
      // weldr's origin-side client (an A/B of the native client against undici's Pool).
      ...(opt['origin-client'] !== undefined ? ['--origin-client', opt['origin-client']] : []),
    ]);
    await waitFor('weldr admin', async () => (await fetch(`http://127.0.0.1:${admin}/health`)).ok, 60_000).catch((e) => {
      throw new Error(`${e.message}\n${proc.output()}`);
    });
    // Two origins (two ports of the same nginx), or 1,000 for weldr-1000.
    const ports = name === 'weldr-1000' ? originPorts : originPorts.slice(0, 2);
    const res = await fetch(`http://127.0.0.1:${admin}/servers/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commands: ports.map((p) => ({ type: 'AddServer', ip: '127.0.0.1', port: p })) }),
    });
    if (res.status >= 300) throw new Error(`adding the origins to weldr: ${res.status} ${await res.text()}`);
    proc.admin = admin;
  }
  await waitFor(`${name} proxying`, async () => (await httpStatus(port, '/')) === 200, 60_000).catch((e) => {
    throw new Error(`${e.message}\n${proc.output()}`);
  });
  return { port, proc };
}

// ---- main ---------------------------------------------------------------------------
async function main() {
  ensureTools({ wrk: 'wrk', nginx: 'nginx-light', haproxy: 'haproxy', taskset: 'util-linux' });
  if (cpus().length < 2) log('warning: fewer than 2 CPUs; pinning cannot separate the proxy from wrk and the origin');
  if (targets.includes('weldr') && !existsSync(join(root, 'packages/node/dist/src/main.js'))) {
    fail('weldr is not built: run `npm run build` (npm run bench does it for you)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'weldr-bench-'));
  writeOriginFiles(dir);

  // One origin nginx on 1,000 ports: weldr-1000's pool; everyone else uses the first (two).
  const originPorts = [];
  while (originPorts.length < 1000) {
    const p = await freePort();
    if (!originPorts.includes(p)) originPorts.push(p);
  }
  const originPort = originPorts[0];
  writeFileSync(join(dir, 'origin.conf'), originNginx({ dir, port: originPort, extraPorts: originPorts.slice(1) }));
  const origin = startPinned('origin', '1', bin('nginx'), ['-p', dir, '-c', join(dir, 'origin.conf')]);
  const started = [origin];
  const results = []; // { mode, round, target, scenario, ...wrk, cpuUsPerReq, originCpuUsPerReq }
  const memory = {}; // weldr's resident memory per process after the multi-mode small scenario
  log(`load before the run: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min)`);
  try {
    await waitFor('origin', async () => (await httpStatus(originPort, '/')) === 200);
    for (const mode of modes) {
      // Multi mode: the origin may run anywhere too (it shares the machine).
      execFileSync('taskset', ['-a', '-p', '-c', mode === 'multi' ? ALL_CPUS : '1', String(origin.pid)], { stdio: 'ignore' });
      for (let round = 1; round <= rounds; round++) {
        const list = targetsOf(mode);
        // Rotate the order each round so no target always runs first (or on a warmer machine).
        const order = list.map((_, i) => list[(i + round - 1) % list.length]);
        for (const target of order) {
          log(`${mode} round ${round}: ${target}`);
          const { port, proc } = await startTarget(target, dir, originPorts, mode);
          if (proc) started.push(proc);
          try {
            for (const s of scenariosOf(mode)) {
              if (!scenarioApplies(target, s)) continue;
              const scenario = SCENARIOS[s];
              const cpuList = mode === 'multi' ? ALL_CPUS : scenario.proxyCpu;
              if (proc) for (const pid of processTreeOf(proc.pid)) execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
              const warm = target === 'weldr-1000' || target === 'nginx-1000' ? Math.max(warmup, LARGE_POOL_WARMUP) : warmup;
              if (warm > 0) runWrk(port, scenario, warm, mode);
              const pid = proc ? proc.pid : origin.pid;
              const sockets0 = proc ? treeSockets(pid) : null;
              const cpu0 = treeCpuSeconds(pid);
              const ocpu0 = treeCpuSeconds(origin.pid);
              const wrk0 = childrenCpuSeconds();
              const r = runWrk(port, scenario, duration, mode);
              const wrkCpu = childrenCpuSeconds() - wrk0;
              const cpu = treeCpuSeconds(pid) - cpu0;
              const ocpu = treeCpuSeconds(origin.pid) - ocpu0;
              // Connections the target opened during the measurement and still holds
              // (origin connections: keep-alive reuse; wrk's stay open throughout).
              let opened = 0;
              if (sockets0 !== null) for (const s of treeSockets(pid)) if (!sockets0.has(s)) opened++;
              const rps = r.requests / (r.durationUs / 1e6);
              const row = {
                mode, round, target, scenario: s, rps, ...r,
                cpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests),
                cpuUtil: cpu / (r.durationUs / 1e6),
                originCpuUsPerReq: (ocpu * 1e6) / Math.max(1, r.requests),
                socketsOpened: opened,
                // What the load generator and the origin took of the machine meanwhile
                // (multi mode: the cores a proxy could not have).
                wrkUtil: wrkCpu / (r.durationUs / 1e6),
                originUtil: ocpu / (r.durationUs / 1e6),
                mibPerSec: r.bytes / (r.durationUs / 1e6) / (1024 * 1024),
                load: loadavg()[0],
              };
              results.push(row);
              if (target === 'weldr' && s === 'small' && proc) memory[mode] = treeRssKiB(proc.pid);
              log(`  ${s}: ${rps.toFixed(0)} req/s p50 ${r.p50}µs p99 ${r.p99}µs p99.9 ${r.p999}µs cpu ${row.cpuUsPerReq.toFixed(1)}µs/req errors ${r.connectErrors + r.readErrors + r.writeErrors + r.timeouts} non2xx ${r.non2xx} load ${row.load.toFixed(1)}`);
            }
          } finally {
            if (proc) await stop(proc, 15_000);
          }
        }
      }
    }
  } finally {
    for (const p of started.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }

  const table = summarise(results, memory);
  process.stdout.write(table + '\n');
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ date: new Date().toISOString(), duration, rounds, results, memory }, null, 2));
  if (opt.write) writeDoc(join(root, 'docs/benchmarks.md'), '<!-- bench:begin -->', '<!-- bench:end -->', table, { create: true });
}

function processTreeOf(pid) {
  return treeRssKiB(pid).map((p) => p.pid);
}

function summarise(results, memory) {
  const lines = [];
  const machine = `${CORES} × ${cpus()[0]?.model ?? 'cpu'}; node ${process.version}; ${tool('nginx', ['-v'])}; ${tool('haproxy', ['-v']).split(' - ')[0]}; ${tool('wrk', ['--version']).split(' [')[0]}`;
  const loads = results.map((r) => r.load);
  lines.push(`Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
  lines.push(`${duration}s per measurement after ${warmup}s warm-up, ${rounds} round(s), median shown. 1-minute load average during the run: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${CORES} cores.`);
  for (const mode of modes) {
    lines.push('', mode === 'pinned'
      ? `### One core (pinned): origin and wrk (1 thread) on CPU 1; the proxy alone on CPU 0 (weldr: one process, \`--workers 0\`), except at 1 connection where everything shares CPU 1`
      : `### All cores: nothing pinned; weldr \`--workers auto\` (${CORES}), nginx \`worker_processes auto\`, HAProxy \`nbthread ${CORES}\`, sharing the machine with the origin and wrk (${CORES} threads); weldr-single is one weldr process (\`--workers 0\`), nginx-single one nginx worker`);
    for (const s of scenariosOf(mode)) {
      const sc = SCENARIOS[s];
      lines.push('', `**${sc.label}** (\`GET ${sc.path}\`)`, '');
      lines.push('| target | req/s | MiB/s | p50 | p99 | p99.9 | CPU/req | CPU use | vs direct | vs nginx | added p50 | added p99 | errors |');
      lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      const agg = {};
      for (const t of targetsOf(mode)) {
        const rs = results.filter((r) => r.mode === mode && r.target === t && r.scenario === s);
        if (rs.length === 0) continue;
        agg[t] = {
          rps: median(rs.map((r) => r.rps)),
          mib: median(rs.map((r) => r.mibPerSec)),
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          p999: median(rs.map((r) => r.p999)),
          cpu: median(rs.map((r) => r.cpuUsPerReq)),
          util: median(rs.map((r) => r.cpuUtil)),
          opened: median(rs.map((r) => r.socketsOpened ?? 0)),
          wrkUtil: median(rs.map((r) => r.wrkUtil ?? 0)),
          originUtil: median(rs.map((r) => r.originUtil ?? 0)),
          errors: rs.reduce((n, r) => n + r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx, 0),
        };
      }
      for (const t of targetsOf(mode)) {
        const a = agg[t];
        if (!a) continue;
        const vsDirect = agg.direct ? `${((100 * a.rps) / agg.direct.rps).toFixed(0)}%` : '–';
        const vsNginx = agg.nginx ? `${((100 * a.rps) / agg.nginx.rps).toFixed(0)}%` : '–';
        const addP50 = agg.direct && t !== 'direct' ? `${(a.p50 - agg.direct.p50).toFixed(0)} µs` : '–';
        const addP99 = agg.direct && t !== 'direct' ? `${(a.p99 - agg.direct.p99).toFixed(0)} µs` : '–';
        const cpuLabel = t === 'direct' ? `${a.cpu.toFixed(1)} µs (origin)` : `${a.cpu.toFixed(1)} µs`;
        lines.push(`| ${t} | ${a.rps.toFixed(0)} | ${a.mib.toFixed(1)} | ${a.p50} µs | ${a.p99} µs | ${a.p999} µs | ${cpuLabel} | ${(a.util * 100).toFixed(0)}% | ${vsDirect} | ${vsNginx} | ${addP50} | ${addP99} | ${a.errors} |`);
      }
      const ratios = [];
      if (agg.weldr && agg['weldr-log']) ratios.push(`access log on/off: ${((100 * agg['weldr-log'].rps) / agg.weldr.rps).toFixed(1)}% of the req/s, ${(agg['weldr-log'].cpu - agg.weldr.cpu).toFixed(1)} µs CPU/req added`);
      if (agg.weldr && agg['weldr-1000']) ratios.push(`1,000 origins vs 2: ${((100 * agg['weldr-1000'].rps) / agg.weldr.rps).toFixed(1)}% of the req/s, ${(agg['weldr-1000'].cpu - agg.weldr.cpu).toFixed(1)} µs CPU/req added (connections opened during the measurement: ${agg['weldr-1000'].opened} vs ${agg.weldr.opened})`);
      if (agg.nginx && agg['nginx-1000']) ratios.push(`nginx, 1,000 origins vs 1: ${((100 * agg['nginx-1000'].rps) / agg.nginx.rps).toFixed(1)}% of the req/s, ${(agg['nginx-1000'].cpu - agg.nginx.cpu).toFixed(1)} µs CPU/req added (connections opened during the measurement: ${agg['nginx-1000'].opened} vs ${agg.nginx.opened})`);
      if (agg.weldr && agg.floor) ratios.push(`weldr above the node:http + undici floor: ${(agg.weldr.cpu - agg.floor.cpu).toFixed(1)} µs CPU/req (${((100 * (agg.weldr.cpu - agg.floor.cpu)) / agg.weldr.cpu).toFixed(0)}% of weldr's), ${((100 * agg.weldr.rps) / agg.floor.rps).toFixed(0)}% of the floor's req/s`);
      if (agg.weldr && agg['weldr-single']) ratios.push(`workers vs one process: ${(agg.weldr.rps / agg['weldr-single'].rps).toFixed(2)}×`);
      if (mode === 'multi' && agg.weldr && agg['weldr-single']) {
        // The CPU a proxy could have had: all cores minus what wrk and the origin used in
        // the same measurement. Workers cannot scale past it, whatever they do.
        const left = CORES - agg.weldr.wrkUtil - agg.weldr.originUtil;
        ratios.push(`weldr with workers used ${(agg.weldr.util * 100).toFixed(0)}% CPU of the ${(left * 100).toFixed(0)}% that wrk (${(agg.weldr.wrkUtil * 100).toFixed(0)}%) and the origin (${(agg.weldr.originUtil * 100).toFixed(0)}%) left of ${CORES} cores; one process used ${(agg['weldr-single'].util * 100).toFixed(0)}%`);
      }
      if (agg.nginx && agg['nginx-single']) ratios.push(`nginx worker_processes auto vs 1 (the same machine's yardstick for the workers' figure): ${(agg.nginx.rps / agg['nginx-single'].rps).toFixed(2)}×`);
      if (ratios.length) lines.push('', ratios.join('; ') + '.');
    }
    const mem = memory[mode];
    if (mode === 'multi' && mem) {
      lines.push('', `weldr's resident memory after the small-body run: ${mem.map((m, i) => `${i === 0 ? 'node process' : `worker ${i}`} ${(m.rssKiB / 1024).toFixed(0)} MiB`).join(', ')}.`);
    }
  }
  return lines.join('\n');
}

function tool(cmd, args) {
  const r = spawnSync(bin(cmd), args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n')[0].trim();
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
