// A real `weldr start` process on ephemeral loopback ports, with its own data directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnWeldr, type RunningProcess, type Teardown } from './process.js';

export interface WeldrNode {
  readonly proc: RunningProcess;
  readonly proxyPort: number;
  /** The HTTPS listener's port, when the node was started with --listen-tls. */
  readonly proxyTlsPort: number | undefined;
  readonly adminPort: number;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly dataDir: string;
}

export interface NodeOptions {
  readonly id?: string;
  /** Reuse a data directory (restart tests); otherwise a fresh one is made and removed. */
  readonly dataDir?: string;
  readonly store?: 'level' | 'memory';
  /** Further `weldr start` flags, e.g. ['--origin-response-timeout', '500ms']. */
  readonly args?: readonly string[];
  readonly env?: Record<string, string | undefined>;
  /** A command that execs weldr with its settings, e.g. ['prlimit', '--nofile=1024:1024']. */
  readonly prefix?: readonly string[];
}

/** A temporary directory removed when the test ends (after its processes are killed). */
export function makeTempDir(t: Teardown, prefix = 'weldr-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startNode(t: Teardown, options: NodeOptions = {}): Promise<WeldrNode> {
  const id = options.id ?? 'n1';
  const dataDir = options.dataDir ?? join(makeTempDir(t), id);
  const proc = spawnWeldr(
    t,
    `weldr ${id}`,
    [
      'start',
      '--id', id,
      '--listen', '127.0.0.1:0',
      '--admin', '127.0.0.1:0',
      '--raft', '127.0.0.1:0',
      '--data', dataDir,
      '--store', options.store ?? 'level',
      ...(options.args ?? []),
    ],
    // Environment of the test runner must not leak settings into the node under test.
    { WELDR_CONFIG: undefined, WELDR_LISTEN: undefined, WELDR_ADMIN: undefined, ...options.env },
    options.prefix,
  );
  const [proxy, admin] = await Promise.all([
    proc.waitForLine('proxy listening', (l) => l.event === 'listening' && l.listener === 'proxy'),
    proc.waitForLine('admin listening', (l) => l.event === 'listening' && l.listener === 'admin'),
  ]);
  await proc.waitForLine('started', (l) => l.event === 'started');
  const proxyPort = proxy.port as number;
  const adminPort = admin.port as number;
  const tls = proc.lines.find((l) => l.event === 'listening' && l.listener === 'proxy-tls');
  return { proc, proxyPort, proxyTlsPort: tls?.port as number | undefined, adminPort, proxyUrl: `http://127.0.0.1:${proxyPort}`, adminUrl: `http://127.0.0.1:${adminPort}`, dataDir };
}

/** Log lines of the node that carry a given event name. */
export function events(node: WeldrNode, event: string): Record<string, unknown>[] {
  return node.proc.lines.filter((l) => l.event === event);
}
