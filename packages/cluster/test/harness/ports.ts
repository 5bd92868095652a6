import net from 'node:net';

/**
 * Fixed ports for listeners other members must know before they start, below the
 * kernel's ephemeral range (32768+), so that the outbound connections of the processes
 * under test cannot take one between the check and the bind. Each test file has a range
 * of its own, and none overlaps the end-to-end tests' reserved ports (20000-32000,
 * test/helpers/ports.ts) or the proxy's dead origin ports (10000-13999): ava runs the
 * packages' and the end-to-end files side by side, and a port another process found free
 * at the same moment was once bound by both (EADDRINUSE in membership.test.ts).
 */
export const PORT_RANGES = {
  driver: [14_000, 16_999],
  membership: [17_000, 19_999],
} as const;

export function portPicker(range: readonly [number, number]): () => Promise<number> {
  const [low, high] = range;
  let next = low + Math.floor(Math.random() * (high - low + 1));
  return async () => {
    // Bounded: one pass over the range, then an error instead of a hang.
    for (let tries = 0; tries <= high - low; tries++) {
      const port = next;
      next = next >= high ? low : next + 1;
      const free = await new Promise<boolean>((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
      });
      if (free) return port;
    }
    throw new Error(`no free port in ${low}-${high} for a test listener`);
  };
}
