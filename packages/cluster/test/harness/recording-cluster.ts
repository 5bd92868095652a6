// A deterministic harness for RaftDriver: N drivers on one fake clock, each over a
// recording storage (MemoryStorage as "the disk"), a recording state machine and a
// network the test delivers by hand. No timers, no sockets, no disk: every step happens
// when the test says so, and every persist, send and apply is written to one event log,
// so tests can check the order of the Ready contract and hold any node's disk or apply.
import { MemoryStorage, type ConfState, type Entry, type Message, type NodeId, type Snapshot, type StorageUpdate } from '@weldr/raft';
import { RaftDriver, type DriverFailure, type DriverStorage, type ReplicatedStateMachine } from '../../src/driver.js';

export const TICK_MS = 50;
export const ELECTION_TICK = 10;

/** One thing a node did, in the order it happened across the whole cluster. */
export type RecordedEvent =
  | { readonly node: NodeId; readonly kind: 'ready'; readonly ready: number }
  | { readonly node: NodeId; readonly kind: 'persist'; readonly lastIndex: number; readonly term: number; readonly vote: NodeId | null }
  | { readonly node: NodeId; readonly kind: 'send'; readonly messages: readonly Message[] }
  | { readonly node: NodeId; readonly kind: 'apply'; readonly first: number; readonly last: number };

/** A gate: work waits on `wait()` until `open()`; closed gates hold a node's disk or apply. */
export class Gate {
  private waiting: (() => void)[] = [];
  private closed = false;

  close(): void {
    this.closed = true;
  }

  open(): void {
    this.closed = false;
    for (const w of this.waiting.splice(0)) w();
  }

  get held(): number {
    return this.waiting.length;
  }

  async wait(): Promise<void> {
    if (this.closed) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}

/** DriverStorage over a MemoryStorage that counts as the disk: a write is "durable" when save() resolves. */
export class RecordingStorage implements DriverStorage {
  readonly disk: MemoryStorage;
  readonly gate = new Gate();
  /** Set to make the next write (save, or a background snapshot/compaction write) fail. */
  failNext: Error | null = null;
  private failed: Error | null = null;
  private readonly listeners: ((err: Error) => void)[] = [];

  constructor(
    private readonly id: NodeId,
    private readonly events: RecordedEvent[],
    bootstrap: readonly NodeId[],
  ) {
    this.disk = new MemoryStorage({ bootstrap });
  }

  initialState() {
    return this.disk.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.disk.entries(lo, hi, maxBytes);
  }
  term(i: number): number | undefined {
    return this.disk.term(i);
  }
  firstIndex(): number {
    return this.disk.firstIndex();
  }
  lastIndex(): number {
    return this.disk.lastIndex();
  }
  snapshot(): Snapshot {
    return this.disk.snapshot();
  }

  async save(u: StorageUpdate, _options?: { readonly sync?: boolean }): Promise<void> {
    await this.gate.wait();
    await Promise.resolve(); // the write completes asynchronously, as a disk's does
    this.maybeFail();
    this.disk.save(u);
    const hs = this.disk.initialState().hardState;
    this.events.push({ node: this.id, kind: 'persist', lastIndex: this.disk.lastIndex(), term: hs.term, vote: hs.vote });
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snap = this.disk.createSnapshot(index, confState, data);
    this.background();
    return snap;
  }

  compact(index: number): void {
    this.disk.compact(index);
    this.background();
  }

  async flush(): Promise<void> {
    if (this.failed !== null) throw this.failed;
  }

  onFailure(listener: (err: Error) => void): void {
    this.listeners.push(listener);
  }

  /** A write nobody awaits (as LevelRaftStorage's snapshot and compaction writes). */
  private background(): void {
    queueMicrotask(() => {
      try {
        this.maybeFail();
      } catch {
        // reported through onFailure
      }
    });
  }

  private maybeFail(): void {
    if (this.failed !== null) throw this.failed;
    if (this.failNext === null) return;
    this.failed = this.failNext;
    this.failNext = null;
    for (const l of this.listeners.splice(0)) l(this.failed);
    throw this.failed;
  }
}

/** A state machine that records what it applies; its result is "<term>:<data>" so tests see whose entry it was. */
export class RecordingApp implements ReplicatedStateMachine<string> {
  appliedIndex = 0;
  readonly applied: Entry[] = [];
  readonly gate = new Gate();
  failNext: Error | null = null;
  /** Bytes added to every snapshot: a state that is large next to its entries. */
  snapshotPad = 0;

  constructor(
    private readonly id: NodeId,
    private readonly events: RecordedEvent[],
  ) {}

  async apply(entries: readonly Entry[]): Promise<string[]> {
    await this.gate.wait();
    await Promise.resolve();
    if (this.failNext !== null) throw this.failNext;
    this.applied.push(...entries);
    this.appliedIndex = entries[entries.length - 1]!.index;
    this.events.push({ node: this.id, kind: 'apply', first: entries[0]!.index, last: this.appliedIndex });
    return entries.map((e) => `${e.term}:${new TextDecoder().decode(e.data)}`);
  }

  async restore(snapshot: Snapshot): Promise<void> {
    this.appliedIndex = snapshot.metadata.index;
  }

  snapshotData(): Uint8Array {
    return new TextEncoder().encode(String(this.appliedIndex).padEnd(this.snapshotPad + 1, ' '));
  }
}

export interface SimNode {
  readonly id: NodeId;
  readonly driver: RaftDriver<string>;
  readonly storage: RecordingStorage;
  readonly app: RecordingApp;
  readonly failures: DriverFailure[];
}

export interface ClusterOptions {
  readonly size?: number;
  /** Per-node driver options (bounds, snapshotEvery, …). */
  readonly driver?: Partial<Parameters<typeof RaftDriver.create<string>>[0]>;
  /** Per-node clock; default the shared fake clock. */
  readonly now?: (id: NodeId) => () => number;
}

/**
 * The cluster: `clock` is fake time; messages wait in `inflight` until deliver();
 * `drop(fn)` decides which messages the network loses.
 */
export class RecordingCluster {
  readonly events: RecordedEvent[] = [];
  readonly nodes = new Map<NodeId, SimNode>();
  readonly ids: NodeId[];
  clock = 0;
  inflight: Message[] = [];
  private dropRule: (m: Message) => boolean = () => false;

  private constructor(size: number) {
    this.ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  }

  static async create(options: ClusterOptions = {}): Promise<RecordingCluster> {
    const c = new RecordingCluster(options.size ?? 3);
    for (const id of c.ids) {
      const storage = new RecordingStorage(id, c.events, c.ids);
      const app = new RecordingApp(id, c.events);
      const failures: DriverFailure[] = [];
      // Fixed, distinct election timeouts: n1 is the first to campaign, and no two nodes
      // ever split a vote by timing out together.
      const rank = c.ids.indexOf(id);
      const random = (): number => rank / c.ids.length;
      const driver = await RaftDriver.create<string>({
        id,
        storage,
        app,
        log: { debug() {}, info() {}, warn() {}, error() {} },
        tickMs: TICK_MS,
        electionTick: ELECTION_TICK,
        random,
        now: options.now?.(id) ?? (() => c.clock),
        timer: false,
        onFatal: (f) => failures.push(f),
        ...options.driver,
      });
      // Number each Ready so tests can check what happened between two of them.
      const ready = driver.node.ready.bind(driver.node);
      let readies = 0;
      driver.node.ready = () => {
        c.events.push({ node: id, kind: 'ready', ready: ++readies });
        return ready();
      };
      driver.start({
        send: (messages) => {
          c.events.push({ node: id, kind: 'send', messages: [...messages] });
          c.inflight.push(...messages);
        },
      });
      c.nodes.set(id, { id, driver, storage, app, failures });
    }
    await c.settle();
    return c;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Lose every message for which `rule` is true (replaces the previous rule). */
  drop(rule: (m: Message) => boolean): void {
    this.dropRule = rule;
  }

  heal(): void {
    this.dropRule = () => false;
  }

  /** Let pending promise chains (disk writes, applies) run. */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  }

  /** Deliver what is in flight (and what that provokes) until the network is quiet. */
  async deliver(maxRounds = 100): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      await this.settle();
      if (this.inflight.length === 0) return;
      const batch = this.inflight;
      this.inflight = [];
      for (const m of batch) {
        if (this.dropRule(m)) continue;
        this.nodes.get(m.to)?.driver.receive(m);
      }
    }
    throw new Error('the network did not quiet down');
  }

  /** Advance fake time by `n` ticks, ticking every driver and delivering after each. */
  async ticks(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.clock += TICK_MS;
      for (const node of this.nodes.values()) node.driver.tick();
      await this.deliver();
    }
  }

  /** Tick until `id` is the active leader (bounded). */
  async elect(id: NodeId = 'n1', maxTicks = 20 * ELECTION_TICK): Promise<SimNode> {
    const n = this.node(id);
    for (let i = 0; i < maxTicks; i++) {
      if (n.driver.isActive()) return n;
      await this.ticks(1);
    }
    throw new Error(`${id} did not become the active leader`);
  }
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Settles a promise into an observable state, so tests can ask "has it settled yet?". */
export function track<T>(p: Promise<T>): { readonly state: () => 'pending' | 'resolved' | 'rejected'; readonly value: () => T | undefined; readonly error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => {
      state = 'resolved';
      value = v;
    },
    (e: unknown) => {
      state = 'rejected';
      error = e;
    },
  );
  return { state: () => state, value: () => value, error: () => error };
}
