// kill and pause drills signal member processes on this machine: their PIDs come from
// `weldr dev-cluster`'s PID file (re-read every round: it restarts a killed member under
// a new PID) or from an ID=PID list. A detached watchdog continues a paused member even
// if the drill itself dies.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/config-error.js';
import type { DrillOptions } from './options.js';

/** member id → PID; a file in dev-cluster's format ([{"name","pid"}]) or ID=PID lines. */
export function readPids(source: NonNullable<DrillOptions['pids']>): Map<string, number> {
  if (source.kind === 'list') return new Map(source.pids);
  let text: string;
  try {
    text = readFileSync(source.path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the PID file ${source.path}: ${(err as Error).message} (run the drill next to 'weldr dev-cluster' (npm start), or give --pids ID=PID,…)`);
  }
  const out = new Map<string, number>();
  if (text.trim().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigError(`the PID file ${source.path} is not valid JSON`);
    }
    for (const e of Array.isArray(parsed) ? parsed : []) {
      const { name, pid } = (e ?? {}) as { name?: unknown; pid?: unknown };
      if (typeof name === 'string' && typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1) out.set(name, pid);
    }
  } else {
    for (const part of text.split(/[\s,]+/).filter((p) => p !== '')) {
      const m = /^([^=]+)=([0-9]+)$/.exec(part);
      if (m !== null && Number(m[2]) > 1) out.set(m[1]!, Number(m[2]));
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends SIGCONT to `pid` after `ms` from a detached shell, whatever happens to this
 * process; returns a function that cancels it (after the drill continued the member).
 */
export function continueLater(pid: number, ms: number): () => void {
  const seconds = (ms / 1000).toFixed(3);
  const child = spawn('/bin/sh', ['-c', `sleep ${seconds}; kill -CONT ${pid}`], { detached: true, stdio: 'ignore' });
  child.unref();
  return () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already done
    }
  };
}
