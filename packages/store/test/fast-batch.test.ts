import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { writeBatch } from '../src/level/fast-batch.js';
import type { PoolDb } from '../src/level/layout.js';

const bytes = new Uint8Array([0, 1, 2, 255, 0x80]);

async function roundTrip(db: PoolDb): Promise<{ text: string | undefined; view: Uint8Array | undefined; gone: string | undefined; unicode: string | undefined }> {
  await writeBatch(db, [{ type: 'put', key: 'doomed', value: 'x' }], false);
  await writeBatch(
    db,
    [
      { type: 'put', key: 'raft/log/1', value: bytes },
      { type: 'put', key: 'pool/server/1', value: '{"ip":"127.0.0.1"}' },
      { type: 'put', key: 'pool/ünïcode/☃', value: 'snow ☃' },
      { type: 'del', key: 'doomed' },
    ],
    true,
  );
  const view = (await db.get('raft/log/1', { keyEncoding: 'utf8', valueEncoding: 'view' } as never)) as unknown as Uint8Array | undefined;
  return {
    text: await db.get('pool/server/1', { keyEncoding: 'utf8', valueEncoding: 'utf8' }),
    view: view === undefined ? undefined : new Uint8Array(view),
    gone: await db.get('doomed', { keyEncoding: 'utf8', valueEncoding: 'utf8' }),
    unicode: await db.get('pool/ünïcode/☃', { keyEncoding: 'utf8', valueEncoding: 'utf8' }),
  };
}

test('writeBatch on LevelDB stores what the utf8 and view encodings would (read back through them), deletes, and matches memory-level', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weldr-fast-batch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const disk = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as PoolDb;
  await disk.open();
  const onDisk = await roundTrip(disk);
  const mem = new MemoryLevel<string, string>({ keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as PoolDb;
  await mem.open();
  const inMemory = await roundTrip(mem);
  t.deepEqual(onDisk, { text: '{"ip":"127.0.0.1"}', view: bytes, gone: undefined, unicode: 'snow ☃' });
  t.deepEqual(inMemory, onDisk);
  // The keys are the UTF-8 bytes of the strings (what the utf8 key encoding writes).
  const keys: string[] = [];
  for await (const k of disk.keys({ keyEncoding: 'utf8' })) keys.push(k);
  t.deepEqual(keys.sort(), ['pool/server/1', 'pool/ünïcode/☃', 'raft/log/1'].sort());
  await disk.close();
  await t.throwsAsync(writeBatch(disk, [{ type: 'put', key: 'k', value: 'v' }], true), { code: 'LEVEL_DATABASE_NOT_OPEN' } as never, 'a closed database refuses, as db.batch does');
});
