import type { Snapshot, SnapshotChunk } from '../types.js';

/**
 * Leader side of one chunked InstallSnapshot (thesis §5.3, Figure 5.3): the
 * follower acknowledges how many chunks it holds in order; up to `window`
 * chunks are unacknowledged at once; a gap, a duplicate acknowledgement or a
 * restarted follower sends the leader back to the first missing chunk
 * (go-back-N).
 */
export class SnapshotSender {
  readonly snap: Snapshot;
  readonly chunks: number;
  private readonly chunkSize: number;
  private next = 0;
  private acked = 0;
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

  /** The chunks that fit in the window now. */
  take(window: number): SnapshotChunk[] {
    const out: SnapshotChunk[] = [];
    const { data, metadata } = this.snap;
    while (this.next < this.chunks && this.next - this.acked < window) {
      const k = this.next++;
      const lo = k * this.chunkSize;
      out.push({ metadata, chunk: k, chunks: this.chunks, data: data.subarray(lo, Math.min(lo + this.chunkSize, data.byteLength)) });
    }
    return out;
  }

  /** The follower holds `got` chunks in order. */
  onAck(got: number, tick: number): void {
    got = Math.min(got, this.chunks);
    if (got > this.acked) {
      this.acked = got;
      this.lastProgressTick = tick;
      if (this.next < got) this.next = got;
    } else if (got < this.next) {
      this.next = got;
      this.acked = got;
    }
  }

  /**
   * A heartbeat was answered. No acknowledgement for two heartbeats: resend
   * from the first unacknowledged chunk. None for two election timeouts: give
   * up (the leader re-probes, and picks the newest snapshot if still needed).
   */
  onHeartbeat(tick: number, heartbeatTick: number, electionTick: number): 'abort' | 'resend' | 'wait' {
    const idle = tick - this.lastProgressTick;
    if (idle >= 2 * electionTick) return 'abort';
    if (idle >= 2 * heartbeatTick && tick - this.lastResendTick >= 2 * heartbeatTick) {
      this.lastResendTick = tick;
      this.next = this.acked;
      return 'resend';
    }
    return 'wait';
  }
}

/**
 * Follower side: reassembles one snapshot's chunks, in order. A transfer is
 * one leader's (sender and term): another leader's copy of a snapshot with
 * the same index may be cut at other chunk boundaries or serialized to other
 * bytes, so chunks of two transfers are never combined.
 */
export class SnapshotReceiver {
  private from = '';
  private leaderTerm = 0;
  private index = 0;
  private term = 0;
  private chunks = 0;
  private parts: Uint8Array[] = [];

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
    }
    if (c.chunk === this.parts.length) this.parts.push(c.data);
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
