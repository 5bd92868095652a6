import type { Transport } from '../transport.js';
import type { Message, NodeId } from '../types.js';

export interface NetworkFaults {
  /** Probability a message is lost. */
  drop: number;
  /** Probability a message is delivered twice. */
  duplicate: number;
  /** Delivery delay bounds (inclusive) in time units; different delays reorder messages. */
  minDelay: number;
  maxDelay: number;
  /** Probability a message is held much longer: up to `longDelayMax` beyond maxDelay (stale deliveries). */
  longDelay?: number;
  longDelayMax?: number;
}

interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly m: Message;
}

/**
 * A deterministic in-memory network: messages wait in a priority queue by
 * delivery time (ties by send order). Faults — loss, duplication, delay
 * (hence reordering), symmetric partitions and one-way link cuts — draw from
 * the injected random source, so a seed replays exactly.
 */
export class MemoryNetwork implements Transport {
  private readonly heap: InFlight[] = [];
  private seq = 0;
  private readonly random: () => number;
  private readonly now: () => number;
  faults: NetworkFaults = { drop: 0, duplicate: 0, minDelay: 0, maxDelay: 0 };
  /** "from->to" links that drop everything. */
  private readonly cut = new Set<string>();
  /** Messages sent and delivered, for statistics. */
  sent = 0;
  delivered = 0;

  constructor(opts: { random?: () => number; now?: () => number } = {}) {
    this.random = opts.random ?? (() => 0.5);
    this.now = opts.now ?? (() => 0);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) this.sendOne(m);
  }

  private sendOne(m: Message): void {
    this.sent++;
    if (this.cut.has(linkKey(m.from, m.to))) return;
    const f = this.faults;
    if (f.drop > 0 && this.random() < f.drop) return;
    this.push(m);
    if (f.duplicate > 0 && this.random() < f.duplicate) this.push(m);
  }

  private push(m: Message): void {
    const f = this.faults;
    const span = f.maxDelay - f.minDelay;
    let delay = span > 0 ? f.minDelay + Math.floor(this.random() * (span + 1)) : f.minDelay;
    if (f.longDelay !== undefined && f.longDelay > 0 && this.random() < f.longDelay) {
      delay = f.maxDelay + 1 + Math.floor(this.random() * (f.longDelayMax ?? f.maxDelay));
    }
    heapPush(this.heap, { at: this.now() + delay, seq: this.seq++, m });
  }

  /** Delivery time of the next message, if any. */
  nextTime(): number | undefined {
    return this.heap.length === 0 ? undefined : this.heap[0]!.at;
  }

  /** The next message due at or before `now`, removed from the queue; dropped if its link was cut meanwhile. */
  popDue(now: number): Message | undefined {
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const { m } = heapPop(this.heap)!;
      if (this.cut.has(linkKey(m.from, m.to))) continue;
      this.delivered++;
      return m;
    }
    return undefined;
  }

  /** Everything in flight, in delivery order, regardless of time. */
  drain(): Message[] {
    const out: Message[] = [];
    for (;;) {
      const m = this.popDue(Infinity);
      if (m === undefined) return out;
      out.push(m);
    }
  }

  get inFlight(): number {
    return this.heap.length;
  }

  /** Cut all links between groups (symmetric partition); links inside a group stay up. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut.add(linkKey(a, b));
      }
    }
  }

  /** Cut one direction only: `from` can no longer reach `to`. */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  heal(): void {
    this.cut.clear();
  }

  /** Drop every message in flight (e.g. to model a network restart). */
  clear(): void {
    this.heap.length = 0;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}->${to}`;
}

function less(a: InFlight, b: InFlight): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function heapPush(h: InFlight[], x: InFlight): void {
  h.push(x);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i]!, h[p]!)) break;
    [h[i], h[p]] = [h[p]!, h[i]!];
    i = p;
  }
}

function heapPop(h: InFlight[]): InFlight | undefined {
  if (h.length === 0) return undefined;
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && less(h[l]!, h[m]!)) m = l;
      if (r < h.length && less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
  return top;
}
