// A driver for N in-memory Raft servers, shared by the scenario tests, the
// randomized simulator and the benchmark. It follows the Ready contract
// exactly: persist (atomically) → send → apply → advance. With `eager`, it
// sends the messages that may precede persistence (mayPrecedePersistence: the
// leader's appends, thesis §10.2.1) as soon as it takes the Ready, and with
// `holdProbability` it leaves that Ready's write in flight until the node's
// next event, so a crash can fall between the two.

import { mayPrecedePersistence, RawNode, type Entry, type Message, type RaftConfig, type Ready, type ReadState } from '../../src/index.js';
import { MemoryNetwork, MemoryStorage } from '../../src/testing/index.js';
import { Prng } from './prng.js';

export type RaftOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;

export interface ClusterOptions {
  /** Initial voters (bootstrap configuration). */
  readonly voters: readonly string[];
  readonly seed?: number;
  readonly raft?: RaftOptions;
  /** Take a snapshot every N applied entries (0: never). */
  readonly snapshotEvery?: number;
  /** Entries kept before the snapshot index when compacting. */
  readonly compactKeep?: number;
  /** Filler bytes in snapshots so they span several chunks. */
  readonly snapshotPad?: number;
  /** Keep every applied command per node (scenario tests). */
  readonly keepApplied?: boolean;
  /**
   * The state machine is durable on its own (applied synchronously with each
   * Ready) and survives crashes: a restart passes its applied index to the
   * core instead of restoring from the storage snapshot.
   */
  readonly persistentStateMachine?: boolean;
}

/** Observers the simulator's invariant checker plugs in. */
export interface ClusterHooks {
  beforePersist?(n: SimNode, rd: Ready): void;
  afterPersist?(n: SimNode, rd: Ready): void;
  onApply?(n: SimNode, e: Entry): void;
  onRestore?(n: SimNode, index: number, hash: number): void;
  onReadState?(n: SimNode, rs: ReadState): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function text(s: string): Uint8Array {
  return encoder.encode(s);
}

export function untext(b: Uint8Array): string {
  return decoder.decode(b);
}

/** FNV-1a over the entry, chained: the state machine's whole state is this hash. */
export function mixHash(h: number, e: Entry): number {
  let x = (h ^ e.index) >>> 0;
  x = Math.imul(x, 16777619) >>> 0;
  x = (x ^ e.term) >>> 0;
  x = Math.imul(x, 16777619) >>> 0;
  const d = e.data;
  for (let i = 0; i < d.length; i++) x = Math.imul(x ^ d[i]!, 16777619) >>> 0;
  return x;
}

export class SimNode {
  readonly id: string;
  storage: MemoryStorage;
  raw: RawNode | null = null;
  appliedIndex = 0;
  hash = 0;
  applied: string[] = [];
  readStates: ReadState[] = [];
  /**
   * The storage as of the last synced write, while later writes were saved
   * without fsync (Ready.mustSync false): a crash may fall back to it.
   */
  synced: MemoryStorage | undefined;
  /** A Ready taken and (eagerly) partly sent whose write has not completed: lost in a crash. */
  inFlight: Ready | undefined;
  /**
   * This server's own timer settings (electionTick, heartbeatTick, tickMs),
   * over the cluster's: what a restart with new flags changes.
   */
  raft: RaftOptions = {};
  /** Local clock: ticks every `period` time units (its tickMs scaled by its drift), first at `phase`. */
  period = 100;
  nextTick = 0;
  readonly random: Prng;

  constructor(id: string, storage: MemoryStorage, random: Prng) {
    this.id = id;
    this.storage = storage;
    this.random = random;
  }

  get up(): boolean {
    return this.raw !== null;
  }

  /** The RawNode; throws when the node is down (test misuse). */
  get node(): RawNode {
    if (this.raw === null) throw new Error(`${this.id} is down`);
    return this.raw;
  }
}

export class Cluster {
  readonly nodes = new Map<string, SimNode>();
  readonly network: MemoryNetwork;
  readonly rng: Prng;
  now = 0;
  hooks: ClusterHooks = {};
  /** Send what may precede persistence as soon as a Ready is taken (thesis §10.2.1). */
  eager = false;
  /** With `eager`: chance that a Ready's write stays in flight until the node's next event. */
  holdProbability = 0;
  /**
   * Chance that a message is stepped while the node's write is still in flight (etcd's
   * model, where input keeps flowing during a write; weldr's driver queues it instead):
   * a leader may then hear acknowledgements of entries it has not written itself.
   */
  inputDuringWrite = 0;
  readonly opts: ClusterOptions;
  private readonly raftOpts: RaftOptions;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.rng = new Prng(opts.seed ?? 1);
    this.raftOpts = opts.raft ?? {};
    this.network = new MemoryNetwork({ random: () => this.rng.next(), now: () => this.now });
    for (const id of opts.voters) this.add(id, opts.voters);
    for (const id of opts.voters) this.start(id);
  }

  /** Create a server's storage: initial members get the bootstrap log, a joining server starts empty. */
  add(id: string, bootstrap?: readonly string[]): SimNode {
    const n = new SimNode(id, new MemoryStorage(bootstrap === undefined ? {} : { bootstrap }), this.rng.fork());
    this.nodes.set(id, n);
    return n;
  }

  get(id: string): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** Start (or restart after a crash) from durable storage; the state machine is rebuilt from the snapshot. */
  start(id: string): SimNode {
    const n = this.get(id);
    n.readStates = [];
    if (this.opts.persistentStateMachine === true) {
      n.raw = new RawNode({ ...this.raftOpts, ...n.raft, id, storage: n.storage, random: () => n.random.next(), applied: n.appliedIndex });
      return n;
    }
    const snap = n.storage.snapshot();
    n.appliedIndex = snap.metadata.index;
    n.hash = snap.metadata.index === 0 ? 0 : decodeSnapshot(snap.data).hash;
    if (this.opts.keepApplied === true) n.applied = snap.metadata.index === 0 ? [] : decodeSnapshot(snap.data).applied;
    n.raw = new RawNode({ ...this.raftOpts, ...n.raft, id, storage: n.storage, random: () => n.random.next() });
    return n;
  }

  /**
   * Lose everything not saved: the RawNode (unstable entries, unsent messages)
   * and the state machine. With `loseUnsynced`, writes saved without fsync
   * (Readies with mustSync false, as a real driver may do) are lost too.
   */
  crash(id: string, loseUnsynced = false): void {
    const n = this.get(id);
    n.raw = null;
    n.inFlight = undefined; // its write never completed; its eager messages are out
    if (loseUnsynced && n.synced !== undefined) n.storage = n.synced;
    n.synced = undefined;
  }

  deliver(m: Message): boolean {
    const n = this.nodes.get(m.to);
    if (n === undefined || n.raw === null) return false;
    // Input usually waits for the write in flight (weldr's driver queues it), so the write completes first.
    if (!(n.inFlight !== undefined && this.inputDuringWrite > 0 && this.rng.chance(this.inputDuringWrite))) this.settle(n.id);
    return n.raw.step(m);
  }

  /** Complete the node's write in flight, if any: call before any input to its RawNode. */
  settle(id: string): void {
    const n = this.get(id);
    const rd = n.inFlight;
    if (rd === undefined || n.raw === null) return;
    n.inFlight = undefined;
    this.completeReady(n, rd);
  }

  /** Handle every pending Ready of one node (possibly leaving the last one's write in flight). */
  flush(id: string): void {
    const n = this.get(id);
    this.settle(id);
    while (n.raw !== null && n.raw.hasReady()) {
      const rd = n.raw.ready();
      if (this.eager) {
        this.network.send(rd.messages.filter(mayPrecedePersistence));
        if (this.holdProbability > 0 && this.rng.chance(this.holdProbability)) {
          n.inFlight = rd;
          return;
        }
      }
      this.completeReady(n, rd);
    }
  }

  flushAll(): void {
    for (const id of this.nodes.keys()) this.flush(id);
  }

  private completeReady(n: SimNode, rd: Ready): void {
    const raw = n.raw!;
    this.hooks.beforePersist?.(n, rd);
    const update: { hardState?: Ready['hardState']; entries: Ready['entries']; snapshot?: Ready['snapshot'] } = {
      entries: rd.entries,
    };
    if (rd.hardState !== undefined) update.hardState = rd.hardState;
    if (rd.snapshot !== undefined) update.snapshot = rd.snapshot;
    // A driver fsyncs only when mustSync says so; an fsync also makes every
    // earlier write durable (one write-ahead log).
    if (!rd.mustSync && n.synced === undefined) n.synced = n.storage.clone();
    n.storage.save(update);
    if (rd.mustSync) n.synced = undefined;
    this.hooks.afterPersist?.(n, rd);
    this.network.send(this.eager ? rd.messages.filter((m) => !mayPrecedePersistence(m)) : rd.messages);
    if (rd.snapshot !== undefined) {
      let s: SnapshotBody;
      try {
        s = decodeSnapshot(rd.snapshot.data);
      } catch {
        throw new Error(`snapshot: ${n.id} installs ${rd.snapshot.metadata.index} from bytes no server produced`);
      }
      n.appliedIndex = rd.snapshot.metadata.index;
      n.hash = s.hash;
      if (this.opts.keepApplied === true) n.applied = s.applied;
      this.hooks.onRestore?.(n, n.appliedIndex, n.hash);
    }
    for (const e of rd.committedEntries) {
      this.hooks.onApply?.(n, e);
      n.appliedIndex = e.index;
      n.hash = mixHash(n.hash, e);
      if (this.opts.keepApplied === true && e.type === 'normal') n.applied.push(untext(e.data));
    }
    for (const rs of rd.readStates) {
      this.hooks.onReadState?.(n, rs);
      n.readStates.push(rs);
    }
    raw.advance(rd);
    this.maybeSnapshot(n);
  }

  private maybeSnapshot(n: SimNode): void {
    const every = this.opts.snapshotEvery ?? 0;
    if (every <= 0 || n.raw === null) return;
    const snapIndex = n.storage.snapshot().metadata.index;
    if (n.appliedIndex - snapIndex < every) return;
    const cs = n.raw.confStateAt(n.appliedIndex);
    if (cs === undefined) return;
    // Servers serialize the same state to different bytes (here: padding that
    // depends on the server), as real state machines may: a receiver that
    // combined chunks of two servers' snapshots would restore garbage.
    const pad = (this.opts.snapshotPad ?? 0) + (this.opts.snapshotPad ? (n.id.charCodeAt(n.id.length - 1) % 7) * 3 : 0);
    const data = encodeSnapshot(n.hash, this.opts.keepApplied === true ? n.applied : [], pad);
    n.storage.createSnapshot(n.appliedIndex, cs, data);
    const keep = this.opts.compactKeep ?? 0;
    if (n.appliedIndex - keep >= n.storage.firstIndex()) n.storage.compact(n.appliedIndex - keep);
    n.synced = undefined; // snapshot and compaction are synced writes

  }
}

interface SnapshotBody {
  hash: number;
  applied: string[];
}

export function encodeSnapshot(hash: number, applied: string[], pad: number): Uint8Array {
  return text(JSON.stringify({ hash, applied, pad: 'x'.repeat(pad) }));
}

export function decodeSnapshot(data: Uint8Array): SnapshotBody {
  const v = JSON.parse(untext(data)) as SnapshotBody;
  return { hash: v.hash, applied: v.applied };
}
