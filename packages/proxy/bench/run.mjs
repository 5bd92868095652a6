// Local benchmark: wrk → direct origin vs weldr vs nginx (and haproxy) on 127.0.0.1.
// The proxy under test is pinned to CPU 0; the origin (nginx, one worker) and wrk share
// CPU 1. CPU cost per request comes from /proc/<pid>/stat utime+stime deltas.
// usage: node packages/proxy/bench/run.mjs [--runs 3] [--duration 8] [--conns 50]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : args[i + 1];
};
const RUNS = Number(opt('runs', 3));
const DURATION = Number(opt('duration', 8));
const CONNS = Number(opt('conns', 50));
const ONLY = opt('only', 'direct,weldr,nginx,haproxy').split(',');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const dir = mkdtempSync(join(tmpdir(), 'weldr-bench-'));
const children = [];

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const waitPort = async (port) => {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => (c.destroy(), r(true)));
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
};

// taskset execs the command, so the child's pid is the measured process itself.
function start(cpu, cmd, argv, extra = {}) {
  const child = spawn('taskset', ['-c', String(cpu), cmd, ...argv], { stdio: ['ignore', 'ignore', 'inherit'], ...extra });
  children.push(child);
  return child;
}

const cpuTicks = (pid) => {
  // fields after the command name: state is field 3; utime 14, stime 15 (1-based)
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
};

function wrk(port, conns, duration) {
  const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${conns}`, `-d${duration}s`, '--latency', `http://127.0.0.1:${port}/`], {
    encoding: 'utf8',
  });
  const reqs = Number(/(\d+) requests in/.exec(out)[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const lat = (p) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6);
  };
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  return { reqs, rps, p50: lat(50), p99: lat(99), errors: Number(errors) };
}

async function measure(name, port, pid) {
  wrk(port, CONNS, 2); // warm-up (JIT, keep-alive pools)
  const loaded = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = pid ? cpuTicks(pid) : 0;
    const r = wrk(port, CONNS, DURATION);
    const t1 = pid ? cpuTicks(pid) : 0;
    r.cpuUs = pid ? (((t1 - t0) / CLK_TCK) * 1e6) / r.reqs : NaN;
    loaded.push(r);
  }
  const single = [];
  for (let i = 0; i < RUNS; i++) single.push(wrk(port, 1, Math.max(3, Math.floor(DURATION / 2))));
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    name,
    rps: med(loaded.map((r) => r.rps)),
    cpuUs: med(loaded.map((r) => r.cpuUs)),
    errors: loaded.reduce((a, r) => a + r.errors, 0),
    p50_1c: med(single.map((r) => r.p50)),
    p99_1c: med(single.map((r) => r.p99)),
    runs: loaded.map((r) => Math.round(r.rps)),
  };
}

function nginxConf(port, body) {
  return `worker_processes 1; master_process off; daemon off; pid ${dir}/nginx-${port}.pid;
error_log ${dir}/nginx-${port}.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  ${body} }`;
}

try {
  const originPort = await freePort();
  const originConf = join(dir, 'origin.conf');
  writeFileSync(originConf, nginxConf(originPort, `server { listen 127.0.0.1:${originPort}; location / { return 200 "hello world\\n"; } }`));
  start(1, '/usr/sbin/nginx', ['-c', originConf, '-e', join(dir, 'origin.err')]);
  await waitPort(originPort);
  const results = [];
  if (ONLY.includes('direct')) results.push(await measure('direct', originPort, null));

  /** Start a proxy pinned to CPU 0, measure it, stop it. */
  const proxied = async (name, port, cmd, argv, extra) => {
    if (!ONLY.includes(name)) return;
    const child = start(0, cmd, argv, extra);
    await waitPort(port);
    results.push(await measure(name, port, child.pid));
    child.kill('SIGTERM');
  };
  let port = await freePort();
  await proxied('weldr', port, process.execPath, ['--import=tsx', '--conditions=@weldr/source', join(here, 'weldr-server.ts'), String(port), String(originPort)], {
    cwd: join(here, '..', '..', '..'),
  });
  port = await freePort();
  const nginxProxyConf = join(dir, 'proxy.conf');
  writeFileSync(
    nginxProxyConf,
    nginxConf(port, `upstream o { server 127.0.0.1:${originPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }`),
  );
  await proxied('nginx', port, '/usr/sbin/nginx', ['-c', nginxProxyConf, '-e', join(dir, 'proxy.err')]);
  port = await freePort();
  const haproxyConf = join(dir, 'haproxy.cfg');
  writeFileSync(
    haproxyConf,
    `global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  option forwardfor\n  http-reuse always\nfrontend f\n  bind 127.0.0.1:${port}\n  default_backend b\nbackend b\n  server o 127.0.0.1:${originPort}\n`,
  );
  await proxied('haproxy', port, '/usr/sbin/haproxy', ['-f', haproxyConf, '-db']);
  const nginx = results.find((r) => r.name === 'nginx');
  console.log(`runs=${RUNS} duration=${DURATION}s conns=${CONNS} (medians)`);
  console.log('name      req/s   cpu-us/req  p50@1c(us)  p99@1c(us)  %nginx  errors  runs');
  for (const r of results) {
    console.log(
      `${r.name.padEnd(8)} ${String(Math.round(r.rps)).padStart(7)} ${(Number.isNaN(r.cpuUs) ? '-' : r.cpuUs.toFixed(1)).padStart(11)} ${String(r.p50_1c).padStart(11)} ${String(r.p99_1c).padStart(11)} ${(nginx ? ((r.rps / nginx.rps) * 100).toFixed(0) + '%' : '-').padStart(7)} ${String(r.errors).padStart(7)}  ${r.runs.join(',')}`,
    );
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
}
