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
}

export interface ReadyWatch {
  /**
   * Stop sampling. `overlaps`: pairs of 200 answers from two nodes whose request-to-answer
   * intervals intersect — both nodes answered "active" within one such interval, far
   * less than the margin a correct lease keeps between one node's role and the next's.
   * Answers slower than `maxLatencyMs` prove nothing that tight and are left out (counted
   * in `slow`), so a loaded machine cannot make a correct cluster fail.
   */
  stop(): Promise<{ samples: ReadySample[]; overlaps: [ReadySample, ReadySample][]; slow: number }>;
  /** The overlaps among the samples so far (sampling goes on). */
  overlapsSoFar(): number;
}

/** Samples `/ready` on every node independently, each every `periodMs` (start to start). */
export function watchReadyPerNode(
  nodes: readonly { readonly id: string; readonly ready: () => Promise<boolean> }[],
  periodMs = 5,
  maxLatencyMs = 50,
): ReadyWatch {
  const samples: ReadySample[] = [];
  let running = true;
  const loops = nodes.map(async (n) => {
    while (running) {
      const sent = performance.now();
      const active = await n.ready();
      const received = performance.now();
      samples.push({ id: n.id, sent, received, active });
      const wait = sent + periodMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  });
  const overlapping = (): { overlaps: [ReadySample, ReadySample][]; slow: number } => {
    const fast = samples.filter((s) => s.received - s.sent <= maxLatencyMs);
    const on = fast.filter((s) => s.active).sort((a, b) => a.sent - b.sent);
    const overlaps: [ReadySample, ReadySample][] = [];
    const open: ReadySample[] = [];
    for (const s of on) {
      for (let i = open.length - 1; i >= 0; i--) if (open[i]!.received < s.sent) open.splice(i, 1);
      for (const o of open) if (o.id !== s.id) overlaps.push([o, s]);
      open.push(s);
    }
    return { overlaps, slow: samples.length - fast.length };
  };
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { samples, ...overlapping() };
    },
    overlapsSoFar: () => overlapping().overlaps.length,
  };
}
