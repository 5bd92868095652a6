import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Level } from 'level';
import { childStdio, inheritableFiles } from '../src/runtime/child-fds.js';

/** The regular files a child started with `stdio` has open, as `ls -l /proc/self/fd` in it shows. */
function childFiles(stdio: Parameters<typeof spawn>[2] extends infer O ? (O extends { stdio?: infer S } ? S : never) : never): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', 'ls -l /proc/self/fd/'], { stdio: stdio as never });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

test('LevelDB files open in this process are not inherited by a child spawned with childStdio (and are without it)', async (t) => {
  if (process.platform !== 'linux') {
    t.pass('Linux only (/proc/self/fdinfo)');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'weldr-child-fds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = new Level(join(dir, 'db'));
  await db.open();
  t.teardown(() => db.close());
  await db.put('k', 'v');
  const leaked = inheritableFiles();
  t.true(leaked.length > 0, 'LevelDB holds files without close-on-exec (what this guards against)');
  const plain = await childFiles(['ignore', 'pipe', 'pipe']);
  t.true(plain.includes(join(dir, 'db')), 'without childStdio a child inherits them (the check can fail)');
  const guarded = await childFiles(childStdio(['ignore', 'pipe', 'pipe']));
  t.false(guarded.includes(join(dir, 'db')), guarded);
  // The child's stdio still works as asked (its stdout came back), and nothing else of ours is placed in it.
  t.true(guarded.includes('/proc/'), 'the child listed its descriptors');
});

test('childStdio keeps the three given first; every further entry is /dev/null or left alone', (t) => {
  // Other tests in this process may hold LevelDB files open: only the shape is fixed.
  const out = childStdio(['ignore', 'pipe', 'pipe']);
  t.deepEqual(out.slice(0, 3), ['ignore', 'pipe', 'pipe']);
  for (const e of out.slice(3)) t.true(e === 'ignore' || typeof e === 'number');
});
