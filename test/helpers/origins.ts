// Origins for e2e tests: real `weldr test-server` processes on ephemeral ports.
import { request } from 'undici';
import { spawnWeldr, type RunningProcess, type Teardown } from './process.js';

export interface Origin {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly proc: RunningProcess;
}

export interface RequestCounts {
  readonly total: number;
  readonly connections: number;
  readonly paths: Readonly<Record<string, number>>;
}

export async function startOrigin(t: Teardown, id: string): Promise<Origin> {
  const proc = spawnWeldr(t, `origin ${id}`, ['test-server', '--port', '0', '--host', '127.0.0.1', '--id', id]);
  const line = await proc.waitForLine('listening', (l) => l.event === 'listening');
  const port = line.port as number;
  return { id, port, url: `http://127.0.0.1:${port}`, proc };
}

export function startOrigins(t: Teardown, ids: readonly string[]): Promise<Origin[]> {
  return Promise.all(ids.map((id) => startOrigin(t, id)));
}

/** What the origin has received so far (its own /__requests endpoint, not counted). */
export async function requestCounts(origin: Origin): Promise<RequestCounts> {
  const res = await request(`${origin.url}/__requests`);
  return (await res.body.json()) as RequestCounts;
}

/** Requests the origin received for paths other than the health-check path. */
export function nonHealthRequests(counts: RequestCounts, healthPaths: readonly string[] = ['/']): number {
  return Object.entries(counts.paths)
    .filter(([path]) => !healthPaths.includes(path))
    .reduce((sum, [, n]) => sum + n, 0);
}
