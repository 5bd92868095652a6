/**
 * Flow control for pipelined MsgApp (thesis §10.2.2 "pipelining"): a ring
 * buffer of the last index and byte size of each append in flight to one
 * follower. The leader stops sending when `maxCount` appends or `maxBytes`
 * bytes are unacknowledged.
 */
export class Inflights {
  private readonly lastIndexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;
  private readonly maxCount: number;
  private readonly maxBytes: number;

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
    this.lastIndexes = new Float64Array(maxCount);
    this.sizes = new Float64Array(maxCount);
  }

  add(lastIndex: number, bytes: number): void {
    if (this.count === this.maxCount) return; // callers check full() first
    const slot = (this.start + this.count) % this.maxCount;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Acknowledge every append whose last index is <= to. */
  freeLE(to: number): void {
    while (this.count > 0 && this.lastIndexes[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxCount;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.lastIndexes[this.start]!);
  }

  full(): boolean {
    return this.count === this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
