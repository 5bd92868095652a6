import { MESSAGE_TYPES, type Entry, type Message, type MessageType } from '../types.js';
import { MAX_LEASE_MS } from './lease.js';

/** Why a peer message was refused by validateMessage. */
export class InvalidMessage extends Error {
  override readonly name = 'InvalidMessage';
}

const TYPES: ReadonlySet<string> = new Set(MESSAGE_TYPES);
const ENTRY_TYPES: ReadonlySet<string> = new Set(['normal', 'confChange', 'noop']);

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Terms only grow, are persisted, and every election needs the others to
 * adopt the candidate's term + 1: a server that adopted a term at the limit
 * of what its peers accept can never be elected again, nor can anyone after
 * it (one heartbeat with term 2^40 wedged a cluster for good this way). Two
 * rules keep a message from doing that:
 *
 * - MAX_TERM: no term above 2^40 − 2^20 is accepted in any field of any
 *   message (refused here, so a transport logs it). The 2^20 below 2^40 are
 *   headroom kept clear of the limit; 2^40 itself keeps terms, and term + 1,
 *   exact in a double.
 * - MAX_TERM_JUMP: the core refuses (and never adopts) a term more than 2^32
 *   above its own, whoever sends it — leader, candidate or response. At one
 *   election per 500 ms takes 68 years to move a term by 2^32, so no
 *   legitimate gap, not even a new member's from term 0, comes near it; a
 *   corrupt term costs the cluster at most 2^32 of its ~2^40 terms, so it
 *   takes some 255 separate corrupt messages, each adopted, to approach the
 *   limit, instead of one.
 */
export const MAX_TERM = 2 ** 40 - 2 ** 20;
export const MAX_TERM_JUMP = 2 ** 32;

function isTerm(v: unknown): v is number {
  return isIndex(v) && v <= MAX_TERM;
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256;
}

function checkEntry(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return 'entry is not an object';
  const x = e as Record<string, unknown>;
  if (!isTerm(x['term']) || !isIndex(x['index']) || x['index'] === 0) return 'entry term/index invalid';
  if (typeof x['type'] !== 'string' || !ENTRY_TYPES.has(x['type'])) return 'entry type invalid';
  if (!(x['data'] instanceof Uint8Array)) return 'entry data is not a Uint8Array';
  return undefined;
}

function checkConfState(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return Array.isArray(c['voters']) && c['voters'].every(isId) && Array.isArray(c['learners']) && c['learners'].every(isId);
}

function checkChunk(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'snapshot is not an object';
  const c = v as Record<string, unknown>;
  const md = c['metadata'] as Record<string, unknown> | null | undefined;
  if (typeof md !== 'object' || md === null) return 'snapshot metadata missing';
  if (!isIndex(md['index']) || !isTerm(md['term']) || md['index'] === 0) return 'snapshot index/term invalid';
  if (!checkConfState(md['confState'])) return 'snapshot confState invalid';
  if (!isIndex(c['chunks']) || c['chunks'] === 0 || !isIndex(c['chunk']) || c['chunk'] >= c['chunks']) {
    return 'snapshot chunk numbering invalid';
  }
  if (!(c['data'] instanceof Uint8Array)) return 'snapshot data is not a Uint8Array';
  return undefined;
}

/**
 * Check that an untrusted value is a well-formed Message: known type,
 * non-empty ids, non-negative integer numbers, well-formed entries (contiguous
 * from index + 1 for MsgApp) and snapshot chunks. The core runs this on every
 * step(); a transport can run it right after decoding. Never throws (not even
 * on proxies or throwing getters); a valid message comes back as a fresh
 * object with only the known fields, read once (entries and the snapshot
 * chunk are shared, and must be plain data as a decoder produces).
 */
export function validateMessage(v: unknown): Message | InvalidMessage {
  try {
    const m = copy(v);
    if (m === undefined) return new InvalidMessage('message is not an object');
    const why = check(m);
    return why === undefined ? (m as unknown as Message) : new InvalidMessage(why);
  } catch {
    return new InvalidMessage('message could not be read');
  }
}

/** The known fields of v, each read once, as own data properties of a fresh object (one shape: fast). */
function copy(v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {
    type: src['type'],
    from: src['from'],
    to: src['to'],
    term: src['term'],
    logTerm: src['logTerm'],
    index: src['index'],
    commit: src['commit'],
    reject: src['reject'],
    rejectHint: src['rejectHint'],
    tick: src['tick'],
    // A peer that predates the field promises nothing: 0, which no lease counts.
    lease: src['lease'] === undefined ? 0 : src['lease'],
  };
  const entries = src['entries'];
  if (entries !== undefined) out['entries'] = entries;
  const snapshot = src['snapshot'];
  if (snapshot !== undefined) out['snapshot'] = snapshot;
  const context = src['context'];
  if (context !== undefined) out['context'] = context;
  return out;
}

function check(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'message is not an object';
  const m = v as Record<string, unknown>;
  const type = m['type'];
  if (typeof type !== 'string' || !TYPES.has(type)) return `unknown message type ${String(type)}`;
  if (!isId(m['from']) || !isId(m['to'])) return 'from/to must be non-empty strings';
  for (const k of ['term', 'logTerm', 'index', 'commit', 'rejectHint', 'tick'] as const) {
    if (!isIndex(m[k])) return `${k} must be a non-negative integer`;
  }
  if ((m['term'] as number) > MAX_TERM || (m['logTerm'] as number) > MAX_TERM) return `term beyond ${MAX_TERM}`;
  if (!isIndex(m['lease']) || (m['lease'] as number) > MAX_LEASE_MS) return `lease must be an integer in [0, ${MAX_LEASE_MS}] ms`;
  if (typeof m['reject'] !== 'boolean') return 'reject must be a boolean';
  if (m['context'] !== undefined && typeof m['context'] !== 'string') return 'context must be a string';
  const entries = m['entries'];
  if (entries !== undefined) {
    if (!Array.isArray(entries)) return 'entries must be an array';
    let expect = (m['index'] as number) + 1;
    let prevTerm = m['logTerm'] as number;
    for (const e of entries) {
      const bad = checkEntry(e);
      if (bad !== undefined) return bad;
      const x = e as Entry;
      // §5.3: appended entries are consecutive and their terms never decrease
      // nor exceed the sender's term.
      if (x.index !== expect || x.term < prevTerm || x.term > (m['term'] as number)) return 'entries not contiguous';
      expect++;
      prevTerm = x.term;
    }
  }
  if (m['snapshot'] !== undefined) {
    const bad = checkChunk(m['snapshot']);
    if (bad !== undefined) return bad;
  }
  const t = type as MessageType;
  if (t === 'MsgSnap' && m['snapshot'] === undefined) return 'MsgSnap without snapshot';
  if ((t === 'MsgReadIndex' || t === 'MsgReadIndexResp') && m['context'] === undefined) return `${t} without context`;
  return undefined;
}
