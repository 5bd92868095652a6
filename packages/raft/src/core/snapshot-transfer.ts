import type { Snapshot, SnapshotChunk } from '../types.js';

/**
 * Leader side of one chunked InstallSnapshot (thesis §5.3, Figure 5.3): the
 * follower acknowledges how many chunks it holds in order; up to `window`
 * chunks are unacknowledged at once. Only an acknowledgement that advances
 * moves the window: every chunk draws an acknowledgement, so answering
 * duplicates or stale ones with more chunks would multiply messages without
 * bound. A chunk the follower still lacks after two duplicate
 * acknowledgements is resent once (fast retransmit); anything else waits for
 * the heartbeat timer, which resends from the follower's latest count.
 */
export class SnapshotSender {
  readonly snap: Snapshot;
  readonly chunks: number;
  private readonly chunkSize: number;
  private next = 0;
  private acked = 0;
  /** The follower's latest reported count (may be lower than acked: a restart, or a stale report). */
  private reported = 0;
  private dupAcks = 0;
  /** The acked position a fast retransmit was already sent for. */
  private retransmitted = -1;
  private lastProgressTick: number;
  private lastResendTick: number;

  constructor(snap: Snapshot, chunkSize: number, tick: number) {
    this.snap = snap;
    this.chunkSize = chunkSize;
    this.chunks = Math.max(1, Math.ceil(snap.data.byteLength / chunkSize));
    this.lastProgressTick = tick;
    this.lastResendTick = tick;
  }

  get index(): number {
    return this.snap.metadata.index;
  }

  chunk(k: number): SnapshotChunk {
    const { data, metadata } = this.snap;
    const lo = k * this.chunkSize;
    return { metadata, chunk: k, chunks: this.chunks, data: data.subarray(lo, Math.min(lo + this.chunkSize, data.byteLength)) };
  }

  /** The chunks that fit in the window now. */
  take(window: number): SnapshotChunk[] {
    const out: SnapshotChunk[] = [];
    while (this.next < this.chunks && this.next - this.acked < window) out.push(this.chunk(this.next++));
    return out;
  }

  /** The follower holds `got` chunks in order. Returns a chunk to resend at once, if any. */
  onAck(got: number, tick: number): number | undefined {
    got = Math.min(got, this.chunks);
    this.reported = got;
    if (got > this.acked) {
      this.acked = got;
      this.lastProgressTick = tick;
      if (this.next < got) this.next = got;
      this.dupAcks = 0;
      return undefined;
    }
    if (got === this.acked && this.next > got && ++this.dupAcks >= 2 && this.retransmitted !== got) {
      this.retransmitted = got;
      return got;
    }
    return undefined;
  }

  /**
   * A heartbeat was answered. No acknowledgement for two heartbeats: resend
   * the window from the follower's latest count. None for two election
   * timeouts: give up (the leader re-probes, and picks the newest snapshot if
   * still needed).
   */
  onHeartbeat(tick: number, heartbeatTick: number, electionTick: number): 'abort' | 'resend' | 'wait' {
    const idle = tick - this.lastProgressTick;
    if (idle >= 2 * electionTick) return 'abort';
    if (idle >= 2 * heartbeatTick && tick - this.lastResendTick >= 2 * heartbeatTick) {
      this.lastResendTick = tick;
      this.acked = Math.min(this.acked, this.reported);
      this.next = this.acked;
      this.retransmitted = -1;
      this.dupAcks = 0;
      return 'resend';
    }
    return 'wait';
  }
}

/** Chunks a follower keeps that arrived ahead of the next one it needs (reordering). */
const MAX_AHEAD = 64;

/**
 * Follower side: reassembles one snapshot's chunks, in order, keeping a few
 * that arrive early. A transfer is one leader's (sender and term): another
 * leader's copy of a snapshot with the same index may be cut at other chunk
 * boundaries or serialized to other bytes, so chunks of two transfers are
 * never combined.
 */
export class SnapshotReceiver {
  private from = '';
  private leaderTerm = 0;
  private index = 0;
  private term = 0;
  private chunks = 0;
  private parts: Uint8Array[] = [];
  private ahead = new Map<number, Uint8Array>();

  /** Accept a chunk sent by `from` in `leaderTerm`: the snapshot when complete, else how many chunks we hold in order. */
  receive(c: SnapshotChunk, from: string, leaderTerm: number): Snapshot | number {
    const md = c.metadata;
    if (
      this.from !== from ||
      this.leaderTerm !== leaderTerm ||
      this.index !== md.index ||
      this.term !== md.term ||
      this.chunks !== c.chunks
    ) {
      if (c.chunk !== 0) return 0; // from a transfer we do not know: start over
      this.from = from;
      this.leaderTerm = leaderTerm;
      this.index = md.index;
      this.term = md.term;
      this.chunks = c.chunks;
      this.parts = [];
      this.ahead.clear();
    }
    if (c.chunk === this.parts.length) {
      this.parts.push(c.data);
      for (let d = this.ahead.get(this.parts.length); d !== undefined; d = this.ahead.get(this.parts.length)) {
        this.ahead.delete(this.parts.length);
        this.parts.push(d);
      }
    } else if (c.chunk > this.parts.length && c.chunk - this.parts.length <= MAX_AHEAD) {
      this.ahead.set(c.chunk, c.data);
    }
    if (this.parts.length < this.chunks) return this.parts.length;
    const data = concat(this.parts);
    this.reset();
    return { metadata: md, data };
  }

  reset(): void {
    this.from = '';
    this.leaderTerm = 0;
    this.index = 0;
    this.term = 0;
    this.chunks = 0;
    this.parts = [];
    this.ahead.clear();
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
