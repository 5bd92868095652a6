// The failover drills' invariant: never two nodes answering /ready 200 at once.
import { request, type Dispatcher } from 'undici';
import { sleep } from './wait.js';

/**
 * One `/ready` probe of the admin API at `adminUrl`: true only for a 200 within `timeoutMs`
 * (a paused, dead or busy node is not active).
 */
export async function isReady(adminUrl: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<boolean> {
  try {
    const r = await request(`${adminUrl}/ready`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, ...(dispatcher === undefined ? {} : { dispatcher }) });
    await r.body.dump();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * One `/ready` probe: the term of a 200 answer (`{"status":"ready","term":N}`), `true` for
 * a 200 without a term, `false` otherwise (not active, paused, dead or too slow).
 */
export async function readyTerm(adminUrl: string, timeoutMs: number): Promise<number | boolean> {
  try {
    const r = await request(`${adminUrl}/ready`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await r.body.text();
    if (r.statusCode !== 200) return false;
    try {
      const term = (JSON.parse(text) as { term?: unknown }).term;
      return typeof term === 'number' && Number.isSafeInteger(term) ? term : true;
    } catch {
      return true;
    }
  } catch {
    return false;
  }
}

export interface ActiveWatch {
  /** Stop sampling; resolves with every round in which more than one node was active. */
  stop(): Promise<string[][]>;
}

/**
 * Samples `activeNow` (one quick /ready round over the nodes) back to back until
 * stopped. A round takes a few ms, far less than the margin between one lease ending
 * and another node being elected, so any round with two active nodes is a real overlap.
 */
export function watchForTwoActive(activeNow: () => Promise<string[]>): ActiveWatch {
  const overlaps: string[][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const a = await activeNow();
      if (a.length > 1) overlaps.push(a);
      await sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return overlaps;
    },
  };
}

export interface ReadySample {
  readonly id: string;
  /** performance.now() when the request left and when its answer arrived. */
  readonly sent: number;
  readonly received: number;
  readonly active: boolean;
  /** The term a 200 answer named, when it named one. */
  readonly term?: number;
}

export interface ReadyWatch {
  /**
   * Stop sampling. `overlaps`: pairs of 200 answers that show two active nodes at once.
   * A sample only says the node was active at some instant between its request leaving
   * and its answer arriving, so two intersecting intervals prove nothing when the role
   * moves faster than a sample takes (a planned transfer: ~30 ms). The term of each 200
   * answer decides, as in `weldr drill` (packages/node/src/drill/overlaps.ts):
   * - two nodes active in one term: impossible in Raft, always an overlap;
   * - a node active in an older term whose request left after another node's 200 in a
   *   newer term had arrived: the old lease outlived the next election, an overlap.
   * Answers without a term fall back to intersecting intervals, and of those, answers
   * slower than `maxLatencyMs` are left out (counted in `slow`).
   */
  stop(): Promise<{ samples: ReadySample[]; overlaps: [ReadySample, ReadySample][]; slow: number }>;
  /** The overlaps among the samples so far (sampling goes on). */
  overlapsSoFar(): number;
}

/** The pairs of `samples` that show two active nodes at once (see ReadyWatch.stop). */
export function readyOverlaps(samples: readonly ReadySample[], maxLatencyMs: number): { overlaps: [ReadySample, ReadySample][]; slow: number } {
  const overlaps: [ReadySample, ReadySample][] = [];
  const withTerm = samples.filter((s) => s.active && s.term !== undefined);
  // One term, two nodes.
  const firstByTerm = new Map<number, ReadySample>();
  for (const s of withTerm) {
    const first = firstByTerm.get(s.term!);
    if (first === undefined) firstByTerm.set(s.term!, s);
    else if (first.id !== s.id && !overlaps.some(([a, b]) => a.term === s.term && (a.id === s.id || b.id === s.id))) overlaps.push([first, s]);
  }
  // An older term's 200 asked for after a newer term's 200 had arrived (from another node).
  const earliest = new Map<number, ReadySample>();
  for (const s of withTerm) {
    const e = earliest.get(s.term!);
    if (e === undefined || s.received < e.received) earliest.set(s.term!, s);
  }
  for (const s of withTerm) {
    for (const [term, n] of earliest) {
      if (term > s.term! && n.id !== s.id && n.received < s.sent) {
        overlaps.push([n, s]);
        break;
      }
    }
  }
  // Answers without a term: intersecting intervals, fast answers only.
  const fast = samples.filter((s) => s.received - s.sent <= maxLatencyMs);
  const on = fast.filter((s) => s.active && s.term === undefined).sort((a, b) => a.sent - b.sent);
  const open: ReadySample[] = [];
  for (const s of on) {
    for (let i = open.length - 1; i >= 0; i--) if (open[i]!.received < s.sent) open.splice(i, 1);
    for (const o of open) if (o.id !== s.id) overlaps.push([o, s]);
    open.push(s);
  }
  return { overlaps, slow: samples.length - fast.length };
}

/**
 * Samples `/ready` on every node independently, each every `periodMs` (start to start).
 * `ready` answers as readyTerm() does (a term, true, or false).
 */
export function watchReadyPerNode(
  nodes: readonly { readonly id: string; readonly ready: () => Promise<boolean | number> }[],
  periodMs = 5,
  maxLatencyMs = 50,
): ReadyWatch {
  const samples: ReadySample[] = [];
  let running = true;
  const loops = nodes.map(async (n) => {
    while (running) {
      const sent = performance.now();
      const answer = await n.ready();
      const received = performance.now();
      samples.push({ id: n.id, sent, received, active: answer !== false, ...(typeof answer === 'number' ? { term: answer } : {}) });
      const wait = sent + periodMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { samples, ...readyOverlaps(samples, maxLatencyMs) };
    },
    overlapsSoFar: () => readyOverlaps(samples, maxLatencyMs).overlaps.length,
  };
}
