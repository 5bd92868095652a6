// A damaged data directory is never opened silently, and an existing one that lost its
// files is never mistaken for a new one (issue 8, item 5). Each case damages a real
// LevelDB directory between runs, as an operator or a failing disk would, and checks
// that the store refuses to open with a message naming the damage — and changes nothing,
// so the refusal holds on every retry. See README.md "The data directory" for what no
// check can see.
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import {
  DataDirRefusedError,
  LevelPoolStore,
  MARKER_FILE,
  readMarker,
  updateMarker,
  writeMarker,
  type DataDirMarker,
  type PoolDb,
} from '../src/index.js';
import { scanLog } from '../src/level/leveldb-files.js';
import { crc32c, maskCrc } from '../src/level/crc32c.js';
import { runUntilKilled } from './fixtures/kill-writer.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weldr-datadir-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A directory holding `servers` servers, stopped cleanly; `reopen` more clean runs turn the log into tables. */
async function populated(t: ExecutionContext, servers = 40, reopen = 0): Promise<string> {
  const dir = await tempDir(t);
  const store = await LevelPoolStore.open({ location: dir });
  for (let port = 1; port <= servers; port++) await store.propose({ type: 'AddServer', ip: '10.0.0.1', port });
  await store.close();
  for (let i = 0; i < reopen; i++) await (await LevelPoolStore.open({ location: dir })).close();
  return dir;
}

async function logFile(dir: string): Promise<string> {
  const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  if (logs.length === 0) throw new Error('no log file');
  return join(dir, logs.at(-1)!);
}

/** Every file's name and content hash (the marker aside): proves a refusal changed nothing. */
async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort()) {
    if (f === 'LOCK' || f === 'LOG' || f === 'LOG.old') continue;
    out[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex');
  }
  return out;
}

/**
 * Opening is refused for `reason`, twice in a row, and leaves every file as it was —
 * except a refusal from the progress record, which comes after LevelDB has replayed its
 * log into a table (what was lost was lost before): then only the marker must be unchanged.
 */
async function refused(t: ExecutionContext, dir: string, reason: DataDirRefusedError['reason'], message: RegExp, afterOpen = false): Promise<DataDirRefusedError> {
  const before = afterOpen ? { [MARKER_FILE]: (await fingerprint(dir))[MARKER_FILE]! } : await fingerprint(dir);
  const err = await t.throwsAsync(LevelPoolStore.open({ location: dir }), { instanceOf: DataDirRefusedError });
  t.is(err?.reason, reason);
  t.regex(err!.message, message);
  t.regex(err!.message, new RegExp(`^refusing to open data directory ${dir}: `));
  const again = await t.throwsAsync(LevelPoolStore.open({ location: dir }), { instanceOf: DataDirRefusedError });
  t.is(again?.message, err?.message, 'the refusal is the same on a retry');
  const after = await fingerprint(dir);
  t.deepEqual(afterOpen ? { [MARKER_FILE]: after[MARKER_FILE]! } : after, before, 'the refused directory was not modified');
  return err!;
}

test('a new directory gets a marker (format, node id, creation time, progress); a clean stop records its final index', async (t) => {
  const dir = await tempDir(t);
  const store = await LevelPoolStore.open({ location: dir, nodeId: 'n7' });
  let marker = await readMarker(dir);
  t.like(marker, { format: 1, nodeId: 'n7', progress: { clean: false, appliedIndex: 0 } });
  t.false(Number.isNaN(Date.parse(marker!.createdAt)));
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
  await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 2 });
  await store.close();
  marker = await readMarker(dir);
  t.like(marker, { progress: { clean: true, appliedIndex: 2 } });
  const again = await LevelPoolStore.open({ location: dir, nodeId: 'n7' });
  t.is(again.snapshot().servers.length, 2);
  t.like(await readMarker(dir), { progress: { clean: false, appliedIndex: 2 } });
  await again.close();
  t.false((await readdir(dir)).includes(`${MARKER_FILE}.tmp`));
});

test('4 bytes flipped in the LevelDB log: refused (LevelDB alone would start with none of the 40 servers)', async (t) => {
  const dir = await populated(t);
  const log = await logFile(dir);
  const bytes = await readFile(log);
  for (let i = 0; i < 4; i++) bytes[200 + i]! ^= 0xff;
  await writeFile(log, bytes);
  await refused(t, dir, 'damaged', /write-ahead log \d+\.log is damaged at byte \d+ \(checksum mismatch, with an intact record at byte \d+ after it\): LevelDB would silently drop the writes there; restore the directory from a backup/);
});

test('the LevelDB log truncated in the middle of a record after a clean stop: refused', async (t) => {
  const dir = await populated(t);
  const log = await logFile(dir);
  await truncate(log, Math.floor((await stat(log)).size / 2));
  await refused(t, dir, 'damaged', /\.log ends in an incomplete record \(the last record is incomplete at byte \d+\) although weldr stopped cleanly at .*: the file was truncated or damaged/);
});

test('the LevelDB log truncated exactly at a record boundary after a clean stop: refused by the progress record', async (t) => {
  const dir = await populated(t);
  const log = await logFile(dir);
  const scan = scanLog('x.log', await readFile(log));
  t.is(scan.records, 42, 'the initial state, 40 writes, and the clean stop’s synced write');
  // Cut after the 20th record (the initial state and 19 writes): a valid, shorter log.
  const boundary = recordBoundaries(await readFile(log))[19]!;
  await truncate(log, boundary);
  t.like(scanLog('x.log', await readFile(log)), { records: 20, damage: undefined, tornTail: undefined });
  await refused(t, dir, 'damaged', /its pool is at index 19, but it was at 40 when weldr stopped cleanly at .*: acknowledged writes are missing/, true);
});

test('CURRENT missing: refused, and the old tables are kept (LevelDB alone would start empty and delete them)', async (t) => {
  const dir = await populated(t, 40, 2);
  t.true((await readdir(dir)).some((f) => f.endsWith('.ldb')), 'the writes are in a table');
  await unlink(join(dir, 'CURRENT'));
  await refused(t, dir, 'lost-files', /weldr set it up on .* \(weldr\.json\) but its database is gone \(no CURRENT file; \d+ LevelDB files remain \(.*\.ldb/);
});

test('every LevelDB file gone but the marker left: refused, not started empty', async (t) => {
  const dir = await populated(t);
  for (const f of await readdir(dir)) if (f !== MARKER_FILE) await unlink(join(dir, f));
  await refused(t, dir, 'lost-files', /database is gone \(no CURRENT file\), so it would start with an empty pool/);
});

test('the current LevelDB log deleted: refused (its writes would be lost without a word)', async (t) => {
  const dir = await populated(t, 10);
  await unlink(await logFile(dir));
  await refused(t, dir, 'damaged', /write-ahead log \d+\.log, named by MANIFEST-\d+, is missing: the most recent writes are lost/);
});

test('a table file truncated: refused', async (t) => {
  const dir = await populated(t, 40, 2);
  const table = (await readdir(dir)).find((f) => f.endsWith('.ldb'))!;
  await truncate(join(dir, table), 100);
  await refused(t, dir, 'damaged', new RegExp(`table ${table} is 100 bytes but MANIFEST-\\d+ recorded \\d+: it was truncated or replaced`));
});

test('a torn last write after a crash is dropped with a warning; every acknowledged write is there', async (t) => {
  const dir = await tempDir(t);
  const acked = await runUntilKilled('level-writer.ts', dir, 30);
  // What a crash in the middle of appending leaves: a record header and half its data.
  const log = await logFile(dir);
  const size = (await stat(log)).size;
  if (32768 - (size % 32768) < 40) await appendFile(log, Buffer.alloc(32768 - (size % 32768))); // keep the torn record inside one block
  const torn = Buffer.alloc(7 + 10);
  torn.writeUInt32LE(maskCrc(crc32c(Buffer.from([1, ...Buffer.alloc(30, 7)]))), 0);
  torn.writeUInt16LE(30, 4);
  torn[6] = 1;
  await appendFile(log, torn);
  const warnings: object[] = [];
  const store = await LevelPoolStore.open({ location: dir, log: { info() {}, warn: (o) => warnings.push(o) } });
  t.teardown(() => store.close());
  t.true(store.snapshot().index >= acked);
  t.like(warnings, [{ event: 'data_dir_torn_write', file: log.slice(dir.length + 1), bytes: 17 }]);
});

test('a directory from before the marker (LevelDB, no weldr.json) opens and gets a marker', async (t) => {
  const dir = await tempDir(t);
  const db = new Level<string, string>(dir);
  const old = await LevelPoolStore.open({ db: db as unknown as PoolDb, closeDb: true });
  await old.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
  await old.close();
  t.is(await readMarker(dir), undefined);
  const infos: object[] = [];
  const store = await LevelPoolStore.open({ location: dir, nodeId: 'n2', log: { info: (o) => infos.push(o), warn() {} } });
  t.is(store.snapshot().servers.length, 1);
  await store.close();
  t.like(await readMarker(dir), { format: 1, nodeId: 'n2', progress: { clean: true, appliedIndex: 1 } });
  t.like(infos, [{ event: 'data_dir_marked' }]);
});

test('a directory from before the marker that lost CURRENT: refused', async (t) => {
  const dir = await tempDir(t);
  const db = new Level<string, string>(dir);
  const old = await LevelPoolStore.open({ db: db as unknown as PoolDb, closeDb: true });
  await old.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
  await old.close();
  await unlink(join(dir, 'CURRENT'));
  await refused(t, dir, 'lost-files', /it holds a LevelDB database without its CURRENT file; \d+ LevelDB files remain .*: opening it would start an empty pool and delete the old tables/);
});

test('a directory that belongs to another node: refused', async (t) => {
  const dir = await populated(t, 1);
  const err = await t.throwsAsync(LevelPoolStore.open({ location: dir, nodeId: 'n2' }), { instanceOf: DataDirRefusedError });
  t.is(err?.reason, 'other-node');
  t.regex(err!.message, /it belongs to node n1 \(weldr\.json\), not n2: start that node with --id n1, or give this one its own --data$/);
});

test('a marker that is not valid JSON, or from a newer weldr: refused', async (t) => {
  const dir = await populated(t, 1);
  const good = await readFile(join(dir, MARKER_FILE), 'utf8');
  await writeFile(join(dir, MARKER_FILE), '{"format":1,');
  await refused(t, dir, 'damaged', /its marker weldr\.json is not valid JSON/);
  await writeFile(join(dir, MARKER_FILE), JSON.stringify({ ...JSON.parse(good), format: 2 }));
  await refused(t, dir, 'newer-format', /set up by a newer weldr \(layout format 2; this build reads format 1\)/);
  await writeFile(join(dir, MARKER_FILE), JSON.stringify({ ...JSON.parse(good), nodeId: '' }));
  await refused(t, dir, 'damaged', /not valid: nodeId must be a non-empty string/);
});

test('the marker API keeps fields of other components (the cluster identity) across the store’s own updates', async (t) => {
  const dir = await populated(t, 1);
  await updateMarker(dir, (m) => ({ ...m, cluster: { id: 'c-123', member: 'n1', incarnation: 2 } }));
  const store = await LevelPoolStore.open({ location: dir });
  await store.close();
  const marker = (await readMarker(dir)) as DataDirMarker & { cluster?: unknown };
  t.deepEqual(marker.cluster, { id: 'c-123', member: 'n1', incarnation: 2 });
  t.like(marker, { progress: { clean: true, appliedIndex: 1 } });
  await t.throwsAsync(writeMarker(dir, { ...marker, nodeId: '' }), { instanceOf: TypeError });
});

test('scanLog: damage in an early block with intact blocks after it; a torn tail; an intact log', (t) => {
  const records = Array.from({ length: 30 }, (_, i) => Buffer.alloc(3000, i + 1));
  const log = buildLog(records);
  t.like(scanLog('a.log', log), { records: 30, damage: undefined, tornTail: undefined });
  const flipped = Buffer.from(log);
  flipped[5000]! ^= 1;
  t.regex(scanLog('a.log', flipped).damage?.reason ?? '', /^checksum mismatch, with an intact record at byte \d+ after it$/);
  const torn = log.subarray(0, log.length - 100);
  t.like(scanLog('a.log', torn), { records: 29, damage: undefined, tornTail: { reason: 'the last record is incomplete' } });
  const zeroedTail = Buffer.concat([log, Buffer.alloc(500)]);
  t.like(scanLog('a.log', zeroedTail), { records: 30, damage: undefined, tornTail: { bytes: 500 } });
});

/** Byte offsets where each record of a single-block-record log ends. */
function recordBoundaries(buf: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos + 7 <= buf.length) {
    if (32768 - (pos % 32768) < 7) {
      pos += 32768 - (pos % 32768);
      continue;
    }
    pos += 7 + buf.readUInt16LE(pos + 4);
    out.push(pos);
  }
  return out;
}

/** A LevelDB log holding `records` (fragmented across blocks as LevelDB does). */
function buildLog(records: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const emit = (type: number, data: Buffer): void => {
    const header = Buffer.alloc(7);
    header.writeUInt32LE(maskCrc(crc32c(Buffer.concat([Buffer.from([type]), data]))), 0);
    header.writeUInt16LE(data.length, 4);
    header[6] = type;
    parts.push(header, data);
    offset += 7 + data.length;
  };
  for (const rec of records) {
    let left = rec;
    let begin = true;
    do {
      const room = 32768 - (offset % 32768);
      if (room < 7) {
        parts.push(Buffer.alloc(room));
        offset += room;
        continue;
      }
      const n = Math.min(left.length, room - 7);
      const end = n === left.length;
      emit(begin && end ? 1 : begin ? 2 : end ? 4 : 3, left.subarray(0, n));
      left = left.subarray(n);
      begin = false;
    } while (left.length > 0);
  }
  return Buffer.concat(parts);
}
