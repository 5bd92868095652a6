// The admin API listener: @weldr/admin's Koa app on its own node:http server.
import { createServer } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Registry } from 'prom-client';
import { answerClientError, createAdminApp, type MembershipAdmin } from '@weldr/admin';
import type { Proxy } from '@weldr/proxy';
import { parseIp, type PoolStore } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { HostPort } from '../config/values.js';
import { closeServer, listen } from './listen.js';
import type { Logger } from './logger.js';
import { forwardingListener, type ForwardTarget } from './admin-forward.js';
import type { ClusterView } from '@weldr/cluster';

export interface AdminListenerDeps {
  readonly config: NodeConfig;
  readonly store: PoolStore;
  readonly proxy: Proxy;
  readonly cluster: ClusterView;
  readonly metrics: Registry;
  readonly log: Logger;
  /** Names this node's listener at ip:port, if any (POST /servers refuses those). */
  readonly ownListenerAt?: (ip: string, port: number) => string | undefined;
  /** Cluster mode: writes on a follower are relayed to the leader. */
  readonly forward?: ForwardTarget | undefined;
  /** /cluster/members and /cluster/snapshot. */
  readonly members?: MembershipAdmin;
}

export interface AdminListener {
  readonly address: HostPort;
  /** Stops accepting and ends open admin connections (admin calls are short). */
  close(): Promise<void>;
}

/** A complete admin request head must arrive within this; then 408. */
export const ADMIN_HEADERS_TIMEOUT_MS = 5_000;
/** A complete admin request (body included, at most 64 KiB) must arrive within this. */
export const ADMIN_REQUEST_TIMEOUT_MS = 15_000;

export async function startAdminListener(deps: AdminListenerDeps): Promise<AdminListener> {
  const { config } = deps;
  const app = createAdminApp({
    pool: deps.store,
    stats: deps.proxy,
    cluster: deps.cluster,
    metrics: deps.metrics,
    log: deps.log.child({ component: 'admin' }),
    ...(config.adminToken === undefined ? {} : { auth: { token: config.adminToken } }),
    ...(deps.ownListenerAt === undefined ? {} : { ownListenerAt: deps.ownListenerAt }),
    ...(deps.members === undefined ? {} : { members: deps.members }),
  });
  const local = app.callback();
  const server = createServer(
    {
      // Admin requests are small and quick: a client that dribbles its head or body is
      // cut long before node's defaults (60 s head, 300 s request, checked every 30 s).
      headersTimeout: ADMIN_HEADERS_TIMEOUT_MS,
      requestTimeout: ADMIN_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
    },
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

/**
 * Looks up which of `listeners` (bound addresses, added as they bind) a canonical
 * ip:port reaches: the same address, or any address of this host for a wildcard one.
 */
export function ownListenerLookup(listeners: () => readonly { readonly name: string; readonly address: HostPort }[]): (ip: string, port: number) => string | undefined {
  return (ip, port) => listeners().find(({ address }) => address.port === port && reaches(address.host, ip))?.name;
}

function reaches(host: string, ip: string): boolean {
  if (host === '0.0.0.0' || host === '::') return isThisHost(ip);
  if (host.toLowerCase() === 'localhost') return isLoopbackHost(ip);
  const canonical = parseIp(host);
  return canonical.ok && canonical.value.ip === ip;
}

/** Loopback, or an address of one of this host's interfaces. */
function isThisHost(ip: string): boolean {
  if (isLoopbackHost(ip)) return true;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip)?.[1] ?? ip;
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === v4 || a.address === ip));
}
