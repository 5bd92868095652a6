// A cluster in real (simulated) time for lease tests: every server ticks at its
// own period, messages take a fixed delay, and after every event the harness
// notes whether two servers held a lease at the same instant.

import { Cluster, type RaftOptions } from './sim/cluster.js';

export interface TimedOptions {
  readonly voters: readonly string[];
  /** Settings shared by every server. */
  readonly raft?: RaftOptions;
  /** Each server's own settings (its flags), over the shared ones. */
  readonly own?: Readonly<Record<string, RaftOptions>>;
  /** Real time between two ticks of each server (default: its tickMs, else 100). */
  readonly periods?: Readonly<Record<string, number>>;
  /** Randomized-timeout draw of each server (0: exactly E; 0.99: 2E − 1). */
  readonly random?: Readonly<Record<string, number>>;
  /** Delivery delay of every message. Default 1. */
  readonly delay?: number;
  readonly seed?: number;
}

export class TimedCluster {
  readonly c: Cluster;
  /** Real times at which two servers held a lease at once. */
  readonly overlaps: number[] = [];

  constructor(opts: TimedOptions) {
    this.c = new Cluster({ voters: opts.voters, seed: opts.seed ?? 7, raft: opts.raft ?? {} });
    for (const n of this.c.nodes.values()) {
      n.raft = opts.own?.[n.id] ?? {};
      n.period = opts.periods?.[n.id] ?? n.raft.tickMs ?? opts.raft?.tickMs ?? 100;
      n.nextTick = n.period;
      const r = opts.random?.[n.id] ?? 0.99;
      n.random.next = () => r;
      this.c.start(n.id);
    }
    this.c.network.faults.minDelay = this.c.network.faults.maxDelay = opts.delay ?? 1;
  }

  get now(): number {
    return this.c.now;
  }

  node(id: string) {
    return this.c.get(id);
  }

  /** Process the next event (a delivery, or else the earliest tick). */
  step(): void {
    const c = this.c;
    let next: ReturnType<Cluster['get']> | undefined;
    for (const n of c.nodes.values()) if (n.raw !== null && (next === undefined || n.nextTick < next.nextTick)) next = n;
    const mt = c.network.nextTime();
    if (mt !== undefined && (next === undefined || mt <= next.nextTick)) {
      c.now = Math.max(c.now, mt);
      const m = c.network.popDue(c.now); // undefined when its link was cut
      if (m !== undefined) {
        c.deliver(m);
        c.flush(m.to);
      }
    } else if (next !== undefined) {
      c.now = next.nextTick;
      next.nextTick += next.period;
      next.node.tick();
      c.flush(next.id);
    }
    const holders = [...c.nodes.values()].filter((n) => n.raw !== null && n.raw.hasLease());
    if (holders.length > 1) this.overlaps.push(c.now);
  }

  /** When the next event (a delivery or a tick) falls. */
  nextEventTime(): number {
    let t = this.c.network.nextTime() ?? Infinity;
    for (const n of this.c.nodes.values()) if (n.raw !== null && n.nextTick < t) t = n.nextTick;
    return t;
  }

  /** Process every event up to `time` (inclusive), then stand at `time`. */
  runUntil(time: number): void {
    while (this.nextEventTime() <= time) this.step();
    this.c.now = Math.max(this.c.now, time);
  }

  /** Step until `cond` holds (at most `maxSteps` events); false if it never did. */
  stepUntil(cond: () => boolean, maxSteps = 100_000): boolean {
    for (let i = 0; i < maxSteps; i++) {
      if (cond()) return true;
      this.step();
    }
    return cond();
  }

  /** Restart a server from its storage, with new settings (its flags) if given; it ticks from now on. */
  restart(id: string, own?: RaftOptions, period?: number): void {
    const n = this.c.get(id);
    this.c.crash(id);
    if (own !== undefined) n.raft = own;
    if (period !== undefined) n.period = period;
    this.c.start(id);
    n.nextTick = this.c.now + n.period;
  }

  /** Cut `id` off from every other server, both ways. */
  isolate(id: string): void {
    this.c.network.partition(
      [id],
      this.c.ids().filter((x) => x !== id),
    );
  }

  leaders(): string[] {
    return [...this.c.nodes.values()].filter((n) => n.raw !== null && n.raw.role === 'leader').map((n) => n.id);
  }
}
