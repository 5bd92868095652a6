// A worker closes the files it inherited from the node process.
//
// LevelDB opens its files (LOCK, LOG, the write-ahead log, MANIFEST, tables) without
// close-on-exec, so node:cluster's fork hands every worker a copy of each descriptor
// the node process had open at that moment. Kept, they pin files the node deletes
// (a rotated write-ahead log's space is not freed while any worker lives: a full disk
// stays full), keep the data directory's file system busy (it cannot be unmounted
// after the node stops, until the workers notice and exit), and outlive a node that is
// killed. A worker never reads or writes any of them: it closes, before anything else,
// every inherited descriptor that names a regular file (what node itself holds at that
// point is sockets, pipes, eventfds and devices). Closing them cannot release the node
// process's lock on LOCK: a POSIX record lock belongs to the process that took it.
import { closeSync, readdirSync, readlinkSync } from 'node:fs';

/** Closes inherited descriptors of regular files (Linux: /proc/self/fd); returns how many. Elsewhere, 0. */
export function closeInheritedFiles(fdDir = '/proc/self/fd'): number {
  let names: string[];
  try {
    names = readdirSync(fdDir);
  } catch {
    return 0;
  }
  let closed = 0;
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let target: string;
    try {
      target = readlinkSync(`${fdDir}/${name}`);
    } catch {
      continue; // the directory listing's own descriptor, already closed
    }
    if (!target.startsWith('/') || target.startsWith('/dev/') || target.startsWith('/proc/')) continue;
    try {
      closeSync(fd);
      closed++;
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}
