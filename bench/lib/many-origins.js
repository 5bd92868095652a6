#!/usr/bin/env node
// Many healthy HTTP origins for the cluster benchmark, cheaply: one process listens on
// PORT of the loopback addresses originAddress(from) … originAddress(from + count - 1)
// (127.1.x.y: the whole of 127.0.0.0/8 is local on Linux, and nothing else binds these)
// and answers every request on every connection with the same tiny 200 response,
// parsing nothing but the end of each request head (the benchmark's health checks and
// proxied GETs have no body). A Node http server per address would cost several times
// the CPU per request on this 2-core machine.
//
//   node many-origins.js PORT FROM COUNT    prints "listening N" once all are bound
import net from 'node:net';
import { originAddress } from './origin-address.js';

const port = Number(process.argv[2]);
const from = Number(process.argv[3]);
const count = Number(process.argv[4]);
if (![port, from, count].every(Number.isInteger) || port < 1 || port > 65535 || from < 0 || count < 1 || from + count > 65_000) {
  process.stderr.write('usage: many-origins.js PORT FROM COUNT\n');
  process.exit(2);
}

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok');
const END = Buffer.from('\r\n\r\n');

function serve(socket) {
  let tail = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.on('data', (chunk) => {
    // Count complete request heads; keep a short tail in case one straddles two chunks.
    const buf = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
    let at = 0;
    let n = 0;
    for (;;) {
      const i = buf.indexOf(END, at);
      if (i < 0) break;
      n++;
      at = i + 4;
    }
    tail = buf.subarray(Math.max(at, buf.length - 3));
    if (n === 1) socket.write(RESPONSE);
    else if (n > 1) socket.write(Buffer.concat(Array.from({ length: n }, () => RESPONSE)));
  });
  socket.on('error', () => socket.destroy());
}

let bound = 0;
for (let i = from; i < from + count; i++) {
  const host = originAddress(i);
  const server = net.createServer({ noDelay: true }, serve);
  server.on('error', (err) => {
    process.stderr.write(`${host}:${port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen({ port, host, backlog: 64 }, () => {
    if (++bound === count) process.stdout.write(`listening ${count}\n`);
  });
}
process.on('SIGTERM', () => process.exit(0));
