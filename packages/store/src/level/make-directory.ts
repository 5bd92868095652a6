// `mkdir -p` without the loop. node's recursive mkdir (fs.mkdir and fs.mkdirSync with
// `recursive: true`, node 20) never returns for a path whose parent exists but refuses
// new entries with ENOENT, as /proc does: it creates the parent (EEXIST), tries the path
// again (ENOENT), and so on — `weldr start --data /proc/x` hung at start instead of
// saying it cannot use that directory. This creates one level at a time and gives up
// with the error of the level that failed.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Creates `path` and any missing parents; an existing directory is fine, a file in the way is ENOTDIR/EEXIST. Synchronous: it runs once, at start or in a command-line tool. */
export function makeDirectorySync(path: string): void {
  const target = resolve(path);
  try {
    mkdirSync(target);
    return;
  } catch (err) {
    if (code(err) === 'EEXIST' && statSync(target).isDirectory()) return;
    const parent = dirname(target);
    if (code(err) !== 'ENOENT' || parent === target) throw err;
    makeDirectorySync(parent);
  }
  try {
    mkdirSync(target);
  } catch (err) {
    if (code(err) === 'EEXIST' && statSync(target).isDirectory()) return;
    throw err;
  }
}
