// Children the node process spawns (the VIP guard, ip/arping, --on-active/--on-passive
// hooks) must not inherit the node's database files.
//
// LevelDB opens its files (LOCK, LOG, the write-ahead log, MANIFEST) without
// close-on-exec, so exec keeps them open in every child: a long-lived child (the VIP
// guard lives as long as the node, a hook may start a daemon) pins files LevelDB has
// since deleted and keeps the data directory's file system busy after the node stops.
// Node cannot set close-on-exec on a descriptor it did not open, but a child's
// descriptor N can be replaced at spawn: each such descriptor gets /dev/null in the child
// (libuv dup2()s the stdio entry at position N onto N), which closes the inherited file
// there. Proxy workers, forked by node:cluster, close theirs themselves, first thing
// (closeInheritedFiles).
import type { StdioNull, StdioPipe } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Descriptors of this process that name a regular file and would survive an exec (no
 * close-on-exec flag in /proc/self/fdinfo). Linux only; elsewhere none.
 */
export function inheritableFiles(fdDir = '/proc/self/fd', infoDir = '/proc/self/fdinfo'): number[] {
  let names: string[];
  try {
    names = readdirSync(fdDir);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      const target = readlinkSync(`${fdDir}/${name}`);
      if (!target.startsWith('/') || target.startsWith('/dev/') || target.startsWith('/proc/')) continue;
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`${infoDir}/${name}`, 'utf8'));
      if (flags !== null && (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // closed meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

let devNull: number | undefined;

type Std = StdioNull | StdioPipe | 'inherit';

/**
 * `stdio` for spawn(): the three given, then /dev/null at the position of every
 * inheritable file (inheritableFiles) and 'ignore' (left as it is: closed by exec) in
 * between.
 */
export function childStdio(std: readonly [Std, Std, Std]): (Std | number)[] {
  const leaked = inheritableFiles();
  if (leaked.length === 0) return [...std];
  // Opened by node: close-on-exec itself, so no child keeps it except where it is placed.
  devNull ??= openSync('/dev/null', 'r+');
  const out: (Std | number)[] = [...std];
  const last = leaked[leaked.length - 1]!;
  const set = new Set(leaked);
  for (let fd = 3; fd <= last; fd++) out.push(set.has(fd) ? devNull : 'ignore');
  return out;
}

/**
 * In a child (a proxy worker): closes every inheritable file it got from its parent.
 * Whatever this process opened itself has close-on-exec, so what is left without it was
 * inherited. Closing them cannot release the parent's lock on LevelDB's LOCK: a POSIX
 * record lock belongs to the process that took it. Returns how many were closed.
 */
export function closeInheritedFiles(): number {
  let closed = 0;
  for (const fd of inheritableFiles()) {
    try {
      closeSync(fd);
      closed++;
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}
