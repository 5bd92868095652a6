// The process's open-file limit, for sizing the proxy's connection limit by default.
import { readFileSync } from 'node:fs';

/** File descriptors kept out of the proxy's budget: admin, Raft, LevelDB, logs, origin pools. */
const RESERVED_FDS = 256;
/** The default never goes above this (memory: each idle connection costs node some KiB). */
const MAX_AUTO_CONNECTIONS = 10_000;

/**
 * The soft RLIMIT_NOFILE (what `ulimit -n` shows), read from /proc/self/limits, or
 * undefined where that is not available (not Linux). Node has no getrlimit.
 */
export function openFileLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  let text: string;
  try {
    text = read('/proc/self/limits');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (m === null) return undefined;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/**
 * `--max-connections auto`: each proxied client connection may need a second
 * descriptor for its origin connection, so half of what the open-file limit leaves
 * after a reserve, at most 10,000 and at least 64. Refusing a connection at accept is
 * clean; running out of descriptors is not (every listener, the admin API's included,
 * stops accepting, and LevelDB cannot open files).
 */
export function autoMaxConnections(limit = openFileLimit()): number {
  if (limit === undefined) return MAX_AUTO_CONNECTIONS;
  return Math.max(64, Math.min(MAX_AUTO_CONNECTIONS, Math.floor((limit - RESERVED_FDS) / 2)));
}
