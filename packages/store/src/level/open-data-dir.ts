// Opening a node's data directory (--data): decide whether it is new, intact, or
// damaged before LevelDB touches it, open LevelDB so that it can never create a fresh
// database over a lost one, and keep the marker's progress record (marker.ts).
//
//   no CURRENT, no marker, no LevelDB files   new: LevelDB creates the database
//   no CURRENT, but a marker or LevelDB files  refused (lost-files): LevelDB would start
//                                              empty and delete the old tables
//   CURRENT                                    the logs and MANIFEST are checked
//                                              (leveldb-files.ts), then LevelDB opens with
//                                              createIfMissing: false
//
// After the stores have loaded their state, begin() compares it with the progress the
// marker recorded at the last open or clean stop (indexes never go back; after a clean
// stop nothing can have changed) and records the new starting point. close() makes every
// write durable, closes LevelDB and records a clean stop.
import { Level } from 'level';
import { DataDirRefusedError, dataDirError } from './data-dir.js';
import { makeDirectorySync } from './make-directory.js';
import { UTF8, type PoolDb } from './layout.js';
import { checkLevelDbFiles, listLevelDbFiles, type FileProblem, type LogScan } from './leveldb-files.js';
import { MARKER_FILE, newMarker, readMarker, updateMarker, verifyMarker, writeMarker, type DataDirMarker, type MarkerProgress } from './marker.js';

/** What the stores hold, for the progress record. */
export interface StoreProgress {
  readonly appliedIndex: number;
  readonly commitIndex?: number;
  readonly lastIndex?: number;
}

/** Things worth a log line that are not errors (pino-compatible). */
export interface DataDirLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DataDirOptions {
  /** The directory (created when missing, with its parents). */
  readonly location: string;
  /** This node's id: recorded in a new directory's marker, checked against an existing one. */
  readonly nodeId: string;
  readonly log?: DataDirLogger;
}

/** The key a clean stop writes with sync, so that every earlier unsynced write is durable too. */
const STOP_KEY = 'weldr/stopped-at';

export class DataDir {
  private began = false;

  private constructor(
    readonly location: string,
    readonly db: PoolDb,
    private readonly nodeId: string,
    private marker: DataDirMarker | undefined,
    /** LevelDB created the database in this open. */
    readonly isNew: boolean,
    private readonly log: DataDirLogger | undefined,
  ) {}

  /** Check and open the directory; throws DataDirRefusedError or StoreOpenError in operator terms. */
  static async open(options: DataDirOptions): Promise<DataDir> {
    const { location, nodeId, log } = options;
    let marker: DataDirMarker | undefined;
    let isNew = false;
    const notices: (() => void)[] = [];
    try {
      makeDirectorySync(location);
      marker = await readMarker(location);
      if (marker !== undefined) verifyMarker(location, marker, { nodeId });
      const files = await listLevelDbFiles(location);
      if (!files.hasCurrent) {
        const remains = files.dataFiles.length === 0 ? '' : `; ${files.dataFiles.length} LevelDB files remain (${files.dataFiles.slice(0, 4).join(', ')}${files.dataFiles.length > 4 ? ', …' : ''})`;
        if (marker !== undefined) {
          throw new DataDirRefusedError('lost-files', location, `weldr set it up on ${marker.createdAt} (${MARKER_FILE}) but its database is gone (no CURRENT file${remains}), so it would start with an empty pool`);
        }
        if (files.dataFiles.length > 0) {
          throw new DataDirRefusedError('lost-files', location, `it holds a LevelDB database without its CURRENT file${remains}: opening it would start an empty pool and delete the old tables`);
        }
        isNew = true;
      } else {
        const check = await checkLevelDbFiles(location);
        if (check.problems.length > 0) {
          throw new DataDirRefusedError('damaged', location, describe(check.problems));
        }
        for (const tail of check.tornTails) {
          if (marker?.progress?.clean === true) {
            throw new DataDirRefusedError(
              'damaged',
              location,
              `${tail.file} ends in an incomplete record (${tail.tornTail!.reason} at byte ${tail.tornTail!.offset}) although weldr stopped cleanly at ${marker.progress.at}: the file was truncated or damaged`,
            );
          }
          notices.push(() => log?.warn({ event: 'data_dir_torn_write', data: location, file: tail.file, bytes: tail.tornTail!.bytes }, tornTailNotice(tail)));
        }
      }
    } catch (err) {
      if (err instanceof DataDirRefusedError) throw err;
      throw dataDirError(location, err);
    }
    // createIfMissing only for a new directory: never a fresh database over a lost one.
    const db = new Level<string, string>(location, { ...UTF8, createIfMissing: isNew, errorIfExists: isNew }) as unknown as PoolDb;
    try {
      await db.open();
    } catch (err) {
      throw dataDirError(location, err);
    }
    for (const notice of notices) notice();
    return new DataDir(location, db, nodeId, marker, isNew, log);
  }

  /** The marker as last read or written (undefined before begin() on a directory that had none). */
  get currentMarker(): DataDirMarker | undefined {
    return this.marker;
  }

  /**
   * Check what the stores loaded against the recorded progress, then record it as the
   * new starting point (and write the marker of a new or older directory).
   */
  async begin(progress: StoreProgress): Promise<void> {
    const recorded = this.marker?.progress;
    if (recorded !== undefined) {
      const problem = progressProblem(recorded, progress);
      if (problem !== undefined) throw new DataDirRefusedError('damaged', this.location, problem);
    }
    const at = new Date();
    const next: MarkerProgress = { clean: false, at: at.toISOString(), ...progress };
    try {
      if (this.marker === undefined) {
        this.marker = { ...newMarker(this.nodeId, at), progress: next };
        await writeMarker(this.location, this.marker);
        if (!this.isNew) this.log?.info({ event: 'data_dir_marked', data: this.location }, `data directory ${this.location} predates ${MARKER_FILE}: marker added`);
      } else {
        this.marker = await updateMarker(this.location, (m) => ({ ...m, progress: next }));
      }
    } catch (err) {
      if (err instanceof DataDirRefusedError) throw err;
      throw dataDirError(this.location, err);
    }
    this.began = true;
  }

  /**
   * Close LevelDB. With `progress` (a clean stop): first make every write durable, then
   * record the clean stop in the marker. Without it (after a failure): just close.
   */
  async close(progress?: StoreProgress): Promise<void> {
    if (progress === undefined || !this.began) {
      await this.db.close();
      return;
    }
    // One synced write flushes every earlier unsynced one in LevelDB's log.
    await this.db.put(STOP_KEY, new Date().toISOString(), { ...UTF8, sync: true } as never);
    await this.db.close();
    this.marker = await updateMarker(this.location, (m) => ({ ...m, progress: { clean: true, at: new Date().toISOString(), ...progress } }));
  }
}

function progressProblem(recorded: MarkerProgress, now: StoreProgress): string | undefined {
  const when = recorded.clean ? `when weldr stopped cleanly at ${recorded.at}` : `when weldr started at ${recorded.at}`;
  const lost = 'acknowledged writes are missing (a log was truncated, or the directory was rolled back to an older copy)';
  if (now.appliedIndex < recorded.appliedIndex) return `its pool is at index ${now.appliedIndex}, but it was at ${recorded.appliedIndex} ${when}: ${lost}`;
  if (recorded.commitIndex !== undefined && (now.commitIndex ?? 0) < recorded.commitIndex) {
    return `its Raft commit index is ${now.commitIndex ?? 0}, but it was ${recorded.commitIndex} ${when}: ${lost}`;
  }
  if (recorded.clean) {
    // Nothing ran since a clean stop: anything that differs was changed behind weldr's back.
    const same = now.appliedIndex === recorded.appliedIndex && now.commitIndex === recorded.commitIndex && now.lastIndex === recorded.lastIndex;
    if (!same) {
      return `it holds applied ${now.appliedIndex}, commit ${now.commitIndex ?? '-'}, last ${now.lastIndex ?? '-'}, but ${when} it held applied ${recorded.appliedIndex}, commit ${recorded.commitIndex ?? '-'}, last ${recorded.lastIndex ?? '-'}: it was changed or truncated while weldr was stopped`;
    }
  }
  return undefined;
}

function describe(problems: readonly FileProblem[]): string {
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  switch (first.kind) {
    case 'log-damaged':
      return `its write-ahead log ${first.scan.file} is damaged at byte ${first.scan.damage!.offset} (${first.scan.damage!.reason}): LevelDB would silently drop the writes there${more}`;
    case 'log-missing':
      return `its write-ahead log ${first.file}, named by ${first.manifest}, is missing: the most recent writes are lost${more}`;
    case 'table-size':
      return `table ${first.file} is ${first.actual === undefined ? 'missing' : `${first.actual} bytes`} but ${first.manifest} recorded ${first.expected}: it was truncated or replaced${more}`;
  }
}

function tornTailNotice(scan: LogScan): string {
  return `${scan.file} ends in an incomplete write (${scan.tornTail!.bytes} bytes, ${scan.tornTail!.reason}) left by a crash; it was never acknowledged and is dropped`;
}
