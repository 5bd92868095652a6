// <data>/weldr.json: the marker that says "weldr set up this directory", written when
// the directory is created and kept up to date at each open and clean stop.
//
//   {
//     "format": 1,                 layout version of the directory
//     "nodeId": "n1",              the node it belongs to
//     "createdAt": "2026-…Z",
//     "progress": {                what the store held at the last open or clean stop
//       "clean": true,             true: written by a clean stop, nothing ran since
//       "at": "2026-…Z",
//       "appliedIndex": 40, "commitIndex": 41, "lastIndex": 41   (Raft fields in cluster mode)
//     },
//     …                            fields of other components (the cluster identity), kept as they are
//   }
//
// Why: LevelDB asked to open a directory without its CURRENT file creates a fresh,
// empty database there and deletes the old tables as garbage. The marker tells a new
// directory from one that lost its files, so weldr refuses the second instead of starting
// empty. Its progress record catches what no reading of LevelDB's files can: a log cut
// at a record boundary, or a directory rolled back to an older copy.
//
// Writes are atomic and durable: a temporary file is written and fsynced, renamed over
// the marker, and the directory fsynced, so a crash leaves the old or the new marker.
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DataDirRefusedError } from './data-dir.js';

export const MARKER_FILE = 'weldr.json';
/** The directory layout this build reads and writes. */
export const MARKER_FORMAT = 1;

/** What the store held at a point in time; each index can only grow. */
export interface MarkerProgress {
  /** Written by a clean stop (nothing can have changed since), or at an open. */
  readonly clean: boolean;
  readonly at: string;
  /** The pool's applied index. */
  readonly appliedIndex: number;
  /** Raft (cluster mode): the hard state's commit index. */
  readonly commitIndex?: number;
  /** Raft (cluster mode): the last log index. */
  readonly lastIndex?: number;
}

export interface DataDirMarker {
  readonly format: number;
  readonly nodeId: string;
  readonly createdAt: string;
  readonly progress?: MarkerProgress;
  /** Fields owned by other components (e.g. the cluster identity); read and written as they are. */
  readonly [field: string]: unknown;
}

/** The marker of `dir`, undefined when there is none; a marker that cannot be read is refused. */
export async function readMarker(dir: string): Promise<DataDirMarker | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MARKER_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DataDirRefusedError('damaged', dir, `its marker ${MARKER_FILE} is not valid JSON`);
  }
  const problem = markerProblem(value);
  if (problem !== undefined) throw new DataDirRefusedError('damaged', dir, `its marker ${MARKER_FILE} is not valid: ${problem}`);
  const marker = value as DataDirMarker;
  if (marker.format > MARKER_FORMAT) {
    throw new DataDirRefusedError('newer-format', dir, `it was set up by a newer weldr (layout format ${marker.format}; this build reads format ${MARKER_FORMAT})`);
  }
  return marker;
}

/** Write `marker` atomically and durably (temporary file, fsync, rename, fsync of the directory). */
export async function writeMarker(dir: string, marker: DataDirMarker): Promise<void> {
  const problem = markerProblem(marker);
  if (problem !== undefined) throw new TypeError(`refusing to write an invalid marker: ${problem}`);
  const tmp = join(dir, `${MARKER_FILE}.tmp`);
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(`${JSON.stringify(marker, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, join(dir, MARKER_FILE));
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Read, change and write the marker (fields the change does not touch are kept). For
 * components that keep their own fields in it: `updateMarker(dir, (m) => ({ ...m, cluster }))`.
 */
export async function updateMarker(dir: string, change: (marker: DataDirMarker) => DataDirMarker): Promise<DataDirMarker> {
  const current = await readMarker(dir);
  if (current === undefined) throw new DataDirRefusedError('lost-files', dir, `its marker ${MARKER_FILE} is missing`);
  const next = change(current);
  await writeMarker(dir, next);
  return next;
}

/** A new marker for a directory created now. */
export function newMarker(nodeId: string, now: Date = new Date()): DataDirMarker {
  return { format: MARKER_FORMAT, nodeId, createdAt: now.toISOString() };
}

/** Refuse a directory that belongs to another node. */
export function verifyMarker(dir: string, marker: DataDirMarker, expected: { readonly nodeId: string }): void {
  if (marker.nodeId !== expected.nodeId) {
    throw new DataDirRefusedError(
      'other-node',
      dir,
      `it belongs to node ${marker.nodeId} (${MARKER_FILE}), not ${expected.nodeId}: start that node with --id ${marker.nodeId}, or give this one its own --data`,
    );
  }
}

const isIndex = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function markerProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not an object';
  const m = value as Record<string, unknown>;
  if (!Number.isSafeInteger(m.format) || (m.format as number) < 1) return 'format must be a positive integer';
  if (typeof m.nodeId !== 'string' || m.nodeId.length === 0) return 'nodeId must be a non-empty string';
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) return 'createdAt must be a date';
  if (m.progress !== undefined) {
    const p = m.progress as Record<string, unknown> | null;
    if (p === null || typeof p !== 'object') return 'progress must be an object';
    if (typeof p.clean !== 'boolean' || typeof p.at !== 'string' || !isIndex(p.appliedIndex)) return 'progress needs clean, at and appliedIndex';
    if ((p.commitIndex !== undefined && !isIndex(p.commitIndex)) || (p.lastIndex !== undefined && !isIndex(p.lastIndex))) return 'progress indexes must be integers';
  }
  return undefined;
}
