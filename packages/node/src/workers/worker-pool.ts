// The node process's side of --workers N: forks N proxy workers with node:cluster,
// hands them the configuration, every pool snapshot and every health verdict, gathers
// their figures for /stats and /metrics, restarts a worker that dies (counted and
// logged), and stops them gracefully. The listening sockets are the node process's and
// shared with every worker, which accepts by itself (SCHED_NONE: no connection passes
// through the node process; libuv's single accept spreads a burst over the workers), so
// a dying worker never closes the listener while another one lives.
import cluster, { type Worker } from 'node:cluster';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeCounters, type CheckResult, type DataPlaneCounters, type Health, type TlsCertificate } from '@weldr/proxy';
import type { PoolSnapshot } from '@weldr/store';
import type { Logger } from '../runtime/logger.js';
import { isFromWorker, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';
import { ReportReader } from './counter-reports.js';
import { poolMessage, wireSnapshot } from './pool-mirror.js';

/** A worker that does not answer a figures request within this is counted with its last answer. */
const COUNTERS_TIMEOUT_MS = 2_000;
/** Figures are also fetched this often, so a worker that dies loses at most this much of its counts. */
const COUNTERS_REFRESH_MS = 5_000;
/** How long an admin write waits for a worker to confirm a pool change (synced()). */
const SYNC_TIMEOUT_MS = 2_000;
/**
 * How long a node that is not eager (a follower: it answers no pool write, and is passive
 * in the default serving mode) lets pool changes gather before it tells its workers: one
 * message per worker every this many ms instead of one per applied write wakes N
 * processes far less often. A node that becomes the leader sends what is pending at once.
 */
export const LAZY_POOL_FLUSH_MS = 50;
/** Restart delay after a crash, doubled for each crash in a row of the same slot, at most MAX. */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5_000;
/** A worker that lived this long before dying starts its slot's backoff from the base again. */
const STABLE_MS = 30_000;

export type WorkerInitBase = Omit<WorkerInit, 'type' | 'slot' | 'snapshot' | 'health'>;

export interface WorkerPoolOptions {
  readonly count: number;
  readonly init: WorkerInitBase;
  readonly snapshot: () => PoolSnapshot;
  readonly health: () => { id: string; health: Health; lastCheck?: CheckResult }[];
  readonly log: Logger;
  /** Complete stdout lines of workers (their log and access-log lines), relayed by the node's own writer. */
  readonly stdout: (lines: string) => void;
  /**
   * Whether pool changes go to the workers in the same event-loop turn (true: the
   * leader, the single node) or gathered for LAZY_POOL_FLUSH_MS (false). Default: always.
   */
  readonly eager?: () => boolean;
}

interface Slot {
  readonly n: number;
  worker: Worker | null;
  /** The worker has said hello: messages sent to it now are received. */
  listening: boolean;
  ready: boolean;
  /** Crashes in a row (restart backoff). */
  crashes: number;
  startedAt: number;
  last: DataPlaneCounters | null;
  /** The worker's figures as its reports built them (a new one per worker process). */
  reports: ReportReader;
  restartTimer: NodeJS.Timeout | null;
}

export interface WorkerPoolStats {
  readonly workers: number;
  readonly ready: number;
  readonly restarts: number;
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #bySlotWorker = new Map<Worker, Slot>();
  /** Figures of workers that are gone (crashed or replaced), summed: counters never go backwards. */
  #retired: DataPlaneCounters[] = [];
  #restarts = 0;
  #seq = 0;
  /** Questions sent to a worker (counters, sync) whose answer is awaited, by seq: resolved with the answer, or null when the worker is gone. */
  readonly #pending = new Map<number, { slot: Slot; resolve: (answer: FromWorker | null) => void }>();
  #stopping = false;
  /** The listeners' bound ports, once known. */
  #ports: { proxy: number | null; tls: number | null } = { proxy: null, tls: null };
  #refresh: NodeJS.Timeout | null = null;
  #firstReady: { resolve: () => void; reject: (err: Error) => void } | null = null;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  /** Forks every worker; resolves once all listen (with the bound ports), rejects if one cannot. */
  start(): Promise<{ proxy: number; tls: number | null }> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: workerEntry(), silent: true });
    for (let n = 1; n <= this.#options.count; n++) {
      const slot: Slot = { n, worker: null, listening: false, ready: false, crashes: 0, startedAt: 0, last: null, reports: new ReportReader(), restartTimer: null };
      this.#slots.push(slot);
    }
    const ready = new Promise<void>((resolve, reject) => {
      this.#firstReady = { resolve, reject };
    });
    for (const slot of this.#slots) this.#fork(slot);
    // Only to keep each slot.last fresh (what a worker that dies leaves): nothing to sum.
    this.#refresh = setInterval(() => void this.collectParts(), COUNTERS_REFRESH_MS);
    this.#refresh.unref();
    return ready.then(() => ({ proxy: this.#ports.proxy!, tls: this.#ports.tls }));
  }

  #fork(slot: Slot): void {
    slot.restartTimer = null;
    slot.ready = false;
    slot.listening = false;
    slot.startedAt = Date.now();
    slot.reports = new ReportReader();
    const worker = cluster.fork({ WELDR_WORKER_SLOT: String(slot.n), UV_TCP_SINGLE_ACCEPT: '1' });
    slot.worker = worker;
    this.#bySlotWorker.set(worker, slot);
    relayLines(worker.process.stdout, this.#options.stdout);
    worker.process.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    worker.on('message', (m: unknown) => {
      if (isFromWorker(m)) this.#onMessage(slot, worker, m);
    });
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    // A message sent while the worker dies (its IPC pipe already broken: EPIPE) fails
    // with an 'error' event on the worker, which would otherwise be an uncaught
    // exception in the node process. The exit that follows is what counts.
    worker.on('error', (err: Error) => {
      this.#log.debug({ worker: slot.n, pid: worker.process.pid, err: { message: err.message } }, `proxy worker ${slot.n}: IPC error`);
    });
  }

  /** The worker listens for messages: its init carries the state as it is now; later changes follow on the same channel. */
  #sendInit(slot: Slot, worker: Worker): void {
    slot.listening = true;
    const base = this.#options.init;
    const init: WorkerInit = {
      ...base,
      type: 'init',
      slot: slot.n,
      // The configured address, port 0 included: node:cluster's primary keys its listening
      // handles by the address asked for, so a restarted worker joins the handle the others
      // still hold (same port) rather than binding anew (EADDRINUSE).
      listen: base.listen,
      listenTls: base.listenTls,
      snapshot: wireSnapshot(this.#options.snapshot()),
      health: this.#options.health(),
    };
    worker.send(init);
  }

  #onMessage(slot: Slot, worker: Worker, m: FromWorker): void {
    switch (m.type) {
      case 'hello':
        if (slot.worker === worker) this.#sendInit(slot, worker);
        return;
      case 'listening':
        if (m.listener === 'proxy') this.#ports.proxy ??= m.port;
        else this.#ports.tls ??= m.port;
        return;
      case 'ready':
        slot.ready = true;
        this.#log.debug({ event: 'worker_ready', worker: slot.n, pid: worker.process.pid }, `proxy worker ${slot.n} ready`);
        if (this.#firstReady !== null && this.#slots.every((s) => s.ready)) {
          this.#firstReady.resolve();
          this.#firstReady = null;
        }
        return;
      case 'listen-error': {
        const err = Object.assign(new Error(m.message), { code: m.code, listener: m.listener });
        if (this.#firstReady !== null) {
          this.#firstReady.reject(err);
          this.#firstReady = null;
        } else {
          this.#log.error({ event: 'worker_listen_failed', worker: slot.n, listener: m.listener, code: m.code, err: { message: m.message } }, `proxy worker ${slot.n} cannot listen: ${m.message}`);
        }
        return;
      }
      case 'synced':
      case 'counters': {
        const waiting = this.#pending.get(m.seq);
        if (waiting === undefined) return;
        this.#pending.delete(m.seq);
        waiting.resolve(m);
        return;
      }
    }
  }

  #onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    this.#bySlotWorker.delete(worker);
    if (slot.worker !== worker) return;
    slot.worker = null;
    slot.ready = false;
    slot.listening = false;
    // Its counts up to its last report stay in the node's totals; what was in flight is gone.
    if (slot.last !== null) {
      const current = new Set(this.#options.snapshot().servers.map((r) => r.id));
      this.#retired = [retire(mergeCounters([...this.#retired, slot.last]), current)];
    }
    slot.last = null;
    // A gone worker answers nothing: its counts are retired above, it routes nothing stale
    // (its replacement starts from the current pool).
    for (const [seq, w] of this.#pending) {
      if (w.slot === slot) {
        this.#pending.delete(seq);
        w.resolve(null);
      }
    }
    if (this.#stopping) return;
    if (this.#firstReady !== null) {
      this.#firstReady.reject(new Error(`proxy worker ${slot.n} exited while starting (code ${code}, signal ${signal})`));
      this.#firstReady = null;
      this.#stopping = true;
      return;
    }
    this.#restarts++;
    if (Date.now() - slot.startedAt >= STABLE_MS) slot.crashes = 0;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** slot.crashes);
    slot.crashes++;
    this.#log.error(
      { event: 'worker_exited', worker: slot.n, pid: worker.process.pid, code, signal, restarts: this.#restarts, restartInMs: delay },
      `proxy worker ${slot.n} (pid ${worker.process.pid}) exited (${signal ?? `code ${code}`}); restarting it in ${delay} ms`,
    );
    slot.restartTimer = setTimeout(() => this.#fork(slot), delay);
  }

  #broadcast(message: ToWorker): void {
    this.#flushSnapshot();
    this.#send(message);
  }

  #send(message: ToWorker): void {
    for (const slot of this.#slots) {
      const w = slot.worker;
      // A worker still starting gets the state in its init (taken when it said hello)
      // and the messages sent after it on the same channel, in order.
      if (w !== null && slot.listening && w.isConnected()) w.send(message);
    }
  }

  /**
   * Every applied command's snapshot: workers swap it in atomically, as the node's own
   * proxy does. Snapshots applied in one event-loop turn (a burst of writes) go out as
   * one message (what changed since the last one sent: pool-mirror.ts); on a node that is
   * not eager (options.eager), those of LAZY_POOL_FLUSH_MS. Any other message sends a
   * pending snapshot first, so the order workers see is kept.
   */
  update(snapshot: PoolSnapshot): void {
    this.#pendingSnapshot = snapshot;
    if (this.#options.eager?.() ?? true) {
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        setImmediate(() => {
          this.#flushQueued = false;
          // A sync question asked later in this same phase carries the change itself.
          if (this.#syncRound === null) this.#flushSnapshot();
        });
      }
    } else if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = null;
        this.#flushSnapshot();
      }, LAZY_POOL_FLUSH_MS);
    }
  }

  /** Sends a pending pool change now (the node has just become eager: the leader). */
  flush(): void {
    this.#flushSnapshot();
  }

  #pendingSnapshot: PoolSnapshot | null = null;
  #flushQueued = false;
  #flushTimer: NodeJS.Timeout | null = null;

  /** The last snapshot sent to the workers: the next one goes as what changed since (pool-mirror.ts). */
  #sentSnapshot: PoolSnapshot | null = null;

  /** The message for the pending snapshot (which counts as sent from now), or null if none is pending. */
  #takeSnapshot(): ToWorker | null {
    const snapshot = this.#pendingSnapshot;
    if (snapshot === null) return null;
    this.#pendingSnapshot = null;
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const message = poolMessage(this.#sentSnapshot, snapshot);
    this.#sentSnapshot = snapshot;
    return message;
  }

  #flushSnapshot(): void {
    const message = this.#takeSnapshot();
    if (message !== null) this.#send(message);
  }

  /**
   * Resolves once every worker routes with the pool as the node process last gave it
   * (update()): the pending change goes out now, carrying a `sync` number that each
   * worker answers once it has applied it (or a bare `sync` when nothing is pending: the
   * channel is ordered). An admin write is answered after this, so a client that removed
   * or drained a server never sees a later request of its own reach it through a worker
   * that had not heard yet. A worker that is starting gets the current pool in its init;
   * one that exits is not waited for; one that does not answer within `timeoutMs`
   * (stopped, overloaded) is logged and not waited for longer.
   */
  synced(timeoutMs = SYNC_TIMEOUT_MS): Promise<void> {
    // Writes answered in one event-loop turn share one question per worker, asked at the
    // end of the turn (after every write of the turn has given its change to update()):
    // the writes one Ready commits cost each worker one message and one answer, not one
    // each. Under 32 writers on the leader that was ~10 questions per turn.
    this.#syncRound ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        this.#syncRound = null;
        void this.#syncNow(timeoutMs).then(resolve);
      });
    });
    return this.#syncRound;
  }

  /** The sync question of this event-loop turn (synced()), until it is asked. */
  #syncRound: Promise<void> | null = null;

  #syncNow(timeoutMs: number): Promise<void> {
    const change = this.#takeSnapshot();
    const live = this.#slots.filter((slot) => slot.worker !== null && slot.listening && slot.worker.isConnected());
    // A worker still starting (not listening yet) gets the change in its init.
    const waits = live.map((slot) =>
      this.#request(slot, (seq) => (change === null ? { type: 'sync', seq } : ({ ...change, sync: seq } as ToWorker)), timeoutMs).then((answer) => {
        if (answer === 'timeout') {
          this.#log.warn({ event: 'worker_sync_timeout', worker: slot.n, pid: slot.worker?.process.pid, timeoutMs }, `proxy worker ${slot.n} did not confirm the pool change within ${timeoutMs} ms`);
        }
      }),
    );
    return Promise.all(waits).then(() => undefined);
  }

  health(id: string, health: Health): void {
    this.#broadcast({ type: 'health', id, health });
  }

  setTls(certificates: TlsCertificate[]): void {
    this.#broadcast({ type: 'tls', certificates });
  }

  reopenAccessLog(): void {
    this.#broadcast({ type: 'reopen' });
  }

  /**
   * Figures of every worker (fetched now) plus those of workers that are gone, not yet
   * summed: the caller sums them with the node's own in one pass (mergeCounters, or
   * sumTotals for the totals alone).
   */
  async collectParts(): Promise<DataPlaneCounters[]> {
    const parts = await Promise.all(this.#slots.map((slot) => this.#ask(slot)));
    const live = parts.filter((p): p is DataPlaneCounters => p !== null);
    return [...this.#retired, ...live];
  }

  async #ask(slot: Slot): Promise<DataPlaneCounters | null> {
    const w = slot.worker;
    if (w === null || !slot.ready || !w.isConnected()) return null;
    const reports = slot.reports;
    const answer = await this.#request(slot, (seq) => ({ type: 'counters', seq, ...(reports.base === 0 ? {} : { base: reports.base }) }), COUNTERS_TIMEOUT_MS);
    if (answer === 'timeout') return slot.last;
    if (answer === null || answer.type !== 'counters') return null;
    // A report that adds to one this reader does not hold (an answer given up on): the
    // last figures now, everything at the next question.
    const figures = reports.apply(answer.data) ?? slot.last;
    slot.last = figures;
    return figures;
  }

  /**
   * Sends the question `make(seq)` to the slot's worker and resolves with its answer (the
   * message carrying the same seq), null if the worker exits first, or 'timeout'.
   */
  #request(slot: Slot, make: (seq: number) => ToWorker, timeoutMs: number): Promise<FromWorker | null | 'timeout'> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        resolve('timeout');
      }, timeoutMs);
      this.#pending.set(seq, {
        slot,
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
      });
      slot.worker?.send(make(seq));
    });
  }

  stats(): WorkerPoolStats {
    return { workers: this.#slots.length, ready: this.#slots.filter((s) => s.ready).length, restarts: this.#restarts };
  }

  /**
   * Graceful stop: every worker stops accepting, lets its requests finish within the
   * deadline, and exits; one that has not exited by the deadline plus a grace is killed.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#refresh !== null) clearInterval(this.#refresh);
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const exits: Promise<void>[] = [];
    for (const slot of this.#slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      const w = slot.worker;
      if (w === null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          if (w.isDead()) {
            resolve();
            return;
          }
          const kill = setTimeout(() => w.process.kill('SIGKILL'), deadlineMs + 5_000);
          w.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          if (w.isConnected()) w.send({ type: 'shutdown', deadlineMs } satisfies ToWorker);
          else w.process.kill('SIGKILL');
        }),
      );
    }
    await Promise.all(exits);
  }
}

/** The figures of a worker that is gone: its counts stay, nothing of it is in flight any more. */
function retire(d: DataPlaneCounters, current: ReadonlySet<string>): DataPlaneCounters {
  const counters = { ...d.counters, active: 0, connections: 0 };
  // Origins no longer in the pool are forgotten (their series are gone from /metrics anyway).
  const origins = d.origins.filter((o) => current.has(o.id)).map((o) => ({ ...o, active: 0, connected: 0, queued: 0, ejectedUntil: 0 }));
  return { counters, origins, failOpen: false };
}

/** The worker entry next to this file (worker-main.js, or .ts when run from source through tsx). */
function workerEntry(): string {
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./worker-main${extname(self)}`, import.meta.url));
}

/** Relays complete lines only, so a worker's line is never cut by another's. */
function relayLines(stream: NodeJS.ReadableStream | null | undefined, write: (lines: string) => void): void {
  if (stream == null) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const end = chunk.lastIndexOf('\n');
    if (end < 0) {
      partial += chunk;
      return;
    }
    write(partial + chunk.slice(0, end + 1));
    partial = chunk.slice(end + 1);
  });
  stream.on('end', () => {
    if (partial !== '') write(`${partial}\n`);
  });
}
