// Spawns real processes for e2e tests and guarantees they are gone afterwards: every
// process is registered with the test's teardown and killed by PID, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { jsonObjectLines } from '@weldr/node/testing';
import { REPO_ROOT, WELDR_COMMAND } from './repo-root.js';
import { within } from './wait.js';

/** The part of ava's ExecutionContext the helpers need. */
export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
  log(...values: unknown[]): void;
}

export type JsonLine = Record<string, unknown>;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class RunningProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line that parsed as a JSON object, in order. */
  readonly lines: JsonLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private readonly waiters = new Set<() => void>();

  /**
   * `prefix`: a command that execs the rest (e.g. `prlimit --nofile=1024:1024`), so the
   * process runs with its settings and keeps the same PID.
   */
  constructor(readonly name: string, args: readonly string[], env: Record<string, string | undefined>, prefix: readonly string[] = []) {
    const argv = [...prefix, process.execPath, ...WELDR_COMMAND, ...args];
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd: REPO_ROOT,
      // Nodes serve in-process unless the run asks for workers (WELDR_E2E_WORKERS=2 runs
      // every node with --workers 2); a test's own flags and env still win.
      env: { ...process.env, WELDR_WORKERS: process.env.WELDR_E2E_WORKERS ?? '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${name}`);
    this.pid = this.child.pid;
    // Lines that are not JSON objects are kept in stdout only.
    const readLines = jsonObjectLines((line) => this.lines.push(line));
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      readLines(chunk);
      this.notify();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** The first stdout JSON line (already seen or yet to come) that matches. */
  waitForLine(what: string, match: (line: JsonLine) => boolean, timeoutMs = 15_000): Promise<JsonLine> {
    return within(
      `${this.name}: ${what}`,
      new Promise<JsonLine>((resolve, reject) => {
        const check = (): void => {
          const found = this.lines.find(match);
          if (found) {
            this.waiters.delete(check);
            resolve(found);
          } else if (this.exit) {
            this.waiters.delete(check);
            reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}; stderr: ${this.stderr.slice(-2000)}`));
          }
        };
        this.waiters.add(check);
        check();
      }),
      timeoutMs,
    );
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Sends the signal and waits for the exit (SIGKILL after timeoutMs). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> {
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Spawns `weldr <args>` and kills it (by PID) when the test ends, whatever happened. */
export function spawnWeldr(t: Teardown, name: string, args: readonly string[], env: Record<string, string | undefined> = {}, prefix: readonly string[] = []): RunningProcess {
  const proc = new RunningProcess(name, args, env, prefix);
  t.teardown(async () => {
    if (proc.running) {
      proc.signal('SIGKILL');
      await within(`${name} to die`, proc.exited, 10_000);
    }
  });
  return proc;
}

/** Runs `weldr <args>` to completion (bounded) and returns its exit and output. */
export async function runWeldr(t: Teardown, args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 15_000): Promise<Exit & { stdout: string; stderr: string }> {
  const proc = spawnWeldr(t, `weldr ${args[0] ?? ''}`, args, env);
  const exit = await within(`weldr ${args.join(' ')} to exit`, proc.exited, timeoutMs);
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
}
