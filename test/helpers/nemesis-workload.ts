// The client side of a nemesis drill: writers that add servers (one new port each, retried
// with one Idempotency-Key until acknowledged) through every member, and readers whose
// linearizable GET /servers must show every write acknowledged before the read began.
// Faults are the drill's business; this only records what the clients saw.
import { request, type Dispatcher } from 'undici';
import { sleep } from './wait.js';

export interface WorkloadMember {
  readonly id: string;
}

export interface WorkloadOptions<M extends WorkloadMember> {
  readonly members: readonly M[];
  /** The member's admin base URL (http://… or https://…). */
  readonly adminUrl: (m: M) => string;
  readonly dispatcher?: Dispatcher;
  readonly writers?: number;
  readonly readers?: number;
  /** Idempotency-Key prefix (a key is prefix + port). */
  readonly keyPrefix: string;
}

export interface Workload {
  /** port → performance.now() when acknowledged. */
  readonly acked: ReadonlyMap<number, number>;
  /** Reads that missed a write acknowledged before they started. */
  readonly staleReads: readonly string[];
  /** Ports handed out so far (every written port is below it). */
  readonly nextPort: () => number;
  /** Stops the clients once their requests in flight end. */
  stop(): Promise<void>;
  /** The member's pool once it holds every acknowledged write (its ports), or undefined. */
  holdsEveryWrite(m: WorkloadMember): Promise<Set<number> | undefined>;
}

export function startWorkload<M extends WorkloadMember>(o: WorkloadOptions<M>): Workload {
  const acked = new Map<number, number>();
  const staleReads: string[] = [];
  const opts = { headersTimeout: 3000, bodyTimeout: 3000, ...(o.dispatcher === undefined ? {} : { dispatcher: o.dispatcher }) };
  const n = o.members.length;
  let running = true;
  let nextPort = 1;

  const writer = async (w: number): Promise<void> => {
    while (running) {
      const port = nextPort++;
      for (let attempt = 0; running && attempt < 100; attempt++) {
        const m = o.members[(w + attempt) % n]!;
        let status = -1;
        try {
          const r = await request(`${o.adminUrl(m)}/servers`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `${o.keyPrefix}${port}` },
            body: JSON.stringify({ ip: '127.7.0.1', port }),
            ...opts,
          });
          await r.body.dump();
          status = r.statusCode;
        } catch {
          // paused, killed or cut: indeterminate, retried with the same key
        }
        if (status === 201 || status === 200) {
          acked.set(port, performance.now());
          break;
        }
        if (status >= 400 && status < 500) throw new Error(`write ${port} refused: ${status}`);
        await sleep(30);
      }
    }
  };
  let readCount = 0;
  const reader = async (): Promise<void> => {
    while (running) {
      // Round-robin, not a drill's random source: its schedule stays the same every run.
      const m = o.members[readCount++ % n]!;
      const started = performance.now();
      const mustSee = [...acked].filter(([, at]) => at < started).map(([p]) => p);
      try {
        const r = await request(`${o.adminUrl(m)}/servers`, opts);
        const text = await r.body.text();
        if (r.statusCode === 200) {
          const seen = new Set((JSON.parse(text) as { port: number }[]).map((s) => s.port));
          const missing = mustSee.filter((p) => !seen.has(p));
          if (missing.length > 0) staleReads.push(`${m.id} missed ${missing.slice(0, 5).join(',')}`);
        }
      } catch {
        // unavailable: fine
      }
      await sleep(20);
    }
  };
  const tasks = [
    ...Array.from({ length: o.writers ?? 3 }, (_, w) => writer(w)),
    ...Array.from({ length: o.readers ?? 2 }, () => reader()),
  ];
  return {
    acked,
    staleReads,
    nextPort: () => nextPort,
    async stop() {
      running = false;
      await Promise.all(tasks);
    },
    async holdsEveryWrite(m) {
      const member = o.members.find((x) => x.id === m.id)!;
      const r = await request(`${o.adminUrl(member)}/servers`, opts);
      const text = await r.body.text();
      if (r.statusCode !== 200) return undefined;
      const seen = new Set((JSON.parse(text) as { port: number }[]).map((s) => s.port));
      return [...acked.keys()].every((p) => seen.has(p)) ? seen : undefined;
    },
  };
}
