// Fixed ports for listeners other processes must know before they start (Raft peers).
import net from 'node:net';

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux), so the outbound
 * connections of the processes under test — which get ephemeral ports — cannot take it
 * between this check and the bind. Consecutive calls give different ports.
 */
let nextPort = 20_000 + Math.floor(Math.random() * 10_000);
export async function reservedPort(): Promise<number> {
  for (;;) {
    const port = nextPort;
    nextPort = nextPort >= 32_000 ? 20_000 : nextPort + 1;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
