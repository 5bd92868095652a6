// The VIP guard: a small child process of `weldr start --vip` that alone adds, announces
// and removes the virtual IP. It exists so that the address never outlives the lease
// that entitles this node to it, whatever happens to the node process:
//
// - the node sends `hold <deadline>` while it may hold the address, with the end of its
//   lease on CLOCK_MONOTONIC (the same clock in every process of the host), and
//   `release <reason>` when it stops being entitled;
// - at the deadline the guard removes the address by itself — a node that is paused
//   (SIGSTOP, a stalled disk, a long GC) loses the address when its lease ends, which is
//   before any other node can be elected (packages/raft/src/core/lease.ts);
// - when its stdin closes (the node exited, crashed or was killed with SIGKILL) the guard
//   removes the address at once and exits.
//
// It ignores SIGINT, SIGTERM and SIGHUP (a Ctrl-C in a terminal reaches the whole
// process group): the node decides when it ends, by closing stdin. It reports what it
// did as JSON lines on stdout, which the node logs and counts (vip.ts).
//
// Usage (by vip.ts only): node vip-guard.js '{"vip":{…},"iface":"eth0"}'
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { VipAddress } from '../config/vip-values.js';
import { alreadyPresent, announceArgs, announced, arpingVariant, ipAddArgs, ipDelArgs, notPresent, type Announcer } from './vip-tools.js';

interface GuardConfig {
  readonly vip: VipAddress;
  readonly iface: string;
}

/** Re-announcements after the first, ms after the add (as keepalived repeats its gratuitous ARP). */
const ANNOUNCE_AGAIN_MS = [250, 1000] as const;
/** After a failed add, the next attempt waits this long (the node asks every 10 ms). */
const ADD_RETRY_MS = 1000;
const COMMAND_TIMEOUT_MS = 5000;

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

interface Ran {
  readonly code: number | null;
  readonly stderr: string;
  readonly error?: string;
  readonly ms: number;
}

function run(command: string, args: readonly string[], track?: (child: ChildProcess) => void): Promise<Ran> {
  const started = monotonicMs();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    track?.(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      if (stderr.length < 2000) stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stderr, error: err.code === 'ENOENT' ? `${command} is not installed (not found in PATH)` : err.message, ms: monotonicMs() - started });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, stderr: stderr.trim(), ...(signal === null ? {} : { error: `killed by ${signal}` }), ms: monotonicMs() - started });
    });
  });
}

async function output(command: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const keep = (c: Buffer): void => {
      if (text.length < 8000) text += c.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

/** Finds the tool that announces the address: arping (either kind) for IPv4, ndptool for IPv6. */
async function findAnnouncer(vip: VipAddress): Promise<Announcer> {
  if (vip.family === 6) {
    const help = await output('ndptool', ['--help']);
    if (help === undefined) return { kind: 'none', reason: 'ndptool is not installed (Debian: apt-get install libndp-tools): no unsolicited neighbour advertisement is sent' };
    return { kind: 'ndptool', command: 'ndptool' };
  }
  const version = await output('arping', ['-V']);
  if (version === undefined) return { kind: 'none', reason: 'arping is not installed (Debian: apt-get install iputils-arping, or arping): no gratuitous ARP is sent' };
  const variant = arpingVariant(`${version}\n${(await output('arping', ['--help'])) ?? ''}`);
  if (variant === undefined) return { kind: 'none', reason: `the installed arping is neither iputils' nor Habets' (it says: ${version.trim().split('\n')[0]?.slice(0, 120)}); its flags are unknown, no gratuitous ARP is sent` };
  return { kind: variant === 'iputils' ? 'iputils-arping' : 'habets-arping', command: 'arping' };
}

class Guard {
  private wanted = false;
  private deadline = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private nextAddAt = 0;
  private readonly announcers = new Set<ChildProcess>();
  private announceTimers: NodeJS.Timeout[] = [];
  private exiting = false;
  /** One per hold: an announcement that outlived its hold (killed on release) is not a failure. */
  private session = 0;

  constructor(
    private readonly config: GuardConfig,
    private readonly announcer: Announcer,
  ) {}

  /** Every guard starts by removing an address a previous run may have left behind. */
  start(): Promise<void> {
    return this.enqueue(() => this.remove('start'));
  }

  hold(deadline: number): void {
    if (this.exiting || !Number.isFinite(deadline)) return;
    if (deadline <= monotonicMs()) {
      this.release('lease expired');
      return;
    }
    this.deadline = deadline;
    this.armTimer();
    if (this.wanted || monotonicMs() < this.nextAddAt) return;
    this.wanted = true;
    // An add still queued when a release comes is void, even if a new hold follows: the
    // new hold queues its own add after the release's remove.
    const session = this.session;
    void this.enqueue(() => this.add(session));
  }

  release(reason: string): Promise<void> {
    this.session++;
    this.stopAnnouncing();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (!this.wanted) return this.chain;
    this.wanted = false;
    return this.enqueue(() => this.remove(reason));
  }

  async exit(): Promise<void> {
    this.exiting = true;
    this.wanted = true; // whatever the state, make sure the address is gone
    await this.release('node exited');
    process.exit(0);
  }

  private armTimer(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      // After a stall (a loaded host), timers run before the pending input is read: look
      // at the renewals already in the pipe first (setImmediate runs after the poll
      // phase). A renewal there was sent while the node held its lease, so it stands.
      setImmediate(() => {
        this.timer = null;
        if (!this.wanted) return;
        if (monotonicMs() >= this.deadline) void this.release('lease expired');
        else this.armTimer();
      });
    }, Math.max(0, this.deadline - monotonicMs()));
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(op, op);
    return this.chain;
  }

  private async add(queuedIn: number): Promise<void> {
    if (!this.wanted || queuedIn !== this.session) return;
    const { vip, iface } = this.config;
    const r = await run('ip', ipAddArgs(vip, iface));
    if (r.code !== 0 && !alreadyPresent(r.stderr)) {
      this.wanted = false;
      this.nextAddAt = monotonicMs() + ADD_RETRY_MS;
      report('add_failed', { error: r.error ?? (r.stderr || `ip exited ${r.code}`), ms: Math.round(r.ms) });
      return;
    }
    report('added', { ms: Math.round(r.ms), alreadyPresent: r.code !== 0 });
    if (!this.wanted) return; // released while adding: the queued remove follows
    const session = ++this.session;
    void this.announce(1, session);
    for (const [i, after] of ANNOUNCE_AGAIN_MS.entries()) {
      const t = setTimeout(() => {
        if (this.wanted && session === this.session) void this.announce(i + 2, session);
      }, after);
      t.unref();
      this.announceTimers.push(t);
    }
  }

  private async announce(n: number, session: number): Promise<void> {
    const { vip, iface } = this.config;
    const args = announceArgs(this.announcer, vip, iface);
    if (args === undefined || this.announcer.kind === 'none') {
      if (n === 1) report('announce_failed', { tool: 'none', error: this.announcer.kind === 'none' ? this.announcer.reason : 'no announcer' });
      return;
    }
    const tool = this.announcer.kind;
    const r = await run(this.announcer.command, args, (child) => {
      this.announcers.add(child);
      child.once('close', () => this.announcers.delete(child));
    });
    if (!this.wanted || session !== this.session) return; // killed on release: not a failure
    if (announced(this.announcer, r.code, r.stderr)) report('announced', { tool, n, ms: Math.round(r.ms) });
    else report('announce_failed', { tool, n, error: r.error ?? (r.stderr || `${this.announcer.command} exited ${r.code}`) });
  }

  private stopAnnouncing(): void {
    for (const t of this.announceTimers) clearTimeout(t);
    this.announceTimers = [];
    // An announcement still running after the release would point the neighbours back here.
    for (const child of this.announcers) child.kill('SIGKILL');
  }

  private async remove(reason: string): Promise<void> {
    const { vip, iface } = this.config;
    const r = await run('ip', ipDelArgs(vip, iface));
    if (r.code === 0) report('removed', { reason, present: true, ms: Math.round(r.ms) });
    else if (notPresent(r.stderr)) report('removed', { reason, present: false, ms: Math.round(r.ms) });
    else report('remove_failed', { reason, error: r.error ?? (r.stderr || `ip exited ${r.code}`), ms: Math.round(r.ms) });
  }
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const config = JSON.parse(process.argv[2] ?? '') as GuardConfig;
  const lines = createInterface({ input: process.stdin });
  const pending: string[] = [];
  let guard: Guard | undefined;
  let closed = false;
  const handle = (line: string): void => {
    const [verb, arg] = line.trim().split(' ', 2);
    if (verb === 'hold') guard!.hold(Number(arg));
    else if (verb === 'release') void guard!.release(arg ?? 'released');
  };
  lines.on('line', (line) => (guard === undefined ? pending.push(line) : handle(line)));
  lines.on('close', () => {
    closed = true;
    if (guard !== undefined) void guard.exit();
  });
  const announcer = await findAnnouncer(config.vip);
  guard = new Guard(config, announcer);
  report('ready', { announcer: announcer.kind, ...(announcer.kind === 'none' ? { reason: announcer.reason } : {}) });
  await guard.start();
  for (const line of pending.splice(0)) handle(line);
  if (closed) await guard.exit();
}

main().catch((err: unknown) => {
  report('guard_failed', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
