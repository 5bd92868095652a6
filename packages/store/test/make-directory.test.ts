import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { makeDirectorySync } from '../src/level/make-directory.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weldr-mkdir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('makeDirectorySync: creates missing parents, accepts an existing directory, refuses a file in the way', (t) => {
  const dir = scratch(t);
  const deep = join(dir, 'a', 'b', 'c');
  makeDirectorySync(deep);
  t.true(statSync(deep).isDirectory());
  makeDirectorySync(deep);
  makeDirectorySync(`${deep}/`);
  writeFileSync(join(dir, 'file'), 'x');
  const inTheWay = t.throws(() => makeDirectorySync(join(dir, 'file')));
  t.is((inTheWay as NodeJS.ErrnoException).code, 'EEXIST');
  const under = t.throws(() => makeDirectorySync(join(dir, 'file', 'sub')));
  t.is((under as NodeJS.ErrnoException).code, 'ENOTDIR');
});

// node's own recursive mkdir never returns here.
(existsSync('/proc/self') ? test : test.skip)('makeDirectorySync: a directory /proc will not have is ENOENT, at once', (t) => {
  const err = t.throws(() => makeDirectorySync('/proc/weldr-make-directory/x'));
  t.is((err as NodeJS.ErrnoException).code, 'ENOENT');
});
