// --vip: the virtual IP follows the serving role (active-passive mode: the active node,
// or with --quorum-loss keep-serving the node that last held the role). The address
// itself is configured by the VIP guard, a child process (vip-guard.ts) that removes it
// at the end of the lease even if this process is paused, and at once if it dies.
//
// This side samples the role every 10 ms — a lease that lapses without any Raft event
// (a partition) is noticed by the timer, not only when a request comes — and on every
// Raft role change, and tells the guard `hold <lease end>` or `release <reason>`. It
// logs what the guard reports, counts failures (weldr_vip_failures_total{op}) and keeps
// the state /cluster shows. At start the guard removes the address before anything
// else; on shutdown the release comes first, before the proxy drains and before the
// leadership is handed over.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Counter, Gauge, type Registry } from 'prom-client';
import { formatVip, type VipAddress } from '../config/vip-values.js';
import type { Logger } from './logger.js';
import { ipDelArgs, notPresent } from './vip-tools.js';
import { childStdio } from './child-fds.js';

export interface VipRole {
  /**
   * Whether this node should hold the address now and, if so, until when (performance.now()
   * ms: the end of its lease) without renewal; `until: null` means no lease (keep-serving
   * after a lost quorum, or a single node): held until released. One call, one decision:
   * asking "active?" and "until when?" separately could straddle the end of the lease.
   */
  decide(): { readonly hold: false } | { readonly hold: true; readonly until: number | null };
}

export interface VipOptions {
  readonly vip: VipAddress;
  readonly iface: string;
  readonly role: VipRole;
  readonly log: Logger;
  readonly metrics: Registry;
  /** Sampling period, ms. Default 10. */
  readonly pollMs?: number;
}

type Op = 'add' | 'remove' | 'announce';

export interface VipStatus {
  readonly address: string;
  readonly interface: string;
  /** The guard reported the address configured here (and not removed since). */
  readonly held: boolean;
  readonly announcer: string | null;
  readonly lastAnnounce: { readonly tool: string; readonly at: string } | null;
  readonly lastError: { readonly op: Op | 'guard'; readonly message: string; readonly at: string } | null;
  readonly failures: Readonly<Record<Op, number>>;
}

/** Without a lease (keep-serving), how far ahead the guard's deadline is pushed; renewed every poll. */
const NO_LEASE_HOLD_MS = 60_000;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const RESPAWN_DELAY_MS = 1_000;

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** How to start the guard: its compiled .js next to this file, or the .ts under tsx (source mode). */
function guardCommand(): string[] {
  const here = import.meta.url;
  const script = fileURLToPath(new URL(here.endsWith('.ts') ? './vip-guard.ts' : './vip-guard.js', here));
  return [...process.execArgv, script];
}

export class VipManager {
  private guard: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sent: 'hold' | 'release' | null = null;
  private lastDeadline = 0;
  private held = false;
  private announcer: string | null = null;
  private lastAnnounce: VipStatus['lastAnnounce'] = null;
  private lastError: VipStatus['lastError'] = null;
  private readonly failures: Record<Op, number> = { add: 0, remove: 0, announce: 0 };
  private readonly failureCounter: Counter<'op'>;
  private stopping = false;
  private startedResolve: (() => void) | null = null;

  constructor(private readonly opts: VipOptions) {
    this.failureCounter = new Counter({ name: 'weldr_vip_failures_total', help: 'Failures to add, remove or announce the virtual IP', labelNames: ['op'], registers: [opts.metrics] });
    for (const op of ['add', 'remove', 'announce'] as const) this.failureCounter.inc({ op }, 0);
    const self = this;
    opts.metrics.registerMetric(
      new Gauge({
        name: 'weldr_vip_held',
        help: '1 while the virtual IP is configured on this node',
        registers: [],
        collect() {
          this.set(self.held ? 1 : 0);
        },
      }),
    );
  }

  /** Start the guard, which first removes any leftover address; resolves when that is done (bounded). */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve) => (this.startedResolve = resolve));
    this.spawnGuard();
    const bound = new Promise<void>((resolve) => setTimeout(resolve, START_TIMEOUT_MS).unref());
    await Promise.race([started, bound]);
    this.timer = setInterval(() => this.check(), this.opts.pollMs ?? 10);
    this.timer.unref();
    this.check();
  }

  /** Sample the role now (also called on Raft role changes). */
  check(): void {
    if (this.stopping || this.guard === null) return;
    const decision = this.opts.role.decide();
    if (!decision.hold) {
      if (this.sent !== 'release') this.send('release role', 'release');
      return;
    }
    const until = decision.until;
    const deadline = until === null ? monotonicMs() + NO_LEASE_HOLD_MS : monotonicMs() + (until - performance.now());
    // Renew when the deadline moved by more than a few ms, not on every sample.
    if (this.sent !== 'hold' || Math.abs(deadline - this.lastDeadline) >= 5) {
      this.lastDeadline = deadline;
      this.send(`hold ${deadline.toFixed(3)}`, 'hold');
    }
  }

  status(): VipStatus {
    return {
      address: formatVip(this.opts.vip),
      interface: this.opts.iface,
      held: this.held,
      announcer: this.announcer,
      lastAnnounce: this.lastAnnounce,
      lastError: this.lastError,
      failures: { ...this.failures },
    };
  }

  /** Release the address and end the guard (it removes the address as it exits). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const guard = this.guard;
    if (guard === null || guard.exitCode !== null || guard.signalCode !== null) {
      await this.removeDirectly('shutdown');
      return;
    }
    const exited = new Promise<void>((resolve) => guard.once('close', () => resolve()));
    guard.stdin?.end('release shutdown\n');
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), STOP_TIMEOUT_MS).unref())]);
    if (timedOut) {
      guard.kill('SIGKILL');
      await this.removeDirectly('shutdown');
    }
  }

  private send(line: string, kind: 'hold' | 'release'): void {
    const stdin = this.guard?.stdin;
    if (stdin === undefined || stdin === null || stdin.destroyed) return;
    this.sent = kind;
    stdin.write(`${line}\n`);
  }

  private spawnGuard(): void {
    // Not detached: the guard is in this process group, so a terminal's Ctrl-C reaches it
    // too; it ignores signals and ends when this process closes its stdin (or dies).
    const child = spawn(process.execPath, [...guardCommand(), JSON.stringify({ vip: this.opts.vip, iface: this.opts.iface })], { stdio: childStdio(['pipe', 'pipe', 'pipe']) });
    this.guard = child;
    this.sent = null;
    child.stdin!.on('error', () => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => this.onGuardLine(line));
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      if (stderr.length < 4000) stderr += c;
    });
    child.on('close', (code, signal) => {
      if (this.guard === child) this.guard = null;
      this.held = false;
      if (this.stopping) return;
      // The guard removed the address on its way out, unless it was killed: make sure.
      this.failed('guard', `the VIP guard exited (${signal ?? `code ${code}`})${stderr.trim() === '' ? '' : `: ${stderr.trim().slice(-500)}`}; restarting it`);
      void this.removeDirectly('guard exited').then(() => {
        setTimeout(() => {
          if (!this.stopping) this.spawnGuard();
        }, RESPAWN_DELAY_MS).unref();
      });
    });
  }

  private onGuardLine(line: string): void {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { log } = this.opts;
    const vip = formatVip(this.opts.vip);
    const fields = { ...e, event: `vip_${String(e['event'])}`, vip, interface: this.opts.iface };
    switch (e['event']) {
      case 'ready':
        this.announcer = String(e['announcer']);
        if (e['announcer'] === 'none') {
          this.failed('announce', String(e['reason']));
          log.error(fields, `VIP ${vip}: ${String(e['reason'])}`);
        } else log.info(fields, `VIP guard started (announcements with ${this.announcer})`);
        return;
      case 'added':
        this.held = true;
        log.info(fields, `VIP ${vip} added on ${this.opts.iface}`);
        return;
      case 'removed':
        this.held = false;
        if (e['reason'] === 'start') this.startedResolve?.();
        if (e['present'] === true || e['reason'] !== 'start') log.info(fields, `VIP ${vip} removed from ${this.opts.iface} (${String(e['reason'])}${e['present'] === false ? ', was not configured' : ''})`);
        return;
      case 'announced':
        this.lastAnnounce = { tool: String(e['tool']), at: new Date().toISOString() };
        log.info(fields, `VIP ${vip} announced (${String(e['tool'])})`);
        return;
      case 'add_failed':
      case 'remove_failed':
      case 'announce_failed': {
        const op = String(e['event']).replace('_failed', '') as Op;
        this.failed(op, String(e['error']));
        if (op === 'remove' && e['reason'] === 'start') this.startedResolve?.();
        log.error(fields, `VIP ${vip}: ${op} failed: ${String(e['error'])}`);
        return;
      }
      default:
        log.warn(fields, `VIP guard: ${String(e['event'])}`);
    }
  }

  private failed(op: Op | 'guard', message: string): void {
    this.lastError = { op, message, at: new Date().toISOString() };
    if (op === 'guard') {
      this.opts.log.error({ event: 'vip_guard_failed', vip: formatVip(this.opts.vip), err: message }, message);
      return;
    }
    this.failures[op]++;
    this.failureCounter.inc({ op });
  }

  /** Remove the address from this process (the guard is gone). */
  private removeDirectly(reason: string): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn('ip', ipDelArgs(this.opts.vip, this.opts.iface), { stdio: childStdio(['ignore', 'ignore', 'pipe']) });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.on('error', (err) => {
        this.failed('remove', err.message);
        resolve();
      });
      child.on('close', (code) => {
        this.held = false;
        if (code !== 0 && !notPresent(stderr)) {
          this.failed('remove', stderr.trim() || `ip exited ${code}`);
          this.opts.log.error({ event: 'vip_remove_failed', reason, err: stderr.trim() }, `VIP ${formatVip(this.opts.vip)}: remove failed`);
        } else if (code === 0) {
          this.opts.log.info({ event: 'vip_removed', reason }, `VIP ${formatVip(this.opts.vip)} removed (${reason})`);
        }
        resolve();
      });
    });
  }
}
