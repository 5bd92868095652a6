import type { NodeId } from '../types.js';

/** A ReadIndex request waiting for a heartbeat round to confirm leadership (thesis §6.4 step 2–3). */
export interface PendingRead {
  readonly index: number;
  readonly context: string;
  /** Who asked: the leader itself or a follower that forwarded the request. */
  readonly from: NodeId;
  readonly acks: Map<NodeId, boolean>;
}

/**
 * Pending ReadIndex requests in arrival order. A quorum acknowledging the
 * heartbeat sent for request k also confirms leadership for every request
 * that arrived before k, so they are released together.
 */
export class ReadOnly {
  private readonly byContext = new Map<string, PendingRead>();
  private queue: PendingRead[] = [];

  add(index: number, context: string, from: NodeId): boolean {
    if (this.byContext.has(context)) return false;
    const r: PendingRead = { index, context, from, acks: new Map() };
    this.byContext.set(context, r);
    this.queue.push(r);
    return true;
  }

  recvAck(from: NodeId, context: string): Map<NodeId, boolean> | undefined {
    const r = this.byContext.get(context);
    if (r === undefined) return undefined;
    r.acks.set(from, true);
    return r.acks;
  }

  /** Release the request for `context` and every one queued before it. */
  advance(context: string): PendingRead[] {
    const k = this.queue.findIndex((r) => r.context === context);
    if (k < 0) return [];
    const done = this.queue.slice(0, k + 1);
    this.queue = this.queue.slice(k + 1);
    for (const r of done) this.byContext.delete(r.context);
    return done;
  }

  lastPendingContext(): string | undefined {
    return this.queue.length === 0 ? undefined : this.queue[this.queue.length - 1]!.context;
  }

  get size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.byContext.clear();
    this.queue = [];
  }
}
