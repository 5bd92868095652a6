#!/usr/bin/env node
// Where the proxy's floor is (issue 13, "decide whether a purpose-built HTTP/1.1 path is
// worth its risk"): in ONE run, pinned as bench/run.js pins (the proxy alone on CPU 0,
// the origin nginx and wrk on CPU 1), a small body at 50 keep-alive connections through
//   nginx          one worker
//   floor          bench/floor.js --forwarded: node:http + undici, nothing else
//   http+raw       bench/floor-raw.js: node:http's server, origin side on llhttp + net
//   raw+undici     bench/floor-raw.js: client side on llhttp + net, undici to the origin
//   raw+raw        bench/floor-raw.js: both sides on llhttp + net
//   weldr          one process (--workers 0), every feature on
// Prints req/s, the ratio to nginx, CPU time per request of the proxy's process, p50/p99.
// Every node variant adds the fields weldr adds (X-Forwarded-*, Via). Not a test:
// nothing passes or fails on a number.
//
//   npm run bench:floors -- [--duration 5] [--warmup 2] [--rounds 3] [--targets …] [--write]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, httpStatus, startPinned, stop, waitFor } from './lib/procs.js';
import { originNginx, proxyNginx, writeOriginFiles } from './lib/configs.js';
import { bin, median, scriptHelpers } from './lib/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { fail, log, positiveInt, list, ensureTools, writeDoc } = scriptHelpers('bench:floors');
const ALL_TARGETS = ['nginx', 'floor', 'http+raw', 'raw+undici', 'raw+raw', 'weldr'];
const CONNECTIONS = 50;

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    targets: { type: 'string', default: ALL_TARGETS.join(',') },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 15).join('\n') + '\n');
  process.exit(0);
}
const duration = positiveInt('duration', opt.duration);
const warmup = Number(opt.warmup);
if (!Number.isFinite(warmup) || warmup < 0) fail(`--warmup must be a number of seconds ≥ 0, got ${JSON.stringify(opt.warmup)}`);
const rounds = positiveInt('rounds', opt.rounds);
const targets = list('targets', opt.targets, ALL_TARGETS);

function runWrk(port, seconds) {
  const out = execFileSync('taskset', ['-c', '1', bin('wrk'), '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', join(root, 'bench/wrk-report.lua'), `http://127.0.0.1:${port}/`], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk printed no report:\n${out}`);
  return JSON.parse(line);
}

async function startTarget(name, dir, originPorts) {
  const port = await freePort();
  const floorRaw = (server, client) => startPinned(name, '0', process.execPath, [join(root, 'bench/floor-raw.js'), String(port), originPorts.join(','), '--server', server, '--client', client]);
  let proc;
  if (name === 'nginx') {
    const conf = join(dir, 'proxy-nginx.conf');
    writeFileSync(conf, proxyNginx({ dir, port, originPort: originPorts[0], originPorts, workers: 1 }));
    proc = startPinned(name, '0', bin('nginx'), ['-p', dir, '-c', conf]);
  } else if (name === 'floor') proc = startPinned(name, '0', process.execPath, [join(root, 'bench/floor.js'), String(port), originPorts.join(','), '--forwarded']);
  else if (name === 'http+raw') proc = floorRaw('http', 'raw');
  else if (name === 'raw+undici') proc = floorRaw('raw', 'undici');
  else if (name === 'raw+raw') proc = floorRaw('raw', 'raw');
  else {
    const admin = await freePort();
    proc = startPinned(name, '0', process.execPath, [
      join(root, 'packages/node/bin/weldr.js'), 'start', '--id', 'bench', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`,
      '--store', 'memory', '--log-level', 'warn', '--workers', '0',
    ]);
    await waitFor('weldr admin', async () => (await fetch(`http://127.0.0.1:${admin}/health`)).ok, 60_000).catch((e) => {
      throw new Error(`${e.message}\n${proc.output()}`);
    });
    const res = await fetch(`http://127.0.0.1:${admin}/servers/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commands: originPorts.map((p) => ({ type: 'AddServer', ip: '127.0.0.1', port: p })) }),
    });
    if (res.status >= 300) throw new Error(`adding the origins to weldr: ${res.status} ${await res.text()}`);
  }
  await waitFor(`${name} proxying`, async () => (await httpStatus(port, '/')) === 200, 60_000).catch((e) => {
    throw new Error(`${e.message}\n${proc.output()}`);
  });
  return { port, proc };
}

async function main() {
  ensureTools({ wrk: 'wrk', nginx: 'nginx-light', taskset: 'util-linux' });
  if (cpus().length < 2) log('warning: fewer than 2 CPUs; pinning cannot separate the proxy from wrk and the origin');
  if (targets.includes('weldr') && !existsSync(join(root, 'packages/node/dist/src/main.js'))) fail('weldr is not built: run `npm run build` (npm run bench:floors does it for you)');
  const dir = mkdtempSync(join(tmpdir(), 'weldr-floors-'));
  writeOriginFiles(dir);
  const originPorts = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'origin.conf'), originNginx({ dir, port: originPorts[0], extraPorts: originPorts.slice(1) }));
  const origin = startPinned('origin', '1', bin('nginx'), ['-p', dir, '-c', join(dir, 'origin.conf')]);
  const results = [];
  try {
    await waitFor('origin', async () => (await httpStatus(originPorts[0], '/')) === 200);
    for (let round = 1; round <= rounds; round++) {
      // Rotate the order each round so no target always runs first.
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]);
      for (const target of order) {
        const { port, proc } = await startTarget(target, dir, originPorts);
        try {
          if (warmup > 0) runWrk(port, warmup);
          const cpu0 = cpuSeconds(proc.pid);
          const r = runWrk(port, duration);
          const cpu = cpuSeconds(proc.pid) - cpu0;
          const errors = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx;
          const rps = r.requests / (r.durationUs / 1e6);
          results.push({ round, target, rps, cpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests), p50: r.p50, p99: r.p99, errors, load: loadavg()[0] });
          log(`round ${round} ${target}: ${rps.toFixed(0)} req/s, ${((cpu * 1e6) / Math.max(1, r.requests)).toFixed(1)} µs CPU/req, errors ${errors}`);
        } finally {
          await stop(proc, 15_000);
        }
      }
    }
  } finally {
    await stop(origin);
    rmSync(dir, { recursive: true, force: true });
  }
  const table = summarise(results);
  process.stdout.write(table + '\n');
  if (opt.write) writeDoc(join(root, 'docs/benchmarks.md'), '<!-- bench-floors:begin -->', '<!-- bench-floors:end -->', table);
}

function summarise(results) {
  const of = (t, k) => median(results.filter((r) => r.target === t).map((r) => r[k]));
  const nginx = targets.includes('nginx') ? of('nginx', 'rps') : null;
  const loads = results.map((r) => r.load);
  const lines = [
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; node ${process.version}`,
    `Small body, ${CONNECTIONS} connections, the proxy alone on CPU 0; ${duration}s per measurement after ${warmup}s warm-up, ${rounds} round(s), median shown; 1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
    '',
    '| target | req/s | × nginx | CPU per request | p50 | p99 | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const t of targets) {
    const rps = of(t, 'rps');
    lines.push(`| ${t} | ${rps.toFixed(0)} | ${nginx === null ? '–' : (rps / nginx).toFixed(2)} | ${of(t, 'cpuUsPerReq').toFixed(1)} µs | ${of(t, 'p50')} µs | ${of(t, 'p99')} µs | ${results.filter((r) => r.target === t).reduce((a, r) => a + r.errors, 0)} |`);
  }
  return lines.join('\n');
}

main().catch((e) => fail(e.stack ?? String(e)));
