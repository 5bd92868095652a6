// The failover drills' invariant: never two nodes answering /ready 200 at once.
import { request, type Dispatcher } from 'undici';
import { OverlapDetector, readyBodyTerm, type Overlap } from '@weldr/node';
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
    return readyBodyTerm(text) ?? true;
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
   * Stop sampling. `overlaps`: the answers that show two active nodes at once, judged as
   * `weldr drill` judges them (OverlapDetector, packages/node/src/drill/overlaps.ts): by
   * the term each 200 names, since a sample only says the node was active at some
   * instant between its request leaving and its answer arriving and a planned transfer
   * moves the role faster than that. Answers without a term fall back to intersecting
   * intervals, and of those, answers slower than `maxLatencyMs` are left out (counted in
   * `slow`).
   */
  stop(): Promise<{ samples: ReadySample[]; overlaps: Overlap[]; slow: number }>;
  /** The overlaps among the samples so far (sampling goes on). */
  overlapsSoFar(): number;
}

/** The answers among `samples` that show two active nodes at once (see ReadyWatch.stop). */
export function readyOverlaps(samples: readonly ReadySample[], maxLatencyMs: number): { overlaps: Overlap[]; slow: number } {
  const detector = new OverlapDetector();
  const overlaps: Overlap[] = [];
  let slow = 0;
  for (const s of [...samples].sort((a, b) => a.received - b.received)) {
    const tooSlow = s.received - s.sent > maxLatencyMs;
    if (tooSlow) slow++;
    if (tooSlow && s.term === undefined) continue;
    overlaps.push(...detector.add({ member: s.id, sentAt: s.sent, at: s.received, active: s.active, ...(s.term === undefined ? {} : { term: s.term }) }));
  }
  return { overlaps, slow };
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
