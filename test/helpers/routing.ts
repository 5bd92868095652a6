// Requests through the proxy as an ordinary client makes them.
import { request } from 'undici';
import type { WeldrNode } from './node.js';
import { eventually } from './wait.js';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly serverId: string | undefined;
}

export async function fetchVia(node: WeldrNode, path: string, options: Parameters<typeof request>[1] = {}): Promise<Reply> {
  const res = await request(`${node.proxyUrl}${path}`, options);
  const body = Buffer.from(await res.body.arrayBuffer());
  const id = res.headers['x-server-id'];
  return { status: res.statusCode, headers: res.headers, body, serverId: typeof id === 'string' ? id : undefined };
}

/** Sends n sequential GET / and counts the answers per origin id (or status when not 200). */
export async function distribution(node: WeldrNode, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const reply = await fetchVia(node, '/');
    const key = reply.status === 200 && reply.serverId ? reply.serverId : `status ${reply.status}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

/** Waits until a round of requests reaches exactly the origins in `ids` (all of them). */
export function waitForRouting(node: WeldrNode, ids: readonly string[], timeoutMs = 20_000): Promise<Map<string, number>> {
  const expected = [...ids].sort().join(',');
  return eventually(
    `routing to exactly [${expected}]`,
    async () => {
      const seen = await distribution(node, Math.max(4, ids.length * 4));
      return [...seen.keys()].sort().join(',') === expected ? seen : undefined;
    },
    timeoutMs,
    100,
  );
}
