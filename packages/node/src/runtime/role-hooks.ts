// --on-active / --on-passive: operator commands run when this node's role changes, to
// move a virtual IP (ip addr add/del + arping), flip a DNS record, page someone…
//
// The role is sampled every `pollMs` from the cluster view (the same isActive() that
// /ready answers), so a lease that lapses without any Raft event — a paused or
// partitioned leader — still turns the node passive and runs on-passive. Hooks run one at
// a time, in the order of the transitions, each through `/bin/sh -c` with
// WELDR_NODE_ID, WELDR_ROLE (active|passive) and WELDR_REASON in the environment, and
// are killed after `timeoutMs`. At start the node is passive and on-passive runs once
// (a VIP left behind by a crash is removed); at shutdown an active node runs on-passive.
//
// A hook on the old active node can run late (that node may be paused or cut off when
// its lease ends), so hooks alone cannot promise a single holder of the VIP; gratuitous
// ARP from the new active node is what moves traffic. /ready is the exact signal.
import { spawn } from 'node:child_process';
import type { Logger } from './logger.js';
import { childStdio } from './child-fds.js';

export interface RoleSource {
  isActive(): boolean;
}

export interface RoleHooksOptions {
  readonly nodeId: string;
  readonly onActive: string | undefined;
  readonly onPassive: string | undefined;
  readonly source: RoleSource;
  readonly log: Logger;
  readonly pollMs?: number;
  readonly timeoutMs?: number;
}

type Role = 'active' | 'passive';

export class RoleHooks {
  private role: Role = 'passive';
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: RoleHooksOptions) {}

  /** Run on-passive once (start state), then follow the role. */
  start(): void {
    this.enqueue('passive', 'start');
    this.timer = setInterval(() => this.check(), this.opts.pollMs ?? 50);
    this.timer.unref();
    this.check();
  }

  /** Sample the role now (also called on Raft role changes for a faster reaction). */
  check(): void {
    if (this.stopped) return;
    const now: Role = this.opts.source.isActive() ? 'active' : 'passive';
    if (now === this.role) return;
    this.role = now;
    this.opts.log.info({ event: 'role_changed', role: now }, `this node is now ${now}`);
    this.enqueue(now, 'role change');
  }

  /**
   * Stop sampling; an active node runs on-passive (WELDR_REASON `reason`: shutdown, or
   * fatal when the node stops after a failure). Resolves when queued hooks are done.
   */
  async stop(reason: 'shutdown' | 'fatal' = 'shutdown'): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (!this.stopped && this.role === 'active') {
      this.role = 'passive';
      this.opts.log.info({ event: 'role_changed', role: 'passive', reason }, `this node is now passive (${reason})`);
      this.enqueue('passive', reason);
    }
    this.stopped = true;
    await this.chain;
  }

  private enqueue(role: Role, reason: string): void {
    const command = role === 'active' ? this.opts.onActive : this.opts.onPassive;
    if (command === undefined) return;
    this.chain = this.chain.then(() => this.run(command, role, reason));
  }

  private run(command: string, role: Role, reason: string): Promise<void> {
    const { log, nodeId } = this.opts;
    const hook = role === 'active' ? 'on-active' : 'on-passive';
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], {
        env: { ...process.env, WELDR_NODE_ID: nodeId, WELDR_ROLE: role, WELDR_REASON: reason },
        stdio: childStdio(['ignore', 'pipe', 'pipe']),
      });
      let output = '';
      const keep = (chunk: Buffer): void => {
        if (output.length < 4096) output += chunk.toString('utf8');
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const timer = setTimeout(() => {
        log.warn({ event: 'hook_timeout', hook, ms: this.opts.timeoutMs ?? 10_000 }, `${hook} hook still running: killed`);
        child.kill('SIGKILL');
      }, this.opts.timeoutMs ?? 10_000);
      child.on('error', (err) => {
        clearTimeout(timer);
        log.error({ event: 'hook_failed', hook, err: err.message }, `${hook} hook could not run`);
        resolve();
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const fields = { event: 'hook_ran', hook, reason, code, signal, ms: Date.now() - started, output: output.trim().slice(0, 2000) };
        if (code === 0) log.info(fields, `${hook} hook ran`);
        else log.error({ ...fields, event: 'hook_failed' }, `${hook} hook failed (${signal ?? `exit ${code}`})`);
        resolve();
      });
    });
  }
}
