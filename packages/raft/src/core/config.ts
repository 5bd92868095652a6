import type { Storage } from '../storage.js';
import type { NodeId } from '../types.js';
import { leaseMs, leaseTicks, MAX_LEASE_MS } from './lease.js';

export type ReadOnlyOption = 'safe' | 'leaseBased';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Uniform random number in [0, 1); injected so the core stays deterministic. */
  readonly random: () => number;
  /** Minimum election timeout E in ticks; the randomized timeout is drawn from [E, 2E) (§5.2). Default 10. */
  readonly electionTick?: number;
  /** Ticks between heartbeats; must be < electionTick. Default 1. */
  readonly heartbeatTick?: number;
  /**
   * The length of one tick in milliseconds, as the driver ticks (a constant:
   * the core reads no clock). A leader states its lease in ms so that members
   * with other tick lengths or election timeouts can keep it (lease.ts).
   * Default 50.
   */
  readonly tickMs?: number;
  /**
   * The last index the state machine had applied when this server started
   * (default: the storage snapshot's index, from which the application
   * restores). Must lie in [firstIndex - 1, lastIndex] of the storage; it
   * counts as committed (a lost commit-only write cannot make the core hand
   * applied entries out again).
   */
  readonly applied?: number;
  /** Byte bound of one MsgApp's entries. Default 1 MiB. */
  readonly maxSizePerMsg?: number;
  /** Appends in flight per follower in replicate state. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Bytes in flight per follower (0: unbounded). Default 16 MiB. */
  readonly maxInflightBytes?: number;
  /** Byte bound of committedEntries in one Ready. Default 64 MiB. */
  readonly maxCommittedSizePerReady?: number;
  /** §9.6 pre-vote. Default true. */
  readonly preVote?: boolean;
  /** §6.2 check-quorum and in-lease vote rejection; required for leases. Default true. */
  readonly checkQuorum?: boolean;
  /** 'safe': ReadIndex confirms leadership with a heartbeat round; 'leaseBased': trusts the lease (thesis §6.4.1). */
  readonly readOnlyOption?: ReadOnlyOption;
  /**
   * Bound ρ on clock-rate difference between any server's ticks and real time
   * (0.1 = ±10%). Shortens the lease; see lease.ts. Default 0.1.
   */
  readonly maxClockDrift?: number;
  /**
   * Bytes of proposed, not yet committed entries a leader accepts before it
   * refuses further proposals with 'uncommittedLimit' (0: unbounded). Bounds
   * the leader's memory while a quorum is unreachable; a single proposal is
   * accepted when nothing is outstanding, whatever its size. Default 32 MiB.
   */
  readonly maxUncommittedBytes?: number;
  /** Snapshot bytes per MsgSnap. Default 1 MiB. */
  readonly snapshotChunkSize?: number;
  /** Unacknowledged snapshot chunks per follower. Default 4. */
  readonly snapshotChunksInFlight?: number;
  /**
   * Consulted before this server starts an election (pre-vote or vote) on its own:
   * false holds the campaign back (the timeout runs again). An application's
   * precondition the core cannot see — in weldr, a seed of a new cluster that has not
   * yet reached every other seed (a majority of wiped seeds must not bootstrap a
   * second cluster while the member that kept the data is away). Votes are still
   * granted, and a leader's transfer still campaigns. Default: always allowed.
   */
  readonly mayCampaign?: () => boolean;
}

/** ρ when none is given: a bound on every server's tick-rate error (±10%). */
export const DEFAULT_MAX_CLOCK_DRIFT = 0.1;

export interface ResolvedConfig {
  readonly id: NodeId;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly tickMs: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly maxCommittedSizePerReady: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly maxClockDrift: number;
  readonly maxUncommittedBytes: number;
  readonly snapshotChunkSize: number;
  readonly snapshotChunksInFlight: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`raft config: ${name} must be a positive integer, got ${v}`);
  return v;
}

export function resolveConfig(c: RaftConfig): ResolvedConfig {
  if (typeof c.id !== 'string' || c.id.length === 0) throw new RangeError('raft config: id must be a non-empty string');
  if (typeof c.random !== 'function') throw new RangeError('raft config: random must be a function');
  const electionTick = positiveInt('electionTick', c.electionTick ?? 10);
  const heartbeatTick = positiveInt('heartbeatTick', c.heartbeatTick ?? 1);
  if (heartbeatTick >= electionTick) throw new RangeError('raft config: heartbeatTick must be < electionTick');
  const maxClockDrift = c.maxClockDrift ?? DEFAULT_MAX_CLOCK_DRIFT;
  if (!(maxClockDrift >= 0 && maxClockDrift < 0.5)) throw new RangeError('raft config: maxClockDrift must be in [0, 0.5)');
  const tickMs = positiveInt('tickMs', c.tickMs ?? 50);
  const promise = leaseMs(leaseTicks(electionTick, maxClockDrift), tickMs, maxClockDrift);
  if (promise > MAX_LEASE_MS || electionTick * tickMs > MAX_LEASE_MS) {
    throw new RangeError(`raft config: electionTick × tickMs must stay within ${MAX_LEASE_MS} ms`);
  }
  const maxInflightBytes = c.maxInflightBytes ?? 16 << 20;
  if (!Number.isInteger(maxInflightBytes) || maxInflightBytes < 0) throw new RangeError('raft config: maxInflightBytes must be >= 0');
  const maxUncommittedBytes = c.maxUncommittedBytes ?? 32 << 20;
  if (!Number.isInteger(maxUncommittedBytes) || maxUncommittedBytes < 0) throw new RangeError('raft config: maxUncommittedBytes must be >= 0');
  return {
    id: c.id,
    electionTick,
    heartbeatTick,
    tickMs,
    maxSizePerMsg: positiveInt('maxSizePerMsg', c.maxSizePerMsg ?? 1 << 20),
    maxInflightMsgs: positiveInt('maxInflightMsgs', c.maxInflightMsgs ?? 256),
    maxInflightBytes,
    maxCommittedSizePerReady: positiveInt('maxCommittedSizePerReady', c.maxCommittedSizePerReady ?? 64 << 20),
    preVote: c.preVote ?? true,
    checkQuorum: c.checkQuorum ?? true,
    readOnlyOption: c.readOnlyOption ?? 'safe',
    maxClockDrift,
    maxUncommittedBytes,
    snapshotChunkSize: positiveInt('snapshotChunkSize', c.snapshotChunkSize ?? 1 << 20),
    snapshotChunksInFlight: positiveInt('snapshotChunksInFlight', c.snapshotChunksInFlight ?? 4),
  };
}
