// Reads LevelDB's own files before LevelDB opens them, to find damage that LevelDB
// would otherwise repair silently.
//
// LevelDB replays its write-ahead log (<n>.log) at open. With `paranoid_checks` off —
// and classic-level offers no way to turn it on — a record whose checksum fails is
// skipped together with the rest of its 32 KiB block, a note goes to the LOG text file,
// and the open succeeds: every write in the dropped span is gone, and later records are
// replayed as if nothing happened. The first open then rewrites the log into a table and
// deletes it, so the evidence is gone too. So weldr reads the log files first, in
// LevelDB's record format (db/log_format.h, db/log_reader.cc):
//
//   the file is a sequence of 32 KiB blocks; a block holds records
//     checksum u32le (masked CRC-32C of type and data) | length u16le | type u8 | data
//   type FULL (1) or FIRST (2), MIDDLE (3)…, LAST (4) fragments of one logical record;
//   fewer than 7 bytes left in a block are zero padding.
//
// What it can tell apart:
//   - damage: an unreadable record *followed by an intact one* — records were lost in
//     the middle of the log (a flipped bit, a zeroed page, an overwritten range);
//   - a torn tail: the log ends in an incomplete or unreadable record with nothing intact
//     after it. That is what a crash in the middle of a write leaves (the write was never
//     acknowledged: a synced write returns only once whole), and also what a truncation
//     leaves; the caller decides with what it knows about the last stop.
// A truncation exactly at a record boundary leaves a perfectly valid, shorter log: no
// reading of the file can see it (the data-directory marker's progress record can).
//
// The MANIFEST (named by CURRENT) is read for two facts LevelDB does not check at open:
// the log file it names as current must exist (a deleted log loses the latest writes
// without a word), and every live table must have the size the MANIFEST recorded.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c, unmaskCrc } from './crc32c.js';

const BLOCK = 32 * 1024;
const HEADER = 7;
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;
/** Bytes of CRC work spent looking for an intact record after a bad one, before giving up (and calling it damage). */
const RESYNC_BUDGET = 256 << 20;

export interface LogScan {
  readonly file: string;
  readonly bytes: number;
  /** Intact logical records (LevelDB write batches). */
  readonly records: number;
  /** Records lost in the middle of the log: refuse to open. */
  readonly damage?: { readonly offset: number; readonly reason: string };
  /** An incomplete or unreadable end with nothing intact after it (a write cut short, or a truncation). */
  readonly tornTail?: { readonly offset: number; readonly bytes: number; readonly reason: string };
}

/** Scan one log file's bytes (see the file comment). */
export function scanLog(file: string, buf: Uint8Array): LogScan {
  const n = buf.length;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let records = 0;
  let inFragment = false;
  let problem: { offset: number; reason: string } | undefined;
  let pos = 0;
  const markProblem = (offset: number, reason: string): void => {
    problem ??= { offset, reason };
  };
  while (pos < n) {
    const blockLeft = BLOCK - (pos % BLOCK);
    if (blockLeft < HEADER) {
      pos += blockLeft; // trailer padding
      continue;
    }
    if (n - pos < HEADER) {
      markProblem(pos, 'the last record header is incomplete');
      break;
    }
    const length = view.getUint16(pos + 4, true);
    const type = buf[pos + 6]!;
    if (HEADER + length > blockLeft) {
      markProblem(pos, 'bad record length');
      break;
    }
    if (pos + HEADER + length > n) {
      markProblem(pos, 'the last record is incomplete');
      break;
    }
    if (type === 0 && length === 0) {
      // Zeroes: LevelDB skips the rest of the block.
      markProblem(pos, 'zeroed bytes');
      break;
    }
    if (unmaskCrc(view.getUint32(pos, true)) !== crc32c(buf, pos + 6, pos + HEADER + length)) {
      markProblem(pos, 'checksum mismatch');
      break;
    }
    if (type === FULL || type === FIRST) {
      if (inFragment) {
        markProblem(pos, 'a fragmented record has no end');
        break;
      }
      if (type === FULL) records++;
      else inFragment = true;
    } else if (type === MIDDLE || type === LAST) {
      if (!inFragment) {
        markProblem(pos, 'a record fragment has no start');
        break;
      }
      if (type === LAST) {
        inFragment = false;
        records++;
      }
    } else {
      markProblem(pos, `unknown record type ${type}`);
      break;
    }
    pos += HEADER + length;
  }
  if (problem === undefined && inFragment) problem = { offset: pos, reason: 'the last record has no end' };
  if (problem === undefined) return { file, bytes: n, records };
  const intact = nextIntactRecord(buf, view, problem.offset + 1);
  if (intact === 'budget') return { file, bytes: n, records, damage: { ...problem, reason: `${problem.reason}; the rest of the file could not be checked` } };
  if (intact !== undefined) return { file, bytes: n, records, damage: { ...problem, reason: `${problem.reason}, with an intact record at byte ${intact} after it` } };
  return { file, bytes: n, records, tornTail: { offset: problem.offset, bytes: n - problem.offset, reason: problem.reason } };
}

/**
 * The offset of the first intact record at or after `from` (any offset: after damage
 * the block structure cannot be trusted), or undefined if there is none. A random match
 * needs a 32-bit checksum to agree: one in four billion.
 */
function nextIntactRecord(buf: Uint8Array, view: DataView, from: number): number | 'budget' | undefined {
  let budget = RESYNC_BUDGET;
  for (let o = from; o + HEADER <= buf.length; o++) {
    const blockLeft = BLOCK - (o % BLOCK);
    if (blockLeft < HEADER) continue;
    const type = buf[o + 6]!;
    if (type < FULL || type > LAST) continue;
    const length = view.getUint16(o + 4, true);
    if (length === 0 || HEADER + length > blockLeft || o + HEADER + length > buf.length) continue;
    budget -= length;
    if (budget < 0) return 'budget';
    if (unmaskCrc(view.getUint32(o, true)) === crc32c(buf, o + 6, o + HEADER + length)) return o;
  }
  return undefined;
}

/** The logical records of a log-format file (the MANIFEST), stopping at the first problem. */
function logicalRecords(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  let parts: Uint8Array[] | null = null;
  while (pos + HEADER <= buf.length) {
    const blockLeft = BLOCK - (pos % BLOCK);
    if (blockLeft < HEADER) {
      pos += blockLeft;
      continue;
    }
    const length = view.getUint16(pos + 4, true);
    const type = buf[pos + 6]!;
    if (HEADER + length > blockLeft || pos + HEADER + length > buf.length) break;
    if (unmaskCrc(view.getUint32(pos, true)) !== crc32c(buf, pos + 6, pos + HEADER + length)) break;
    const data = buf.subarray(pos + HEADER, pos + HEADER + length);
    if (type === FULL) out.push(data);
    else if (type === FIRST) parts = [data];
    else if (type === MIDDLE && parts !== null) parts.push(data);
    else if (type === LAST && parts !== null) {
      parts.push(data);
      out.push(Buffer.concat(parts));
      parts = null;
    } else break;
    pos += HEADER + length;
  }
  return out;
}

export interface ManifestFacts {
  readonly manifest: string;
  /** The write-ahead log LevelDB replays first (must exist). */
  readonly logNumber: number;
  /** Live table files and the size the MANIFEST recorded for each. */
  readonly tables: ReadonlyMap<number, number>;
}

/** The facts of the MANIFEST named by CURRENT, or undefined when it cannot be read (LevelDB's open will say why). */
export async function readManifest(dir: string): Promise<ManifestFacts | undefined> {
  let manifest: string;
  let buf: Uint8Array;
  try {
    manifest = (await readFile(join(dir, 'CURRENT'), 'utf8')).trim();
    if (!/^MANIFEST-\d+$/.test(manifest)) return undefined;
    buf = await readFile(join(dir, manifest));
  } catch {
    return undefined;
  }
  let logNumber: number | undefined;
  const tables = new Map<number, number>();
  for (const record of logicalRecords(buf)) {
    const edit = decodeVersionEdit(record);
    if (edit === undefined) return undefined;
    if (edit.logNumber !== undefined) logNumber = edit.logNumber;
    for (const f of edit.deleted) tables.delete(f);
    for (const [f, size] of edit.added) tables.set(f, size);
  }
  if (logNumber === undefined) return undefined;
  return { manifest, logNumber, tables };
}

interface VersionEdit {
  logNumber?: number;
  deleted: number[];
  added: [number, number][];
}

/** db/version_edit.cc: a sequence of (varint tag, fields). */
function decodeVersionEdit(buf: Uint8Array): VersionEdit | undefined {
  const edit: VersionEdit = { deleted: [], added: [] };
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new RangeError('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new RangeError('varint too long');
  };
  const slice = (): void => {
    const len = varint();
    pos += len;
    if (pos > buf.length) throw new RangeError('truncated slice');
  };
  try {
    while (pos < buf.length) {
      const tag = varint();
      switch (tag) {
        case 1: // comparator
          slice();
          break;
        case 2: // log number
          edit.logNumber = varint();
          break;
        case 3: // next file number
        case 4: // last sequence
        case 9: // previous log number
          varint();
          break;
        case 5: // compact pointer: level, key
          varint();
          slice();
          break;
        case 6: // deleted file: level, number
          varint();
          edit.deleted.push(varint());
          break;
        case 7: {
          // new file: level, number, size, smallest key, largest key
          varint();
          const number = varint();
          const size = varint();
          slice();
          slice();
          edit.added.push([number, size]);
          break;
        }
        default:
          return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return edit;
}

export interface LevelDbFiles {
  readonly hasCurrent: boolean;
  /** Files LevelDB writes data to (logs, tables, manifests); LOCK and LOG are not data. */
  readonly dataFiles: readonly string[];
}

/** Which LevelDB files the directory holds. */
export async function listLevelDbFiles(dir: string): Promise<LevelDbFiles> {
  const names = await readdir(dir);
  return {
    hasCurrent: names.includes('CURRENT'),
    dataFiles: names.filter((f) => /^\d+\.(log|ldb|sst)$/.test(f) || /^MANIFEST-\d+$/.test(f)).sort(),
  };
}

export type FileProblem =
  | { readonly kind: 'log-damaged'; readonly scan: LogScan }
  | { readonly kind: 'log-missing'; readonly file: string; readonly manifest: string }
  | { readonly kind: 'table-size'; readonly file: string; readonly expected: number; readonly actual: number | undefined; readonly manifest: string };

export interface FileCheck {
  readonly problems: readonly FileProblem[];
  /** Logs that end in a torn record (acceptable after a crash, not after a clean stop). */
  readonly tornTails: readonly LogScan[];
}

/** Check an existing LevelDB directory's logs and MANIFEST, reading only (see the file comment). */
export async function checkLevelDbFiles(dir: string): Promise<FileCheck> {
  const problems: FileProblem[] = [];
  const tornTails: LogScan[] = [];
  const names = await readdir(dir);
  const facts = await readManifest(dir);
  for (const name of names.filter((f) => /^\d+\.log$/.test(f)).sort()) {
    // Logs older than the MANIFEST's current one are obsolete (LevelDB deletes them).
    if (facts !== undefined && Number(name.slice(0, -4)) < facts.logNumber) continue;
    const scan = scanLog(name, await readFile(join(dir, name)));
    if (scan.damage !== undefined) problems.push({ kind: 'log-damaged', scan });
    else if (scan.tornTail !== undefined) tornTails.push(scan);
  }
  if (facts !== undefined) {
    const logName = `${String(facts.logNumber).padStart(6, '0')}.log`;
    if (!names.includes(logName)) problems.push({ kind: 'log-missing', file: logName, manifest: facts.manifest });
    for (const [number, expected] of facts.tables) {
      const base = String(number).padStart(6, '0');
      const file = names.includes(`${base}.ldb`) ? `${base}.ldb` : `${base}.sst`;
      const actual = await stat(join(dir, file)).then(
        (s) => s.size,
        () => undefined,
      );
      if (actual !== expected) problems.push({ kind: 'table-size', file, expected, actual, manifest: facts.manifest });
    }
  }
  return { problems, tornTails };
}
