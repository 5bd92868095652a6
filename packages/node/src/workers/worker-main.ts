// A proxy worker process (--workers N): serves the proxy listener(s) of its node with
// the pool snapshots and health verdicts the node process sends, and nothing else — no
// Raft, no admin API, no health checks. Started by node:cluster (worker-pool.ts); the
// listening sockets belong to the node process, which hands connections to its workers.
import cluster from 'node:cluster';
import { createProxy, type Proxy } from '@weldr/proxy';
import { createLogger, flushLogger, flushLoggerSync, stdoutWriter, type Logger } from '../runtime/logger.js';
import { openAccessLog, type AccessLogDestination } from '../runtime/access-log-sink.js';
import { closeInheritedFiles } from '../runtime/child-fds.js';
import { ReportWriter } from './counter-reports.js';
import { PoolMirror } from './pool-mirror.js';
import { tierUpSooner } from '../runtime/v8-tiering.js';
import { isToWorker, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

let proxy: Proxy | null = null;
let pool: PoolMirror | null = null;
let log: Logger | null = null;
let access: AccessLogDestination | null = null;
let stopping = false;
const reports = new ReportWriter();

async function init(m: WorkerInit): Promise<void> {
  const l = createLogger(m.nodeId, m.logLevel, { worker: m.slot });
  log = l;
  access = m.accessLog === null ? null : openAccessLog(m.accessLog, stdoutWriter(l), l);
  pool = new PoolMirror(m.snapshot);
  const p = createProxy({
    snapshot: pool.current,
    log: l,
    nodeId: m.nodeId,
    timeouts: m.timeouts,
    limits: m.limits,
    maxHeaderSize: m.maxHeaderSize,
    maxRetries: m.maxRetries,
    // Each worker starts its rotations one origin further on: the first requests through
    // N workers reach N origins, not all the first.
    balancerPhase: m.slot - 1,
    // The node process runs the checks and sends the verdicts.
    healthChecks: 'external',
    // The node process logs the pool's changes once; a worker's lines would repeat them.
    poolLog: 'debug',
    originClient: m.originClient,
    ...(m.originTls === null ? {} : { originTls: m.originTls }),
    ...(m.tls === null ? {} : { tls: m.tls }),
    ...(access === null ? {} : { accessLog: access.sink }),
  });
  proxy = p;
  for (const h of m.health) p.applyHealth(h.id, h.health, h.lastCheck);
  try {
    const bound = await p.listen(m.listen.port, m.listen.host);
    send({ type: 'listening', listener: 'proxy', port: bound.port });
  } catch (err) {
    send({ type: 'listen-error', listener: 'proxy', code: (err as NodeJS.ErrnoException).code, message: (err as Error).message });
    await exit(1);
    return;
  }
  if (m.listenTls !== null) {
    try {
      const bound = await p.listenTls(m.listenTls.port, m.listenTls.host);
      send({ type: 'listening', listener: 'proxy-tls', port: bound.port });
    } catch (err) {
      send({ type: 'listen-error', listener: 'proxy-tls', code: (err as NodeJS.ErrnoException).code, message: (err as Error).message });
      await exit(1);
      return;
    }
  }
  send({ type: 'ready' });
}

function handle(m: ToWorker): void {
  switch (m.type) {
    case 'init':
      void init(m);
      return;
    case 'snapshot':
      if (pool !== null) proxy?.update(pool.reset(m.snapshot));
      if (m.sync !== undefined) send({ type: 'synced', seq: m.sync });
      return;
    case 'pool-delta':
      if (pool !== null) proxy?.update(pool.apply(m));
      if (m.sync !== undefined) send({ type: 'synced', seq: m.sync });
      return;
    case 'health':
      proxy?.applyHealth(m.id, m.health);
      return;
    case 'sync':
      // Pool messages are applied synchronously as they arrive: everything before this
      // one is in the proxy's routing now.
      send({ type: 'synced', seq: m.seq });
      return;
    case 'counters':
      // Origins with no figure are left out: the node's own figures list every origin.
      // Only what changed since the report the node holds (counter-reports.ts).
      if (proxy !== null) send({ type: 'counters', seq: m.seq, data: reports.report(proxy.counters({ omitIdle: true }), m.base) });
      return;
    case 'tls':
      try {
        proxy?.setTls({ certificates: m.certificates });
        // Each worker says so: the node's own line only says the files were read.
        log?.info({ event: 'tls_reloaded', tls: 'proxy TLS', trigger: 'SIGHUP' }, 'worker: proxy TLS certificates reloaded');
      } catch (err) {
        log?.error({ event: 'tls_reload_failed', tls: 'proxy TLS', err: { message: (err as Error).message } }, 'worker: proxy TLS certificates not reloaded');
      }
      return;
    case 'reopen':
      access?.reopen();
      return;
    case 'shutdown':
      void shutdown(m.deadlineMs);
      return;
  }
}

async function shutdown(deadlineMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await proxy?.close({ deadlineMs });
  await exit(0);
}

async function exit(code: number): Promise<void> {
  access?.close();
  if (log !== null) await flushLogger(log);
  process.exit(code);
}

if (!cluster.isWorker) {
  process.stderr.write('weldr: worker-main is started by the node process (--workers), not directly\n');
  process.exit(2);
}
// The node's database files, inherited through the fork: LevelDB opens them without
// close-on-exec (runtime/child-fds.ts).
closeInheritedFiles();
// Before the proxy's code first runs hot (runtime/v8-tiering.ts).
tierUpSooner();
process.on('message', (m: unknown) => {
  if (isToWorker(m)) handle(m);
});
// A message that arrives before a 'message' listener exists is lost: the node process
// sends nothing until this.
send({ type: 'hello' });
// The node process is gone (killed, crashed): a worker never serves on its own — it
// would route with a pool nobody updates, outside the active/passive rule. Stop at once.
process.on('disconnect', () => {
  if (stopping) return;
  stopping = true;
  log?.warn({ event: 'worker_orphaned' }, 'the node process is gone: worker exiting');
  if (log !== null) flushLoggerSync(log);
  process.exit(1);
});
process.on('uncaughtException', (err) => {
  log?.fatal({ event: 'crashed', origin: 'uncaughtException', err }, `worker: ${err.message}`);
  if (log !== null) flushLoggerSync(log);
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  log?.fatal({ event: 'crashed', origin: 'unhandledRejection', err }, `worker: ${err instanceof Error ? err.message : String(err)}`);
  if (log !== null) flushLoggerSync(log);
  process.exit(1);
});
// SIGINT/SIGTERM reach the whole process group from a terminal: the node process
// decides when workers stop (after it has handed over its role), not the signal.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
process.on('SIGHUP', () => undefined);
