import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { makeDirectory, makeDirectorySync } from '../src/level/make-directory.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weldr-mkdir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

for (const [name, make] of [
  ['makeDirectory', (p: string) => makeDirectory(p)],
  ['makeDirectorySync', (p: string) => Promise.resolve().then(() => makeDirectorySync(p))],
] as const) {
  test(`${name}: creates missing parents, accepts an existing directory, refuses a file in the way`, async (t) => {
    const dir = scratch(t);
    const deep = join(dir, 'a', 'b', 'c');
    await make(deep);
    t.true(statSync(deep).isDirectory());
    await make(deep);
    await make(`${deep}/`);
    writeFileSync(join(dir, 'file'), 'x');
    const inTheWay = await t.throwsAsync(make(join(dir, 'file')));
    t.is((inTheWay as NodeJS.ErrnoException).code, 'EEXIST');
    const under = await t.throwsAsync(make(join(dir, 'file', 'sub')));
    t.is((under as NodeJS.ErrnoException).code, 'ENOTDIR');
  });

  // node's own recursive mkdir never returns here.
  (existsSync('/proc/self') ? test : test.skip)(`${name}: a directory /proc will not have is ENOENT, at once`, async (t) => {
    const err = await t.throwsAsync(make('/proc/weldr-make-directory/x'));
    t.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  });
}
