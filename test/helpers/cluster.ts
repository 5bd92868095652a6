// A cluster of real `weldr start --peers` processes on reserved loopback ports.
import { join } from 'node:path';
import { makeTempDir } from './node.js';
import { reservedPort } from './ports.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './process.js';

export interface ClusterMember {
  readonly id: string;
  readonly raftPort: number;
  readonly adminPort: number;
  readonly proxyPort: number;
  readonly adminUrl: string;
  readonly proxyUrl: string;
  readonly dataDir: string;
  readonly proc: RunningProcess;
}

export interface ClusterOptions {
  readonly size?: number;
  /** Environment of every member (e.g. WELDR_ADMIN_TOKEN). */
  readonly env?: Record<string, string | undefined>;
}

export const CLUSTER_TOKEN = 'e2e-cluster-secret-0123456789';

/** Starts the members together and resolves once each has logged "started". */
export async function startCluster(t: Teardown, options: ClusterOptions = {}): Promise<ClusterMember[]> {
  const dir = makeTempDir(t, 'weldr-cluster-');
  const size = options.size ?? 3;
  const ports: { id: string; raft: number; admin: number; proxy: number }[] = [];
  for (let i = 1; i <= size; i++) ports.push({ id: `n${i}`, raft: await reservedPort(), admin: await reservedPort(), proxy: await reservedPort() });
  const peers = ports.map((p) => `${p.id}=127.0.0.1:${p.raft}`).join(',');
  return Promise.all(
    ports.map(async (p) => {
      const dataDir = join(dir, p.id);
      const proc = spawnWeldr(
        t,
        `weldr ${p.id}`,
        ['start', '--id', p.id, '--listen', `127.0.0.1:${p.proxy}`, '--admin', `127.0.0.1:${p.admin}`, '--raft', `127.0.0.1:${p.raft}`, '--peers', peers, '--data', dataDir],
        { WELDR_CONFIG: undefined, WELDR_CLUSTER_TOKEN: CLUSTER_TOKEN, ...options.env },
      );
      await proc.waitForLine('started', (l) => l.event === 'started');
      return { id: p.id, raftPort: p.raft, adminPort: p.admin, proxyPort: p.proxy, adminUrl: `http://127.0.0.1:${p.admin}`, proxyUrl: `http://127.0.0.1:${p.proxy}`, dataDir, proc };
    }),
  );
}
