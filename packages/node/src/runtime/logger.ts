// The process logger: pino, JSON lines on stdout, `nodeId` on every line. Library
// packages receive it (or a child of it) as their Logger; only this package imports pino.
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { LogLevel } from '../config/options.js';

export type { Logger };

// A safety net: credentials are never put into log lines on purpose (the starting line
// redacts them by name), but a field of one of these names is censored wherever it turns up.
const REDACT = ['token', 'clusterToken', 'adminToken', 'authorization', '*.token', '*.clusterToken', '*.adminToken', '*.authorization', 'headers.authorization', '*.headers.authorization'];

/** Where a setting came from: the starting line's `sources` map, never a credential. */
const SOURCES = new Set(['flag', 'env', 'file', 'default']);

/**
 * "[redacted]" for a value that is there; nothing for one that is not (an unset token:
 * the starting line said "[redacted]" for a node without any token, as if one were set).
 * The starting line's `sources` entry for a token (`"adminToken":"env"`) says where it
 * came from and is kept: no credential is one of those words (tokens have 16+
 * characters). fast-redact gives no usable path for a wildcard match, so the value is
 * what tells them apart.
 */
export function censor(value: unknown): unknown {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && SOURCES.has(value)) return value;
  return '[redacted]';
}

type Destination = ReturnType<typeof pino.destination>;
const destinations = new WeakMap<Logger, Destination>();

/** The process logger's options (a test gives them its own destination). */
export function loggerOptions(nodeId: string, level: LogLevel, extra: Record<string, unknown> = {}): LoggerOptions {
  return { level, base: { nodeId, pid: process.pid, ...extra }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT, censor } };
}

export function createLogger(nodeId: string, level: LogLevel, extra: Record<string, unknown> = {}): Logger {
  // Asynchronous writes keep logging off the request path; flush before exiting.
  const destination = pino.destination({ dest: 1, sync: false });
  const log = pino(loggerOptions(nodeId, level, extra), destination);
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
