#!/usr/bin/env node
// The floor under weldr's request path: the least a reverse proxy built on node:http
// and undici can do per request, measured by bench/run.js as the target `floor`.
// One node:http server; each request goes to an undici Pool (round-robin over the
// origins, keep-alive, one request per connection at a time, as weldr's) through
// undici's raw dispatch handler (raw header Buffers, no per-response header object),
// and the origin's head and body go back with res.writeHead + res.end (a small body in
// the same write as the head, a larger one streamed). Nothing
// else: no request filtering (smuggling, hop-by-hop), no X-Forwarded-*/Via, no limits
// or timeouts of our own, no retries, no health, no stats, no pipelining order, no
// backpressure. Not a proxy to run: what weldr costs above it is the price of those.
//
//   node bench/floor.js PORT ORIGIN_PORT[,ORIGIN_PORT…] [--forwarded]
//
// --forwarded adds the request fields weldr adds (X-Forwarded-For/-Proto/-Host, Via)
// and a Via on the response: what those fields cost node and undici on their own.
import http from 'node:http';
import { Pool } from 'undici';
import { setFlagsFromString } from 'node:v8';

const [port, origins] = [Number(process.argv[2]), (process.argv[3] ?? '').split(',').map(Number)];
const forwarded = process.argv[4] === '--forwarded';
if (!Number.isInteger(port) || origins.length === 0 || !origins.every(Number.isInteger)) {
  process.stderr.write('usage: node bench/floor.js PORT ORIGIN_PORT[,ORIGIN_PORT…]\n');
  process.exit(2);
}
// The same glibc heap setting weldr makes at start (packages/proxy/src/malloc.ts): without
// it, body buffers freed in bulk by the GC are returned to the kernel and faulted in again.
void Buffer.alloc(30 * 1024 * 1024);
// And the same V8 setting: dead body buffers freed right after each scavenge rather than
// by a background thread that a busy core runs late (malloc.ts, GC_FLAG).
setFlagsFromString('--no-concurrent-array-buffer-sweeping');
const pools = origins.map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: 512, pipelining: 1 }));
let next = 0;

class Handler {
  constructor(res) {
    this.res = res;
    this.held = null;
    this.streaming = false;
  }
  onConnect() {}
  onHeaders(status, raw, _resume, statusText) {
    const headers = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      // The one field node would add again (it frames the response itself).
      if (name.length === 10 && name.toLowerCase() === 'connection') continue;
      headers.push(name, raw[i + 1].toString('latin1'));
    }
    if (forwarded) headers.push('via', '1.1 floor');
    this.res.writeHead(status, statusText || undefined, headers);
    return true;
  }
  // The first chunk goes out with the end when it is the whole body (head and body in
  // one write, as weldr does); a longer body streams.
  onData(chunk) {
    if (!this.streaming && this.held === null) {
      this.held = chunk;
      return true;
    }
    if (this.held !== null) this.res.write(this.held);
    this.held = null;
    this.streaming = true;
    this.res.write(chunk);
    return true;
  }
  onComplete() {
    if (this.held !== null) this.res.end(this.held);
    else this.res.end();
  }
  onError() {
    if (!this.res.headersSent) this.res.writeHead(502, ['content-length', '0']);
    this.res.end();
  }
}

http
  .createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    const pool = pools[next];
    next = (next + 1) % pools.length;
    let headers = req.rawHeaders;
    if (forwarded) {
      const host = req.headers.host ?? '';
      headers = [...headers, 'x-forwarded-for', req.socket.remoteAddress ?? '', 'x-forwarded-proto', 'http', 'x-forwarded-host', host, 'via', '1.1 floor'];
    }
    pool.dispatch({ path: req.url, method: req.method, headers, body: null }, new Handler(res));
  })
  .listen(port, '127.0.0.1');
// A clean exit on SIGTERM (bench/run.js stops it so; --cpu-prof writes its profile then).
process.on('SIGTERM', () => process.exit(0));
