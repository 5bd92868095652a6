// A small event-script language for Raft scenarios, in the spirit of etcd's
// datadriven tests: build a cluster, then partition / tick / propose / heal
// and assert on the outcome. Messages are delivered instantly and in order;
// time moves only when the script ticks.

import type { Message, ProposeResult, RawNode, Status } from '../src/index.js';
import { MemoryStorage } from '../src/testing/index.js';
import { Cluster, text, type ClusterOptions, type RaftOptions, type SimNode } from './sim/cluster.js';

export const E = 10;

export interface ScenarioOptions {
  readonly raft?: RaftOptions;
  readonly snapshotEvery?: number;
  readonly compactKeep?: number;
  readonly snapshotPad?: number;
  /** Preset logs (entry terms from index 1) instead of the bootstrap log; all listed ids are voters. */
  readonly logs?: Readonly<Record<string, readonly number[]>>;
  /** Current term per preset log (default: its last entry's term). */
  readonly terms?: Readonly<Record<string, number>>;
}

export class Scenario {
  readonly c: Cluster;
  /** Messages for which this returns false are dropped by stabilize(). */
  filter: (m: Message) => boolean = () => true;
  /** Every message delivered so far, for assertions. */
  readonly delivered: Message[] = [];

  constructor(voters: readonly string[], opts: ScenarioOptions = {}) {
    const co: ClusterOptions = {
      voters,
      // Randomized timeouts at their maximum (2E - 1): nobody campaigns unless a script says so.
      raft: { electionTick: E, heartbeatTick: 1, ...opts.raft },
      snapshotEvery: opts.snapshotEvery ?? 0,
      compactKeep: opts.compactKeep ?? 0,
      snapshotPad: opts.snapshotPad ?? 0,
      keepApplied: true,
    };
    this.c = new Cluster(co);
    // Fixed, distinct randomized timeouts (n1: 2E-1, n2: 2E-2, …): nobody
    // campaigns unless a script lets time run, and no two servers tie forever.
    let k = 0;
    for (const n of this.c.nodes.values()) {
      const r = Math.max(0, 0.95 - 0.1 * k++);
      n.random.next = () => r;
    }
    for (const [id, terms] of Object.entries(opts.logs ?? {})) {
      const s = new MemoryStorage({ confState: { voters: [...voters], learners: [] } });
      s.append(terms.map((term, i) => ({ term, index: i + 1, type: 'normal' as const, data: text(`${id}@${i + 1}`) })));
      s.setHardState({ term: opts.terms?.[id] ?? Math.max(0, ...terms), vote: null, commit: 0 });
      this.c.get(id).storage = s;
    }
    for (const id of voters) this.c.start(id);
  }

  static cluster(size: number, opts: ScenarioOptions = {}): Scenario {
    return new Scenario(Array.from({ length: size }, (_, i) => `n${i + 1}`), opts);
  }

  n(id: string): SimNode {
    return this.c.get(id);
  }

  node(id: string): RawNode {
    return this.c.get(id).node;
  }

  status(id: string): Status {
    return this.node(id).status();
  }

  /** Deliver messages until none are left; returns how many were delivered. */
  stabilize(): number {
    let count = 0;
    for (let round = 0; round < 10_000; round++) {
      this.c.flushAll();
      const msgs = this.c.network.drain();
      if (msgs.length === 0) return count;
      for (const m of msgs) {
        if (!this.filter(m)) continue;
        this.delivered.push(m);
        this.c.deliver(m);
        count++;
      }
    }
    throw new Error('scenario: messages never stopped');
  }

  /** Tick the given nodes (default: all that are up) `times` times, delivering messages after each tick. */
  tick(ids?: string | readonly string[], times = 1): void {
    const list = ids === undefined ? this.up() : typeof ids === 'string' ? [ids] : ids;
    for (let i = 0; i < times; i++) {
      for (const id of list) {
        const n = this.c.get(id);
        if (n.raw !== null) n.raw.tick();
      }
      this.stabilize();
    }
  }

  up(): string[] {
    return [...this.c.nodes.values()].filter((n) => n.raw !== null).map((n) => n.id);
  }

  /**
   * Have `id` campaign (pre-vote + vote) as soon as it may: while servers are
   * inside a leader lease, every running clock ticks once more.
   */
  elect(id: string): void {
    for (let i = 0; i <= 2 * E; i++) {
      const r = this.node(id).campaign();
      if (r.ok) {
        this.stabilize();
        if (this.node(id).role === 'leader') return;
      } else if (r.reason !== 'inLease') {
        throw new Error(`scenario: ${id} cannot campaign (${r.reason})`);
      }
      this.tick();
    }
    throw new Error(`scenario: ${id} did not win an election`);
  }

  campaign(id: string): void {
    this.node(id).campaign();
    this.stabilize();
  }

  partition(...groups: readonly (readonly string[])[]): void {
    this.c.network.partition(...groups);
  }

  isolate(id: string): void {
    this.partition(
      [id],
      this.c.ids().filter((x) => x !== id),
    );
  }

  cut(from: string, to: string): void {
    this.c.network.cutLink(from, to);
  }

  heal(): void {
    this.c.network.heal();
  }

  /** Crash `id`; with `loseUnsynced`, writes its driver saved without fsync (mustSync false) are lost too. */
  crash(id: string, loseUnsynced = false): void {
    this.c.crash(id, loseUnsynced);
  }

  restart(id: string): void {
    this.c.start(id);
  }

  /** A server that joins later: empty storage, started. */
  addServer(id: string): void {
    this.c.add(id);
    this.c.start(id);
  }

  propose(id: string, cmd: string): ProposeResult {
    const r = this.node(id).propose(text(cmd));
    this.stabilize();
    return r;
  }

  applied(id: string): string[] {
    return this.c.get(id).applied;
  }

  /** The unique leader among running servers, or undefined. */
  leader(): string | undefined {
    let best: { id: string; term: number } | undefined;
    for (const n of this.c.nodes.values()) {
      if (n.raw === null || n.raw.role !== 'leader') continue;
      if (best === undefined || n.raw.term > best.term) best = { id: n.id, term: n.raw.term };
    }
    return best?.id;
  }

  /** Terms of a server's log from index `from` to its last index. */
  logTerms(id: string, from = 1): (number | undefined)[] {
    const raw = this.node(id);
    const out: (number | undefined)[] = [];
    for (let i = from; i <= raw.lastIndex; i++) out.push(raw.termAt(i));
    return out;
  }
}
