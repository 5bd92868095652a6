// The process logger: pino, JSON lines on stdout, `nodeId` on every line. Library
// packages receive it (or a child of it) as their Logger; only this package imports pino.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.js';

export type { Logger };

export function createLogger(nodeId: string, level: LogLevel): Logger {
  // Asynchronous writes keep logging off the request path; flushLogger() before exit.
  const destination = pino.destination({ dest: 1, sync: false });
  return pino({ level, base: { nodeId, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** Writes out whatever the asynchronous destination still buffers. */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}
