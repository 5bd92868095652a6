// Configurations for the reference proxies and the origin. Each proxy does the same
// header work weldr does (X-Forwarded-For/-Proto/-Host), keeps origin connections
// alive, runs one worker/thread and writes no access log, so the comparison is fair.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Makes in `dir` what the configurations below name: nginx's temp directories and the origin's 1 MiB body. */
export function writeOriginFiles(dir) {
  for (const d of ['tmp-body', 'tmp-proxy', 'tmp-origin-body']) mkdirSync(join(dir, d));
  // 1 MiB of deterministic bytes.
  const large = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
  writeFileSync(join(dir, 'large.bin'), large);
}

/** The origin: nginx serving a small body and a 1 MiB file; it is never the bottleneck. */
export function originNginx({ dir, port, extraPorts = [] }) {
  const extra = extraPorts.map((p) => `    listen 127.0.0.1:${p};`).join('\n');
  return `
worker_processes 1;
master_process off;
daemon off;
pid ${dir}/origin.pid;
error_log ${dir}/origin-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/tmp-origin-body;
  server {
    listen 127.0.0.1:${port} backlog=4096;
${extra}
    location = / { default_type text/plain; return 200 "hello world\\n"; }
    location = /large { default_type application/octet-stream; alias ${dir}/large.bin; }
  }
}
`;
}

/**
 * workers: 1 (one process, as pinned) or 'auto' (one worker per core, with a master).
 * originPorts: the upstream's servers (default: originPort alone). With many (nginx-1000)
 * the upstream picks at random — nginx's round-robin walks every server on each pick
 * (smooth weighted round-robin), which would measure that loop rather than the spread —
 * and keeps up to two idle connections per server (the cache is shared and evicts the
 * least recently used: sized to the server count, two requests meeting on one server
 * made it close and reopen connections all through the measurement).
 */
export function proxyNginx({ dir, port, originPort, originPorts = [originPort], workers = 1 }) {
  const many = originPorts.length > 1;
  return `
worker_processes ${workers};
master_process ${workers === 1 ? 'off' : 'on'};
daemon off;
pid ${dir}/proxy-nginx.pid;
error_log ${dir}/proxy-nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  upstream origin {
${many ? '    random;\n' : ''}${originPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive ${many ? 2 * originPorts.length + 128 : 128};
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`;
}

export function proxyHaproxy({ port, originPort, threads = 1 }) {
  return `
global
  nbthread ${threads}
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
frontend fe
  bind 127.0.0.1:${port}
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:${originPort}
`;
}
