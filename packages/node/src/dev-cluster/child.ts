// A child process of `weldr dev-cluster`: another `weldr` (a node or a test-server) whose
// output goes to a log file, and whose JSON log lines can be waited for.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { STOP_WITH_PARENT_ENV } from '../cli/signals.js';
import { jsonObjectLines } from './json-lines.js';

export type LogLine = Readonly<Record<string, unknown>>;

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** How to run this same `weldr` again (bin/weldr.js on dist, or main.ts through tsx). */
export function weldrArgv(): string[] {
  const entry = process.argv[1];
  if (entry === undefined) throw new Error('cannot tell how weldr was started (no process.argv[1])');
  return [...process.execArgv, entry];
}

export class Child {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | undefined;
  private readonly lines: LogLine[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly proc: ChildProcess;
  private readonly log: WriteStream;
  /** Last lines of stderr, for the message when the child fails. */
  private stderrTail = '';

  constructor(
    readonly name: string,
    readonly args: readonly string[],
    readonly logFile: string,
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    // Its own process group: a Ctrl-C in the terminal reaches only dev-cluster, which then
    // sends each child exactly one SIGTERM (weldr treats a second signal as "exit now").
    // Its stdin is a pipe we never write to: when dev-cluster ends in a way it cannot
    // handle (SIGKILL, a crash), the kernel closes our end and the child stops by itself
    // (WELDR_STOP_WITH_PARENT=stdin) instead of running on as an orphan.
    this.proc = spawn(process.execPath, [...weldrArgv(), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...env, [STOP_WITH_PARENT_ENV]: 'stdin' },
      detached: true,
    });
    if (this.proc.pid === undefined) throw new Error(`could not start ${name}`);
    this.pid = this.proc.pid;
    // Lines that are not JSON objects are in the log file only.
    const readLines = jsonObjectLines((line) => this.lines.push(line));
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.log.write(chunk);
      readLines(chunk);
      this.notify();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.log.write(chunk);
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.log.end();
        this.notify();
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Whether this run of the child logged `event` (e.g. state_lost). */
  logged(event: string): boolean {
    return this.lines.some((l) => l['event'] === event);
  }

  /** Why it failed, in one line: its fatal log message or the end of its stderr. */
  failure(): string {
    const fatal = [...this.lines].reverse().find((l) => l['level'] === 60 || l['event'] === 'start_failed' || l['event'] === 'state_lost');
    if (fatal !== undefined && typeof fatal['msg'] === 'string') return fatal['msg'];
    return lastMessageLine(this.stderrTail) ?? `exited ${this.exit?.signal ?? this.exit?.code ?? ''}`;
  }

  /** The first log line (seen or to come) that matches; rejects if the child exits first or time runs out. */
  waitForLine(what: string, match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: no ${what} within ${Math.round(timeoutMs / 1000)} s (see ${this.logFile})`));
      }, timeoutMs);
      const check = (): void => {
        const found = this.lines.find(match);
        if (found !== undefined || this.exit !== undefined) {
          this.waiters.delete(check);
          clearTimeout(timer);
          if (found !== undefined) resolve(found);
          else reject(new Error(`${this.name} exited before ${what}: ${this.failure()} (see ${this.logFile})`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** The last line of `stderr` that says something: not blank, not a stack frame of an error printed above it. */
export function lastMessageLine(stderr: string): string | undefined {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l))
    .pop()
    ?.trim();
}
