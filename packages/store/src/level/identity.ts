// What a cluster member knows about itself and its peers that is NOT replicated: kept
// in the node's own database under node/, next to the Raft log and the pool state.
//
//   node/identity                 {"memberId","incarnation","createdAt"}: written once,
//                                 when the data directory becomes a member's (bootstrap,
//                                 join or restore); a member that loses its data
//                                 directory comes back with another incarnation
//   node/peer/<id>                {"incarnation","index"}: the incarnation a peer showed
//                                 in its hello, recorded (synced) before any of its
//                                 messages is accepted — trust on first use, until the
//                                 replicated member record carries one
//   node/start/<id>               {"incarnation","n","id"}: the latest start a peer showed
//                                 in its hello (NodeIdentity.start), recorded (synced)
//                                 before its messages are accepted: a copy of its data
//                                 directory put back after it ran on shows an older start
//
// Written with sync: true: a vote or an acknowledgement counted from a peer must never
// be counted again from a peer that lost its state (Raft §5.2 relies on each server
// voting once per term, which needs its vote to survive; the incarnation is how the
// others tell that it did not).
import type { PoolDb } from './layout.js';
import { UTF8 } from './layout.js';

export interface NodeIdentity {
  readonly memberId: string;
  /** Random, fixed for the life of the data directory. */
  readonly incarnation: string;
  /** ISO time the data directory became a member's (for messages). */
  readonly createdAt: string;
  /**
   * Applied index at which this data directory became a member: 0 for a new cluster's
   * seed or a restore, the AddMember index for a join; null while a join is unconfirmed.
   */
  readonly since: number | null;
  /** Set when this member applied its own removal: the directory may not serve again. */
  readonly removedAt?: number;
  /**
   * A seed of a new cluster: a digest of the seed list its bootstrap log was made from.
   * Seeds with different digests have different logs at the same indexes.
   */
  readonly bootstrap?: string;
  /**
   * This directory's latest start: a counter raised, and a random id drawn, each time the
   * node opens it (written, synced, before the node speaks to any peer). A copy of the
   * directory put back after the node ran on from it starts with a counter a peer has
   * seen already under another id: an older state, which must not vote or acknowledge.
   */
  readonly start?: NodeStart;
  /** Set when a peer showed that this directory is an older copy: it may not serve again (the message says why). */
  readonly rolledBack?: string;
}

export interface NodeStart {
  readonly n: number;
  readonly id: string;
}

/** The latest start a peer showed, under the incarnation it had then. */
export interface PeerStart extends NodeStart {
  readonly incarnation: string;
}

export interface PeerIncarnation {
  readonly incarnation: string;
  /** This node's applied index when it recorded it. */
  readonly index: number;
}

export const IDENTITY_KEYS = Object.freeze({ identity: 'node/identity', peerPrefix: 'node/peer/', startPrefix: 'node/start/' });

function isStart(x: unknown): x is NodeStart {
  const o = x as Partial<NodeStart> | null;
  return o !== null && typeof o === 'object' && Number.isSafeInteger(o.n) && (o.n as number) >= 0 && typeof o.id === 'string';
}

const SYNC = { ...UTF8, sync: true } as never;

export async function readIdentity(db: PoolDb): Promise<NodeIdentity | undefined> {
  const raw = await db.get(IDENTITY_KEYS.identity, UTF8);
  if (raw === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    throw new Error(`corrupt node identity: ${IDENTITY_KEYS.identity} is not JSON`, { cause: err });
  }
  const o = v as Partial<NodeIdentity> | null;
  const index = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.memberId !== 'string' ||
    typeof o.incarnation !== 'string' ||
    typeof o.createdAt !== 'string' ||
    !(o.since === null || index(o.since)) ||
    !(o.removedAt === undefined || index(o.removedAt)) ||
    !(o.bootstrap === undefined || typeof o.bootstrap === 'string') ||
    !(o.start === undefined || isStart(o.start)) ||
    !(o.rolledBack === undefined || typeof o.rolledBack === 'string')
  ) {
    throw new Error(`corrupt node identity: ${IDENTITY_KEYS.identity} is ${raw.slice(0, 200)}`);
  }
  return Object.freeze({
    memberId: o.memberId,
    incarnation: o.incarnation,
    createdAt: o.createdAt,
    since: o.since ?? null,
    ...(o.removedAt === undefined ? {} : { removedAt: o.removedAt }),
    ...(o.bootstrap === undefined ? {} : { bootstrap: o.bootstrap }),
    ...(o.start === undefined ? {} : { start: Object.freeze({ n: o.start.n, id: o.start.id }) }),
    ...(o.rolledBack === undefined ? {} : { rolledBack: o.rolledBack }),
  });
}

export async function writeIdentity(db: PoolDb, identity: NodeIdentity): Promise<void> {
  await db.put(IDENTITY_KEYS.identity, JSON.stringify(identity), SYNC);
}

export async function readPeerIncarnations(db: PoolDb): Promise<Map<string, PeerIncarnation>> {
  const out = new Map<string, PeerIncarnation>();
  const prefix = IDENTITY_KEYS.peerPrefix;
  for (const [key, raw] of await db.iterator({ gte: prefix, lt: `${prefix.slice(0, -1)}0`, ...UTF8 }).all()) {
    const v = JSON.parse(raw) as Partial<PeerIncarnation>;
    if (typeof v.incarnation !== 'string' || typeof v.index !== 'number') throw new Error(`corrupt peer record ${key}: ${raw.slice(0, 200)}`);
    out.set(key.slice(prefix.length), { incarnation: v.incarnation, index: v.index });
  }
  return out;
}

export async function writePeerIncarnation(db: PoolDb, id: string, record: PeerIncarnation): Promise<void> {
  await db.put(`${IDENTITY_KEYS.peerPrefix}${id}`, JSON.stringify(record), SYNC);
}

export async function deletePeerIncarnation(db: PoolDb, id: string): Promise<void> {
  await db.del(`${IDENTITY_KEYS.peerPrefix}${id}`, SYNC);
}

export async function readPeerStarts(db: PoolDb): Promise<Map<string, PeerStart>> {
  const out = new Map<string, PeerStart>();
  const prefix = IDENTITY_KEYS.startPrefix;
  for (const [key, raw] of await db.iterator({ gte: prefix, lt: `${prefix.slice(0, -1)}0`, ...UTF8 }).all()) {
    const v = JSON.parse(raw) as Partial<PeerStart>;
    const incarnation = v.incarnation;
    if (typeof incarnation !== 'string' || !isStart(v)) throw new Error(`corrupt peer start record ${key}: ${raw.slice(0, 200)}`);
    out.set(key.slice(prefix.length), { incarnation, n: v.n, id: v.id });
  }
  return out;
}

export async function writePeerStart(db: PoolDb, peer: string, record: PeerStart): Promise<void> {
  await db.put(`${IDENTITY_KEYS.startPrefix}${peer}`, JSON.stringify(record), SYNC);
}
