// The failover drills' invariant: never two nodes answering /ready 200 at once.
import { sleep } from './wait.js';

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
