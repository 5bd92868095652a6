// The admin API listener: @weldr/admin's Koa app on its own node:http server.
import { createServer } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { answerClientError, createAdminApp } from '@weldr/admin';
import type { Proxy } from '@weldr/proxy';
import type { PoolStore } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { HostPort } from '../config/values.js';
import { closeServer, listen } from './listen.js';
import type { Logger } from './logger.js';
import { forwardingListener, type ForwardTarget } from './admin-forward.js';
import type { ClusterView } from './raft-cluster.js';

export interface AdminListenerDeps {
  readonly config: NodeConfig;
  readonly store: PoolStore;
  readonly proxy: Proxy;
  readonly cluster: ClusterView;
  readonly metrics: Registry;
  readonly log: Logger;
  /** Cluster mode: writes on a follower are relayed to the leader. */
  readonly forward?: ForwardTarget | undefined;
}

export interface AdminListener {
  readonly address: HostPort;
  /** Stops accepting and ends open admin connections (admin calls are short). */
  close(): Promise<void>;
}

export async function startAdminListener(deps: AdminListenerDeps): Promise<AdminListener> {
  const { config } = deps;
  const app = createAdminApp({
    pool: deps.store,
    stats: deps.proxy,
    cluster: deps.cluster,
    metrics: deps.metrics,
    log: deps.log.child({ component: 'admin' }),
    ...(config.adminToken === undefined ? {} : { auth: { token: config.adminToken } }),
  });
  const local = app.callback();
  const server = createServer(
    deps.forward === undefined
      ? local
      : forwardingListener(local, { nodeId: config.id, target: deps.forward, timeoutMs: 10_000, log: deps.log.child({ component: 'admin' }) }),
  );
  server.on('clientError', answerClientError);
  const address = await listen(server, config.admin, 'the admin API');
  return {
    address,
    close: () => {
      const closed = closeServer(server);
      server.closeAllConnections();
      return closed;
    },
  };
}

// 127.0.0.0/8 and ::1 (BlockList also matches other spellings, e.g. 0:0:0:0:0:0:0:1).
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether only this host can reach `host`. Admin reads are never authenticated and,
 * without a token, neither are writes: anywhere else the pool is open to the network.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1];
  if (mapped !== undefined) return isLoopbackHost(mapped);
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}
