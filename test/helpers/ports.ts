// Fixed ports for listeners other processes must know before they start (Raft peers).
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Ports handed out by this process are claimed for its whole life with a file named
 * after the port: ava runs test files in parallel processes, and a port one file
 * reserved and whose node is down for a restart is free to a bind check in another file
 * — which took it, and the restart then failed with EADDRINUSE. A claim whose process
 * is gone (a crashed run) is taken over. The directory is per user: one left in /tmp by
 * another user's run (root's CI, say) is not writable, and every claim failed, so
 * reservedPort() never returned and every cluster test timed out.
 */
const CLAIMS = join(tmpdir(), `weldr-test-ports-${process.getuid?.() ?? 'user'}`);
const claimed: string[] = [];
process.once('exit', () => {
  for (const f of claimed) {
    try {
      unlinkSync(f);
    } catch {
      // already gone
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function claim(port: number): boolean {
  mkdirSync(CLAIMS, { recursive: true });
  const file = join(CLAIMS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      claimed.push(file);
      return true;
    } catch (err) {
      // Not a port someone else holds: a directory we cannot write to. Say so, do not spin.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot claim test ports in ${CLAIMS}: ${(err as Error).message}`);
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        // vanished meanwhile: try again
      }
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
      try {
        unlinkSync(file); // its process is gone
      } catch {
        // someone else took it over first
      }
    }
  }
  return false;
}

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux), so the outbound
 * connections of the processes under test — which get ephemeral ports — cannot take it
 * between this check and the bind. Consecutive calls give different ports, and no other
 * test process gets it while this one runs.
 */
let nextPort = 20_000 + Math.floor(Math.random() * 10_000);
export async function reservedPort(): Promise<number> {
  // Bounded: one pass over the range, then an error instead of a hang.
  for (let tries = 0; tries <= 12_000; tries++) {
    const port = nextPort;
    nextPort = nextPort >= 32_000 ? 20_000 : nextPort + 1;
    if (!claim(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-32000 for a test listener');
}

/**
 * A loopback port that refuses connections: a reserved port nothing is started on. A port
 * found with listen(0) and released could be handed to the next listen(0) of a test
 * running alongside (seen once in the proxy's unit tests: a "refused" origin answered
 * 200); a reserved one is claimed for this process's life and below the ephemeral range.
 */
export async function deadPort(): Promise<number> {
  return reservedPort();
}
