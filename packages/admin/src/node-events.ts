// What this node saw happen, most recent last: role and leader changes, peers lost and
// found. In memory and bounded: it answers "what just happened here" on the status page;
// the log keeps the full story. Each event has a sequence number so a poller asks only
// for what is new (GET /events?since=SEQ).

export interface NodeEvent {
  readonly seq: number;
  /** Epoch milliseconds on this node's clock. */
  readonly at: number;
  /** `role` (this node's Raft role or the leader changed), `peer` (reachability), `node`. */
  readonly kind: string;
  /** One line for people. */
  readonly message: string;
  readonly fields?: Readonly<Record<string, string | number | boolean | null>>;
}

export class NodeEvents {
  private readonly events: NodeEvent[] = [];
  private seq = 0;

  constructor(
    private readonly keep = 200,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isSafeInteger(keep) || keep <= 0) throw new TypeError(`keep must be a positive integer, got ${keep}`);
  }

  add(kind: string, message: string, fields?: Readonly<Record<string, string | number | boolean | null>>): void {
    this.events.push({ seq: ++this.seq, at: this.now(), kind, message, ...(fields === undefined ? {} : { fields }) });
    if (this.events.length > this.keep) this.events.splice(0, this.events.length - this.keep);
  }

  /** Events after `since` (0: every kept one), and the sequence number to ask from next. */
  since(since: number): { events: NodeEvent[]; next: number } {
    return { events: this.events.filter((e) => e.seq > since), next: this.seq };
  }
}
