#!/usr/bin/env node
// TLS termination benchmark (issue 9 item 4): in ONE run, with the same pinning, the same
// certificate (EC P-256, made here with openssl) and the same negotiated protocol and
// cipher (checked with `openssl s_client` and printed), measure
//   weldr      wrk -> weldr (cleartext)        -> origin
//   weldr-tls  wrk -> weldr (--listen-tls)     -> origin
//   nginx      wrk -> nginx (cleartext)        -> origin
//   nginx-tls  wrk -> nginx (listen ssl)       -> origin
// on a small body at 50 keep-alive connections (record encryption), a small body with a
// new connection per request (a full handshake each: `Connection: close`), a 1 MiB body,
// and one connection (added latency). The origin is cleartext nginx. Prints req/s,
// p50/p99, CPU per request, and what TLS adds to each proxy (CPU and latency) next to
// weldr-tls vs nginx-tls. Not a test: nothing passes or fails on a number.
//
//   npm run bench:tls -- [--duration 10] [--warmup 3] [--rounds 1] [--targets weldr,weldr-tls,nginx,nginx-tls]
//                        [--scenarios small,handshake,large,latency] [--write] [--json out.json]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startPinned, stop, cpuSeconds, freePort, waitFor, httpStatus } from './lib/procs.js';
import { originNginx, proxyNginx, writeOriginFiles } from './lib/configs.js';
import { bin, median, scriptHelpers } from './lib/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { fail, log, positiveInt, list, ensureTools, writeDoc } = scriptHelpers('bench:tls');
const ALL_TARGETS = ['weldr', 'weldr-tls', 'nginx', 'nginx-tls'];

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    targets: { type: 'string', default: ALL_TARGETS.join(',') },
    scenarios: { type: 'string', default: 'small,handshake,large,latency' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 16).join('\n') + '\n');
  process.exit(0);
}
const duration = positiveInt('duration', opt.duration);
const warmup = Number(opt.warmup);
const rounds = positiveInt('rounds', opt.rounds);
const targets = list('targets', opt.targets, ALL_TARGETS);
const scenarioNames = list('scenarios', opt.scenarios, ['small', 'handshake', 'large', 'latency']);

// As in run.js: throughput scenarios give the proxy CPU 0 alone (origin and wrk on CPU 1);
// at one connection everything shares CPU 1 (a cross-core wake-up costs ~100 µs here).
const SCENARIOS = {
  small: { path: '/', connections: 50, proxyCpu: '0', label: 'small body, 50 keep-alive connections' },
  handshake: { path: '/', connections: 50, proxyCpu: '0', close: true, label: 'small body, a new connection per request (full handshake each), 50 connections' },
  large: { path: '/large', connections: 10, proxyCpu: '0', label: '1 MiB body, 10 connections' },
  latency: { path: '/', connections: 1, proxyCpu: '1', label: 'small body, 1 connection (all on one core)' },
};

/** One EC P-256 certificate (self-signed, CN and SAN bench.test) shared by both proxies. */
function makeCertificate(dir) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'tls.key', '-out', 'tls.crt',
    '-days', '2', '-subj', '/CN=bench.test', '-addext', 'subjectAltName=DNS:bench.test,IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
}

/** nginx terminating TLS with the proxy profile of run.js; protocols and ciphers as weldr's defaults. */
function tlsNginx({ dir, port, originPort, cert, key }) {
  return proxyNginx({ dir, port, originPort })
    .replace(`listen 127.0.0.1:${port} backlog=4096;`, `listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_session_cache off;
    ssl_session_tickets off;`)
    .replace('pid ' + dir + '/proxy-nginx.pid;', 'pid ' + dir + '/proxy-nginx-tls.pid;');
}

function runWrk(url, scenario, seconds) {
  const args = ['-c', '1', bin('wrk'), '-t1', `-c${scenario.connections}`, `-d${seconds}s`, '--timeout', '5s',
    ...(scenario.close ? ['-H', 'Connection: close'] : []),
    '-s', join(root, 'bench/wrk-report.lua'), `${url}${scenario.path}`];
  const out = execFileSync('taskset', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk printed no report:\n${out}`);
  return JSON.parse(line);
}

/** The protocol and cipher a default OpenSSL client (as wrk is) negotiates with `port`. */
function negotiated(port) {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'bench.test'], { input: '', encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout}${r.stderr}`;
  const m = /New, (TLSv[\d.]+), Cipher is (\S+)/.exec(text);
  return m ? `${m[1]} ${m[2]}` : 'unknown';
}

async function httpsReady(port) {
  // node's fetch has no per-request CA option: a raw probe through openssl is enough.
  return negotiated(port) !== 'unknown';
}

async function startTarget(name, dir, originPort, tls) {
  const port = await freePort();
  let proc;
  if (name === 'nginx') {
    const conf = join(dir, 'proxy-nginx.conf');
    writeFileSync(conf, proxyNginx({ dir, port, originPort }));
    proc = startPinned(name, '0', bin('nginx'), ['-p', dir, '-c', conf]);
  } else if (name === 'nginx-tls') {
    const conf = join(dir, 'proxy-nginx-tls.conf');
    writeFileSync(conf, tlsNginx({ dir, port, originPort, ...tls }));
    proc = startPinned(name, '0', bin('nginx'), ['-p', dir, '-c', conf]);
  } else {
    const admin = await freePort();
    const plain = name === 'weldr' ? port : await freePort();
    proc = startPinned(name, '0', process.execPath, [
      join(root, 'packages/node/bin/weldr.js'), 'start',
      '--id', 'bench', '--listen', `127.0.0.1:${plain}`, '--admin', `127.0.0.1:${admin}`,
      // One process on the pinned CPU, as bench/run.js's pinned mode: with the default
      // `--workers auto` the node process would hand the listener to workers and the CPU
      // measured here (the node process's) would be none of the proxy's.
      '--store', 'memory', '--log-level', 'warn', '--workers', '0',
      ...(name === 'weldr-tls' ? ['--listen-tls', `127.0.0.1:${port}`, '--tls-cert', tls.cert, '--tls-key', tls.key] : []),
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
    await waitFor('weldr routing', async () => (await httpStatus(plain, '/')) === 200);
  }
  const secure = name.endsWith('-tls');
  await waitFor(`${name} ready`, async () => (secure ? httpsReady(port) : (await httpStatus(port, '/')) === 200)).catch((e) => {
    throw new Error(`${e.message}\n${proc.output()}`);
  });
  return { port, proc, url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}`, cipher: secure ? negotiated(port) : 'cleartext' };
}

async function main() {
  ensureTools({ wrk: 'wrk', nginx: 'nginx-light', taskset: 'util-linux', openssl: 'openssl' });
  if (!existsSync(join(root, 'packages/node/dist/src/main.js'))) fail('weldr is not built: run `npm run build` (npm run bench:tls does it for you)');
  const dir = mkdtempSync(join(tmpdir(), 'weldr-bench-tls-'));
  writeOriginFiles(dir);
  const tls = makeCertificate(dir);

  const originPort = await freePort();
  writeFileSync(join(dir, 'origin.conf'), originNginx({ dir, port: originPort }));
  const origin = startPinned('origin', '1', bin('nginx'), ['-p', dir, '-c', join(dir, 'origin.conf')]);
  const started = [origin];
  const results = [];
  const ciphers = {};
  try {
    await waitFor('origin', async () => (await httpStatus(originPort, '/')) === 200);
    for (let round = 1; round <= rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]);
      for (const target of order) {
        log(`round ${round}: ${target}`);
        const { proc, url, cipher } = await startTarget(target, dir, originPort, tls);
        ciphers[target] = cipher;
        started.push(proc);
        try {
          for (const s of scenarioNames) {
            const scenario = SCENARIOS[s];
            execFileSync('taskset', ['-a', '-p', '-c', scenario.proxyCpu, String(proc.pid)], { stdio: 'ignore' });
            if (warmup > 0) runWrk(url, scenario, warmup);
            const cpu0 = cpuSeconds(proc.pid);
            const r = runWrk(url, scenario, duration);
            const cpu = cpuSeconds(proc.pid) - cpu0;
            const rps = r.requests / (r.durationUs / 1e6);
            results.push({ round, target, scenario: s, rps, ...r, cpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests), cpuUtil: cpu / (r.durationUs / 1e6) });
            log(`  ${s}: ${rps.toFixed(0)} req/s p50 ${r.p50}µs p99 ${r.p99}µs cpu ${((cpu * 1e6) / Math.max(1, r.requests)).toFixed(1)}µs/req errors ${r.connectErrors + r.readErrors + r.writeErrors + r.timeouts} non2xx ${r.non2xx}`);
          }
        } finally {
          await stop(proc);
        }
      }
    }
  } finally {
    for (const p of started.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
  const table = summarise(results, ciphers);
  process.stdout.write(table + '\n');
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ date: new Date().toISOString(), duration, rounds, ciphers, results }, null, 2));
  if (opt.write) writeDoc(join(root, 'docs/benchmarks.md'), '<!-- bench-tls:begin -->', '<!-- bench-tls:end -->', table);
}

function summarise(results, ciphers) {
  const lines = [];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; node ${process.version} (${process.versions.openssl ? `OpenSSL ${process.versions.openssl}` : ''}); ${tool('nginx', ['-V']).split('\n').filter((l) => /nginx version|built with OpenSSL/.test(l)).join(', ')}; ${tool('wrk', ['--version']).split(' [')[0]}`;
  lines.push(`Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine}`);
  lines.push(`${duration}s per measurement after ${warmup}s warm-up, ${rounds} round(s), median shown; one EC P-256 certificate for both; negotiated with an OpenSSL client: ${[...new Set(Object.entries(ciphers).filter(([t]) => t.endsWith('-tls')).map(([t, c]) => `${t} ${c}`))].join(', ')}.`);
  for (const s of scenarioNames) {
    const sc = SCENARIOS[s];
    lines.push('', `**${sc.label}** (\`GET ${sc.path}\`)`, '');
    lines.push('| target | req/s | p50 | p99 | CPU/req | CPU use | TLS adds (CPU/req, p50) | vs nginx-tls | errors |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
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
      const plain = t.endsWith('-tls') ? agg[t.slice(0, -4)] : undefined;
      const adds = plain ? `+${(a.cpu - plain.cpu).toFixed(1)} µs, +${(a.p50 - plain.p50).toFixed(0)} µs` : '–';
      const vs = agg['nginx-tls'] && t.endsWith('-tls') ? `${((100 * a.rps) / agg['nginx-tls'].rps).toFixed(0)}%` : '–';
      lines.push(`| ${t} | ${a.rps.toFixed(0)} | ${a.p50} µs | ${a.p99} µs | ${a.cpu.toFixed(1)} µs | ${(a.util * 100).toFixed(0)}% | ${adds} | ${vs} | ${a.errors} |`);
    }
  }
  return lines.join('\n');
}

function tool(cmd, args) {
  const r = spawnSync(bin(cmd), args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.trim();
}

main().catch((err) => {
  process.stderr.write(`bench:tls: ${err.stack ?? err}\n`);
  process.exit(1);
});
