// The process logger: pino, JSON lines on stdout, `nodeId` on every line. Library
// packages receive it (or a child of it) as their Logger; only this package imports pino.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.js';

export type { Logger };

// A safety net: credentials are never put into log lines on purpose (the starting line
// redacts them by name), but a field of one of these names is censored wherever it turns up.
const REDACT = ['token', 'clusterToken', 'adminToken', 'authorization', '*.token', '*.clusterToken', '*.adminToken', '*.authorization', 'headers.authorization', '*.headers.authorization'];

type Destination = ReturnType<typeof pino.destination>;
const destinations = new WeakMap<Logger, Destination>();

export function createLogger(nodeId: string, level: LogLevel, extra: Record<string, unknown> = {}): Logger {
  // Asynchronous writes keep logging off the request path; flush before exiting.
  const destination = pino.destination({ dest: 1, sync: false });
  const log = pino({ level, base: { nodeId, pid: process.pid, ...extra }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
  destinations.set(log, destination);
  return log;
}

/**
 * Writes complete lines to stdout through the logger's own writer, so that they never
 * interleave mid-line with log lines (the access log, a worker's relayed lines).
 */
export function stdoutWriter(log: Logger): (lines: string) => void {
  const destination = destinations.get(log);
  if (destination === undefined) return (lines) => process.stdout.write(lines);
  return (lines) => {
    destination.write(lines);
  };
}

/** Writes out whatever the asynchronous destination still buffers. */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

/** For the paths that end in process.exit(): the last lines must not be lost. */
export function flushLoggerSync(log: Logger): void {
  try {
    destinations.get(log)?.flushSync();
  } catch {
    // stdout gone (EPIPE) or not ready: nothing more can be written anyway
  }
}
