// Admission of admin writes: at most --admin-max-writes writes are handled at once on
// this node (the app, the relay to the leader, the Raft proposal); more wait in a FIFO of
// at most --admin-max-queued-writes, and a write beyond that is answered at once,
// before any per-request work, `429 TOO_MANY_WRITES` with `Retry-After`.
//
// Why: the node runs Raft, its transport and the admin API on one thread. A flood of
// writes (a buggy client, a hostile one) let hundreds of writes into one Raft batch;
// the commit then answered them all in one microtask run (Koa, a log line, a socket
// write each), and the accepted connections' parsing came in similar bursts: the event
// loop stalled longer than the leader lease and the election timeout, the lease
// lapsed (/ready flapped) and followers elected a new leader. A bounded number of
// writes in flight bounds those bursts; the queue is started from setImmediate, so
// the Raft transport's reads and timers run between one completion and the next start.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RefusalLog, sourceOf } from '@weldr/cluster';
import type { Logger } from './logger.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface WriteGateOptions {
  /** Writes handled at once. */
  readonly maxWrites: number;
  /** Writes waiting for a place, at most; more are refused with 429. */
  readonly maxQueued: number;
  readonly metrics: Registry;
  readonly log: Logger;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

const REFUSED_BODY = JSON.stringify({ error: { code: 'TOO_MANY_WRITES', message: 'too many admin writes in progress; retry later' } });

export interface WriteGate {
  readonly handler: Handler;
  close(): void;
}

export function writeGate(next: Handler, options: WriteGateOptions): WriteGate {
  const { maxWrites, maxQueued } = options;
  const refused = new Counter({ name: 'weldr_admin_writes_refused_total', help: 'Admin writes answered 429 TOO_MANY_WRITES: --admin-max-writes in progress and --admin-max-queued-writes waiting', registers: [options.metrics] });
  const inFlight = new Gauge({ name: 'weldr_admin_writes_in_progress', help: 'Admin writes being handled (at most --admin-max-writes)', registers: [options.metrics] });
  const queuedGauge = new Gauge({ name: 'weldr_admin_writes_queued', help: 'Admin writes waiting for a place (at most --admin-max-queued-writes)', registers: [options.metrics] });
  const refusals = new RefusalLog({ log: options.log, what: 'admin write', event: 'admin_write_refused', intervalMs: 10_000 });
  const queue: { req: IncomingMessage; res: ServerResponse }[] = [];
  let head = 0;
  let running = 0;
  let scheduled = false;

  const queued = (): number => queue.length - head;

  const start = (req: IncomingMessage, res: ServerResponse): void => {
    running++;
    inFlight.set(running);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      running--;
      inFlight.set(running);
      schedule();
    };
    res.once('finish', release);
    res.once('close', release);
    next(req, res);
  };

  // Queued writes are started in a later turn of the event loop (setImmediate), never in
  // the microtask run that completed the previous ones.
  const pump = (): void => {
    scheduled = false;
    while (running < maxWrites && queued() > 0) {
      const entry = queue[head]!;
      queue[head++] = undefined as never;
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      queuedGauge.set(queued());
      // A client that went away while waiting is not handled.
      if (entry.res.destroyed || entry.req.socket.destroyed) continue;
      start(entry.req, entry.res);
    }
  };
  const schedule = (): void => {
    if (scheduled || queued() === 0 || running >= maxWrites) return;
    scheduled = true;
    setImmediate(pump);
  };

  const handler: Handler = (req, res) => {
    if (READS.has(req.method ?? 'GET')) {
      next(req, res);
      return;
    }
    if (running < maxWrites && queued() === 0) {
      start(req, res);
      return;
    }
    if (queued() < maxQueued) {
      queue.push({ req, res });
      queuedGauge.set(queued());
      schedule();
      return;
    }
    refused.inc();
    refusals.note('queue_full', sourceOf(req.socket.remoteAddress), { why: `${maxWrites} admin writes in progress and ${maxQueued} waiting (--admin-max-writes, --admin-max-queued-writes)` });
    // The body is not read: the answer goes out and the connection ends.
    res.shouldKeepAlive = false;
    res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(REFUSED_BODY), 'retry-after': '1', connection: 'close' });
    res.end(REFUSED_BODY);
  };
  return { handler, close: () => refusals.close() };
}
