// The usual starting point of an e2e test: origins running, a node routing to them.
import { addOrigin } from './admin.js';
import { startNode, type NodeOptions, type WeldrNode } from './node.js';
import { requestCounts, startOrigins, type Origin } from './origins.js';
import type { Teardown } from './process.js';
import { waitForRouting } from './routing.js';
import { eventually } from './wait.js';

export async function nodeWithOrigins(t: Teardown, originIds: readonly string[], options: NodeOptions = {}): Promise<{ node: WeldrNode; origins: Origin[] }> {
  const [origins, node] = await Promise.all([startOrigins(t, originIds), startNode(t, options)]);
  for (const origin of origins) await addOrigin(node, origin);
  await waitForRouting(node, originIds);
  return { node, origins };
}

/** Waits until `origin` has received a request for `path` (so it is in flight). */
export function receivedBy(origin: Origin, path: string): Promise<true> {
  return eventually(`${origin.id} to receive ${path}`, async () => ((await requestCounts(origin)).paths[path] ? true : undefined));
}
