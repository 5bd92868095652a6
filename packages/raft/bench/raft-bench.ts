// Microbenchmark of the Raft core alone: a 3-node in-memory cluster, messages
// delivered synchronously, Readies persisted to MemoryStorage. Prints
// committed entries/s for batched proposals and single-entry proposals, at an
// empty log and at a 1,000,000-entry log, with and without compaction.
//
//   npm run bench -w @weldr/raft            (about 20 s)

import { RawNode, type Message } from '../src/index.js';
import { MemoryStorage } from '../src/testing/index.js';

interface BenchNode {
  readonly id: string;
  readonly storage: MemoryStorage;
  readonly raw: RawNode;
  applied: number;
}

class BenchCluster {
  readonly nodes: BenchNode[];
  private readonly byId = new Map<string, BenchNode>();
  private queue: Message[] = [];
  /** Snapshot + compact every N applied entries (0: never). */
  compactEvery = 0;

  constructor(ids: string[]) {
    let seed = 7;
    this.nodes = ids.map((id) => {
      const storage = new MemoryStorage({ bootstrap: ids });
      const raw = new RawNode({
        id,
        storage,
        // A fixed LCG: the benchmark needs no real randomness.
        random: () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296),
        electionTick: 10,
        heartbeatTick: 1,
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
      });
      const n = { id, storage, raw, applied: 0 };
      this.byId.set(id, n);
      return n;
    });
  }

  leader(): BenchNode {
    return this.nodes.find((n) => n.raw.role === 'leader')!;
  }

  /** Deliver until quiet, handling Readies (persist → send → apply → advance). */
  run(): void {
    for (;;) {
      let progressed = false;
      for (const n of this.nodes) {
        while (n.raw.hasReady()) {
          progressed = true;
          const rd = n.raw.ready();
          n.storage.save(rd);
          for (const m of rd.messages) this.queue.push(m);
          if (rd.snapshot !== undefined) n.applied = rd.snapshot.metadata.index;
          const ce = rd.committedEntries;
          if (ce.length > 0) n.applied = ce[ce.length - 1]!.index;
          n.raw.advance(rd);
          if (this.compactEvery > 0 && n.applied - n.storage.snapshot().metadata.index >= this.compactEvery) {
            n.storage.createSnapshot(n.applied, n.raw.confStateAt(n.applied)!, new Uint8Array(8));
            n.storage.compact(n.applied);
          }
        }
      }
      if (this.queue.length === 0 && !progressed) return;
      const q = this.queue;
      this.queue = [];
      for (const m of q) this.byId.get(m.to)!.raw.step(m);
    }
  }

  elect(): void {
    for (let i = 0; i < 100 && this.nodes.every((n) => n.raw.role !== 'leader'); i++) {
      for (const n of this.nodes) n.raw.tick();
      this.run();
    }
  }
}

const payload = new Uint8Array(16);

function batched(c: BenchCluster, total: number, batch: number): number {
  const l = c.leader();
  const data = Array.from({ length: batch }, () => payload);
  const target = l.raw.lastIndex + total;
  const t0 = performance.now();
  while (l.raw.lastIndex < target) {
    if (!l.raw.proposeBatch(data).ok) throw new Error('proposal refused');
    c.run();
  }
  const secs = (performance.now() - t0) / 1000;
  if (c.nodes.some((n) => n.applied < target)) throw new Error('not applied everywhere');
  return total / secs;
}

function single(c: BenchCluster, total: number): number {
  const l = c.leader();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const r = l.raw.propose(payload);
    if (!r.ok) throw new Error('proposal refused');
    c.run(); // committed and applied on all three before the next proposal
  }
  return total / ((performance.now() - t0) / 1000);
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function main(): void {
  const c = new BenchCluster(['n1', 'n2', 'n3']);
  c.elect();
  batched(c, 50_000, 100); // warm-up
  single(c, 5_000);
  const rows: [string, number, number][] = [];
  // Best of three short runs: the machine is shared, and GC pauses land at random.
  const best = (f: () => number) => Math.max(f(), f(), f());
  const measure = (label: string) => {
    const b = best(() => batched(c, 100_000, 100));
    const s = best(() => single(c, 10_000));
    rows.push([label, b, s]);
    console.log(`${label.padEnd(44)} batched(100): ${fmt(b).padStart(10)} entries/s   single: ${fmt(s).padStart(8)} proposals/s`);
  };
  measure(`log length ~${fmt(c.leader().raw.lastIndex)}`);
  while (c.leader().raw.lastIndex < 1_000_000) batched(c, 100_000, 1000);
  console.log(`heap after filling a 1,000,000-entry log on 3 nodes: ${fmt(process.memoryUsage().heapUsed / 2 ** 20)} MiB`);
  measure(`log length ~${fmt(c.leader().raw.lastIndex)} (no compaction)`);
  c.compactEvery = 10_000;
  batched(c, 100_000, 1000);
  measure(`log length ~${fmt(c.leader().raw.lastIndex)} (compact every 10k)`);
  while (c.leader().raw.lastIndex < 2_000_000) batched(c, 100_000, 1000);
  measure(`log length ~${fmt(c.leader().raw.lastIndex)} (compact every 10k)`);
  const [first] = rows;
  const worst = rows.reduce((a, r) => [a[0], Math.min(a[1], r[1]), Math.min(a[2], r[2])], ['', Infinity, Infinity]);
  console.log(
    `worst/first ratio: batched ${(worst[1] / first![1]).toFixed(2)}, single ${(worst[2] / first![2]).toFixed(2)} ` +
      `(targets: batched >= 200,000/s, single >= 20,000/s)`,
  );
}

main();
