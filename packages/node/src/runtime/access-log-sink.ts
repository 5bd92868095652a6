// Destinations of the proxy's access log (--access-log): stdout, through the process's
// one stdout writer so access lines and log lines never interleave mid-line, or a file
// opened for appending (each process of a node appends whole batches of lines; O_APPEND
// keeps them from overwriting each other), reopened on SIGHUP for log rotation.
import { closeSync, openSync, write } from 'node:fs';
import type { AccessLogSink } from '@weldr/proxy';
import type { Logger } from './logger.js';

/** Lines waiting for the file beyond this are dropped (and counted): the request path never waits for a disk. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export interface AccessLogDestination {
  readonly sink: AccessLogSink;
  /** Reopen the file (SIGHUP, after logrotate moved it); nothing for stdout. */
  reopen(): void;
  close(): void;
}

export function openAccessLog(destination: string, stdout: (lines: string) => void, log: Logger): AccessLogDestination {
  if (destination === 'stdout') {
    return {
      sink: {
        write(lines) {
          stdout(lines);
          return true;
        },
      },
      reopen: () => undefined,
      close: () => undefined,
    };
  }
  return new FileDestination(destination, log);
}

/** Appends batches to a file with asynchronous writes, one at a time, in order. */
class FileDestination implements AccessLogDestination {
  readonly sink: AccessLogSink;
  readonly #path: string;
  readonly #log: Logger;
  #fd: number;
  #pending: string[] = [];
  #pendingBytes = 0;
  #writing = false;
  #reopenWanted = false;
  #closed = false;

  constructor(path: string, log: Logger) {
    this.#path = path;
    this.#log = log;
    // Opened at start: an unwritable path is a start-up error, not a silent loss.
    this.#fd = openSync(path, 'a', 0o640);
    this.sink = { write: (lines) => this.#write(lines) };
  }

  #write(lines: string): boolean {
    if (this.#closed || this.#pendingBytes > MAX_PENDING_BYTES) return false;
    this.#pending.push(lines);
    this.#pendingBytes += lines.length;
    if (!this.#writing) this.#next();
    return true;
  }

  #next(): void {
    if (this.#reopenWanted) this.#doReopen();
    if (this.#pending.length === 0) {
      this.#writing = false;
      if (this.#closed) closeQuietly(this.#fd);
      return;
    }
    this.#writing = true;
    const data = Buffer.from(this.#pending.join(''));
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writeAll(data, 0);
  }

  #writeAll(data: Buffer, offset: number): void {
    write(this.#fd, data, offset, data.length - offset, null, (err, written) => {
      if (err !== null) {
        this.#log.error({ event: 'access_log_write_failed', path: this.#path, err: { message: err.message } }, `access log: cannot write ${this.#path}: ${err.message}`);
      } else if (offset + written < data.length) {
        this.#writeAll(data, offset + written);
        return;
      }
      this.#next();
    });
  }

  reopen(): void {
    this.#reopenWanted = true;
    if (!this.#writing) this.#doReopen();
  }

  #doReopen(): void {
    this.#reopenWanted = false;
    try {
      const fd = openSync(this.#path, 'a', 0o640);
      closeQuietly(this.#fd);
      this.#fd = fd;
      this.#log.info({ event: 'access_log_reopened', path: this.#path }, `access log reopened: ${this.#path}`);
    } catch (err) {
      this.#log.error({ event: 'access_log_reopen_failed', path: this.#path, err: { message: (err as Error).message } }, `access log: cannot reopen ${this.#path}, still writing to the old file: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.#closed = true;
    if (!this.#writing) closeQuietly(this.#fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
