// Fault injection for failover drills (`weldr drill`): a node can be told to cut itself
// off from its peers for a while. Nothing here runs unless the node was started with
// fault injection on (the admin API refuses otherwise).
//
// Isolation is a gate on the Raft traffic only: every message this node would send is
// dropped, and every message it receives is ignored, for the given time. The peer
// connections stay up (a partition that drops packets, not one that resets them). The
// admin and proxy listeners are untouched, exactly as when a switch between the Raft
// ports fails. The gate opens again by itself when the time is up — a timer in this
// process, so a drill that dies midway cannot leave the node cut off.
import type { Message, Transport } from '@weldr/raft';

export interface FaultLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** What GET /faults reports about the isolation. */
export interface IsolationStatus {
  readonly isolated: boolean;
  /** Milliseconds until the gate opens by itself; absent when not isolated. */
  readonly remainingMs?: number;
}

/** The longest isolation accepted: a drill's partition, not a way to switch a node off. */
export const MAX_ISOLATION_MS = 10 * 60_000;

export class IsolationGate {
  private until: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private dropped = 0;

  constructor(
    private readonly log: FaultLogger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Cut the node off for `ms` (replaces a running isolation). */
  isolate(ms: number): void {
    if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_ISOLATION_MS) throw new RangeError(`isolation must last 1 ms … ${MAX_ISOLATION_MS} ms, got ${ms}`);
    if (this.timer !== null) clearTimeout(this.timer);
    this.until = this.now() + ms;
    this.dropped = 0;
    // Not unref'd: the heal must happen even if nothing else keeps the process busy.
    this.timer = setTimeout(() => this.heal('expired'), ms);
    this.log.warn({ event: 'fault_isolated', ms }, `fault injection: cut off from the Raft peers for ${ms} ms`);
  }

  /** Open the gate now; `reason` is logged. Returns whether the node was isolated. */
  heal(reason: 'expired' | 'requested' | 'stopping'): boolean {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const was = this.until !== null;
    this.until = null;
    if (was) this.log.warn({ event: 'fault_healed', reason, dropped: this.dropped }, `fault injection: Raft traffic flows again (${reason}; ${this.dropped} messages dropped)`);
    return was;
  }

  get isolated(): boolean {
    if (this.until === null) return false;
    // The timer is the normal way out; this covers a timer that fires late.
    if (this.now() >= this.until) {
      this.heal('expired');
      return false;
    }
    return true;
  }

  status(): IsolationStatus {
    if (!this.isolated || this.until === null) return { isolated: false };
    return { isolated: true, remainingMs: Math.max(0, Math.round(this.until - this.now())) };
  }

  /** A message from a peer may be handed to Raft. */
  admit(_m: Message): boolean {
    if (!this.isolated) return true;
    this.dropped++;
    return false;
  }

  /** `transport` with this gate in front of its send(). */
  wrap(transport: Transport): Transport {
    return {
      send: (messages) => {
        if (!this.isolated) {
          transport.send(messages);
          return;
        }
        this.dropped += messages.length;
      },
    };
  }
}
