#!/usr/bin/env node
// What a purpose-built HTTP/1.1 path could save: bench/floor.js's least proxy, with either
// side swapped for a path written on node's own llhttp binding (the HTTPParser that
// node:http uses) and plain net sockets. Measured by bench/floors.js, in one run with
// nginx, bench/floor.js and weldr.
//
//   node bench/floor-raw.js PORT ORIGIN_PORT[,ORIGIN_PORT…] --server raw|http --client raw|undici
//
// --server http: node:http's server (IncomingMessage, ServerResponse), as weldr.
// --server raw:  llhttp reading straight from the socket's handle (parser.consume, as
//                node:http does), the response head written as one string with the body.
// --client undici: undici's raw dispatch, as weldr and bench/floor.js.
// --client raw:  keep-alive net sockets per origin, the request head written as one
//                string, the response parsed by llhttp.
// Every variant adds the fields weldr adds (X-Forwarded-For/-Proto/-Host, Via both ways).
//
// NOT a proxy to run, and not one to copy from: GET and HEAD-less requests without bodies
// only, whole responses held in memory, no limits, timeouts, errors, pipelining,
// upgrades, 1xx, keep-alive checks or backpressure. It measures the cost of the
// machinery, not a product; what a real path would add on top is the point of
// docs/benchmarks.md's "A purpose-built HTTP/1.1 path".
import net from 'node:net';
import http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { Pool } from 'undici';

const require = createRequire(import.meta.url);
const { HTTPParser, methods } = require('_http_common');

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { server: { type: 'string', default: 'raw' }, client: { type: 'string', default: 'raw' } },
});
const port = Number(positionals[0]);
const origins = (positionals[1] ?? '').split(',').map(Number);
if (!Number.isInteger(port) || !origins.every(Number.isInteger) || !['raw', 'http'].includes(opt.server) || !['raw', 'undici'].includes(opt.client)) {
  process.stderr.write('usage: node bench/floor-raw.js PORT ORIGIN_PORT[,ORIGIN_PORT…] --server raw|http --client raw|undici\n');
  process.exit(2);
}
// The same process settings as weldr and bench/floor.js (packages/proxy/src/malloc.ts).
void Buffer.alloc(30 * 1024 * 1024);
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

const kOnHeaders = HTTPParser.kOnHeaders | 0;
const kOnHeadersComplete = HTTPParser.kOnHeadersComplete | 0;
const kOnBody = HTTPParser.kOnBody | 0;
const kOnMessageComplete = HTTPParser.kOnMessageComplete | 0;
const kOnExecute = HTTPParser.kOnExecute | 0;

const isConnection = (name) => name.length === 10 && name.toLowerCase() === 'connection';

/** Where a response goes: the raw client socket, or node:http's ServerResponse. */
function deliver(to, status, statusText, headerPairs, body) {
  if (to instanceof http.ServerResponse) {
    const out = [];
    for (let i = 0; i < headerPairs.length; i += 2) if (!isConnection(headerPairs[i])) out.push(headerPairs[i], headerPairs[i + 1]);
    out.push('via', '1.1 floor');
    to.writeHead(status, statusText || undefined, out);
    if (body.length === 1) to.end(body[0]);
    else {
      for (const b of body) to.write(b);
      to.end();
    }
    return;
  }
  if (to.destroyed) return;
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (let i = 0; i < headerPairs.length; i += 2) if (!isConnection(headerPairs[i])) head += `${headerPairs[i]}: ${headerPairs[i + 1]}\r\n`;
  head += 'via: 1.1 floor\r\n\r\n';
  to.cork();
  to.write(head, 'latin1');
  for (const b of body) to.write(b);
  to.uncork();
}

// ---- origin side ----------------------------------------------------------------------

/** One keep-alive connection to an origin, one request at a time. */
class OriginConnection {
  constructor(pool) {
    this.pool = pool;
    this.to = null;
    this.headers = [];
    this.body = [];
    this.status = 0;
    this.statusText = '';
    this.socket = net.connect(pool.port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {});
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    parser[kOnHeaders] = (h) => {
      for (let i = 0; i < h.length; i++) this.headers.push(h[i]);
    };
    parser[kOnHeadersComplete] = (_maj, _min, h, _method, _url, status, statusText) => {
      if (h !== undefined) for (let i = 0; i < h.length; i++) this.headers.push(h[i]);
      this.status = status;
      this.statusText = statusText;
      return 0;
    };
    parser[kOnBody] = (b) => {
      this.body.push(b);
    };
    parser[kOnMessageComplete] = () => this.#complete();
    this.socket.on('data', (d) => {
      if (parser.execute(d) instanceof Error) this.socket.destroy();
    });
  }

  send(to, head) {
    this.to = to;
    this.socket.write(head, 'latin1');
  }

  #complete() {
    const { to, status, statusText, headers, body } = this;
    this.to = null;
    this.headers = [];
    this.body = [];
    this.pool.idle.push(this);
    deliver(to, status, statusText, headers, body);
  }
}

const rawPools = origins.map((p) => ({ port: p, idle: [] }));
const undiciPools = origins.map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: 512, pipelining: 1 }));
let next = 0;

class UndiciHandler {
  constructor(to) {
    this.to = to;
    this.status = 0;
    this.statusText = '';
    this.headers = [];
    this.body = [];
  }
  onConnect() {}
  onHeaders(status, raw, _resume, statusText) {
    this.status = status;
    this.statusText = statusText;
    for (let i = 0; i < raw.length; i++) this.headers.push(raw[i].toString('latin1'));
    return true;
  }
  onData(chunk) {
    this.body.push(chunk);
    return true;
  }
  onComplete() {
    deliver(this.to, this.status, this.statusText, this.headers, this.body);
  }
  onError() {
    if (this.to instanceof http.ServerResponse) {
      if (!this.to.headersSent) this.to.writeHead(502, ['content-length', '0']);
      this.to.end();
    } else this.to.destroy();
  }
}

/** Sends one request (header pairs as strings) to the next origin, its response to `to`. */
function forward(to, method, url, pairs, remoteAddress) {
  let host = '';
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].length === 4 && pairs[i].toLowerCase() === 'host') host = pairs[i + 1];
  const i = next;
  next = (next + 1) % origins.length;
  if (opt.client === 'undici') {
    const headers = [...pairs, 'x-forwarded-for', remoteAddress ?? '', 'x-forwarded-proto', 'http', 'x-forwarded-host', host, 'via', '1.1 floor'];
    undiciPools[i].dispatch({ path: url, method, headers, body: null }, new UndiciHandler(to));
    return;
  }
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (let k = 0; k < pairs.length; k += 2) head += `${pairs[k]}: ${pairs[k + 1]}\r\n`;
  head += `x-forwarded-for: ${remoteAddress}\r\nx-forwarded-proto: http\r\nx-forwarded-host: ${host}\r\nvia: 1.1 floor\r\n\r\n`;
  const pool = rawPools[i];
  (pool.idle.pop() ?? new OriginConnection(pool)).send(to, head);
}

// ---- client side ----------------------------------------------------------------------

if (opt.server === 'http') {
  http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => forward(res, req.method, req.url, req.rawHeaders, req.socket.remoteAddress)).listen(port, '127.0.0.1');
} else {
  net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => {});
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, 0, 0);
    let pairs = [];
    parser[kOnHeaders] = (h) => {
      for (let i = 0; i < h.length; i++) pairs.push(h[i]);
    };
    parser[kOnHeadersComplete] = (_maj, _min, h, method, url) => {
      if (h !== undefined) for (let i = 0; i < h.length; i++) pairs.push(h[i]);
      const these = pairs;
      pairs = [];
      forward(socket, methods[method], url, these, socket.remoteAddress);
      return 0;
    };
    parser[kOnBody] = () => {};
    parser[kOnMessageComplete] = () => {};
    parser[kOnExecute] = (ret) => {
      if (ret instanceof Error) socket.destroy();
    };
    parser.consume(socket._handle);
  }).listen(port, '127.0.0.1');
}
// A clean exit on SIGTERM (bench/floors.js stops it so).
process.on('SIGTERM', () => process.exit(0));
