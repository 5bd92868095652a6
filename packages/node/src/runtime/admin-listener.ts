// The admin API listener: @weldr/admin's Koa app on its own node:http server, or
// node:https with --admin-cert. In front of the app, in this order: connection limits
// (total and per source), the admission of writes (--admin-max-writes, a bounded queue),
// the client-certificate gate (--admin-client-ca), the relay of
// writes to the leader (cluster mode), then the app with its token checks.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket, SecureContextOptions } from 'node:tls';
import { networkInterfaces } from 'node:os';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import { answerClientError, createAdminApp, type AdminDeps, type FaultInjector, type MembershipAdmin } from '@weldr/admin';
import type { DataPlaneTotals, ProxyStats } from '@weldr/proxy';
import { parseIp, type PoolStore } from '@weldr/store';
import { RefusalLog, sourceOf, type ClusterView, type TlsMaterial } from '@weldr/cluster';
import type { NodeConfig } from '../config/options.js';
import type { HostPort } from '../config/values.js';
import { isLoopbackHost } from '../config/loopback.js';
import { closeServer, listen } from './listen.js';
import type { Logger } from './logger.js';
import { forwardingListener, relayOriginVerifier, type ForwardTarget } from './admin-forward.js';
import { browserGuard } from './browser-guard.js';
import { writeGate } from './admin-write-gate.js';

export { isLoopbackHost };

/** TLS material that may change while the node runs (a ReloadableTls). */
export interface TlsSource {
  readonly current: TlsMaterial;
  onReload(listener: () => void): () => void;
}

export interface AdminListenerDeps {
  readonly config: NodeConfig;
  readonly store: PoolStore;
  /** The node's data-plane figures (summed over its workers, if any). */
  readonly proxy: { stats(): ProxyStats | Promise<ProxyStats>; totals?(): DataPlaneTotals | Promise<DataPlaneTotals>; synced?(): Promise<void> };
  readonly cluster: ClusterView;
  readonly metrics: Registry;
  readonly log: Logger;
  /** Names this node's listener at ip:port, if any (POST /servers refuses those). */
  readonly ownListenerAt?: (ip: string, port: number) => string | undefined;
  /** Cluster mode: writes on a follower are relayed to the leader. */
  readonly forward?: ForwardTarget | undefined;
  /** Cluster mode: fault injection for drills (refused unless --fault-injection on). */
  readonly faults?: FaultInjector;
  /** /cluster/members and /cluster/snapshot. */
  readonly members?: MembershipAdmin;
  /** --admin-cert/--admin-key (and --admin-client-ca as its ca): serve HTTPS. */
  readonly tls?: TlsSource | undefined;
  /** How the relay reaches the leader's admin API (a bounded pool; over HTTPS, the CA and client certificate). */
  readonly relayDispatcher?: (() => Dispatcher) | undefined;
  /** What the status page reads besides the cluster and stats: GET /stats/history, /events, /node. */
  readonly status?: Pick<AdminDeps, 'history' | 'events' | 'node'>;
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

/** Probes (load balancers, Kubernetes) carry no credentials: these stay open. */
// Probes stay open to load balancers and Kubernetes even when reads need a token.
const PROBES = new Set(['/health', '/ready', '/serving']);

export async function startAdminListener(deps: AdminListenerDeps): Promise<AdminListener> {
  const { config } = deps;
  const log = deps.log.child({ component: 'admin' });
  const app = createAdminApp({
    pool: deps.store,
    stats: deps.proxy,
    cluster: deps.cluster,
    nodeId: config.id,
    metrics: deps.metrics,
    log,
    ...(config.adminToken === undefined ? {} : { auth: { token: config.adminToken, reads: config.adminAuthReads, openPaths: [...PROBES] } }),
    ...(deps.ownListenerAt === undefined ? {} : { ownListenerAt: deps.ownListenerAt }),
    ...deps.status,
    ...(deps.faults === undefined ? {} : { faults: deps.faults }),
    ...(deps.members === undefined ? {} : { members: deps.members }),
    ...(deps.forward === undefined ? {} : { relayOrigin: relayOriginVerifier(config.clusterToken) }),
    ...(deps.proxy.synced === undefined ? {} : { dataPlaneSynced: () => deps.proxy.synced!() }),
  });
  let handler: (req: IncomingMessage, res: ServerResponse) => void = app.callback();
  if (deps.forward !== undefined) {
    handler = forwardingListener(handler, {
      nodeId: config.id,
      relayKey: config.clusterToken,
      target: deps.forward,
      timeoutMs: 10_000,
      // While the leadership moves (a transfer, an election), a pool write waits for the
      // next leader rather than failing: about four election timeouts, at least 2 s.
      holdMs: Math.min(10_000, Math.max(2_000, 4 * config.raftElectionTimeout)),
      log,
      ...(deps.tls === undefined ? {} : { scheme: 'https' as const }),
      ...(deps.relayDispatcher === undefined ? {} : { dispatcher: deps.relayDispatcher }),
    });
  }
  if (config.adminClientCa !== undefined) handler = clientCertificateGate(handler);
  // Before the relay: a write a web page forged is refused here, never sent to the leader.
  handler = browserGuard(handler, {
    authenticated: config.adminToken !== undefined || config.adminClientCa !== undefined,
    scheme: deps.tls === undefined ? 'http' : 'https',
    openPaths: PROBES,
    log,
  });
  const gate = writeGate(handler, { maxWrites: config.adminMaxWrites, maxQueued: config.adminMaxQueuedWrites, metrics: deps.metrics, log });
  handler = gate.handler;
  const options = {
    // Admin requests are small and quick: a client that dribbles its head or body is
    // cut long before node's defaults (60 s head, 300 s request, checked every 30 s).
    headersTimeout: ADMIN_HEADERS_TIMEOUT_MS,
    requestTimeout: ADMIN_REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: 1_000,
  };
  const tlsSource = deps.tls;
  let server: Server;
  let offReload: (() => void) | undefined;
  if (tlsSource === undefined) {
    server = createServer(options, handler);
  } else {
    const secure = (): SecureContextOptions => {
      const { cert, key, ca } = tlsSource.current;
      return { cert, key, ...(ca === undefined ? {} : { ca }), minVersion: 'TLSv1.2' };
    };
    // Client certificates are asked for, not enforced by the TLS layer, so that a client
    // without one gets the API's JSON 401 rather than a failed handshake.
    const https = createHttpsServer({ ...options, ...secure(), requestCert: config.adminClientCa !== undefined, rejectUnauthorized: false }, handler);
    https.on('tlsClientError', () => undefined);
    offReload = tlsSource.onReload(() => https.setSecureContext(secure()));
    server = https;
  }
  server.on('clientError', answerClientError);
  limitConnections(server, config, deps.metrics, log, tlsSource !== undefined);
  const address = await listen(server, config.admin, 'the admin API');
  return {
    address,
    close: () => {
      offReload?.();
      gate.close();
      const closed = closeServer(server);
      server.closeAllConnections();
      return closed;
    },
  };
}

/**
 * At most --admin-max-connections open admin connections, and --admin-max-connections-per-source
 * from one client address: an idle-connection flood cannot take every descriptor, and
 * one client cannot take every place. A refused connection is answered 503 (plain HTTP:
 * the JSON error shape, `Connection: close`; HTTPS: closed, as nothing can be said
 * before a TLS handshake), counted (weldr_admin_connections_refused_total) and logged
 * at a bounded rate.
 */
function limitConnections(server: Server, config: NodeConfig, metrics: Registry, log: Logger, tls: boolean): void {
  const refused = new Counter({ name: 'weldr_admin_connections_refused_total', help: 'Admin connections refused because of --admin-max-connections (total) or --admin-max-connections-per-source (per_source)', labelNames: ['reason'], registers: [metrics] });
  const gauge = new Gauge({ name: 'weldr_admin_connections', help: 'Open admin connections', registers: [metrics] });
  const refusals = new RefusalLog({ log, what: 'admin connection', event: 'admin_connection_refused', intervalMs: 10_000 });
  server.on('close', () => refusals.close());
  const bySource = new Map<string, number>();
  let open = 0;
  const refuse = (socket: Socket, reason: 'total' | 'per_source', source: string, why: string): void => {
    refused.inc({ reason });
    refusals.note(reason, source, { why });
    if (tls) {
      socket.destroy();
      return;
    }
    // Whatever the client sent is not read; it gets the answer and the connection ends.
    socket.setTimeout(1_000, () => socket.destroy());
    socket.end(REFUSED, () => socket.destroy());
  };
  // Before the HTTP (or TLS) layer sees the socket: a refused one never reaches it.
  server.prependListener('connection', (socket: Socket) => {
    const source = sourceOf(socket.remoteAddress);
    const n = bySource.get(source) ?? 0;
    if (open >= config.adminMaxConnections) {
      refuse(socket, 'total', source, `more than ${config.adminMaxConnections} open admin connections (--admin-max-connections)`);
      return;
    }
    if (n >= config.adminMaxConnectionsPerSource) {
      refuse(socket, 'per_source', source, `more than ${config.adminMaxConnectionsPerSource} open admin connections from ${source} (--admin-max-connections-per-source)`);
      return;
    }
    bySource.set(source, n + 1);
    open++;
    gauge.inc();
    socket.once('close', () => {
      open--;
      gauge.dec();
      const left = (bySource.get(source) ?? 1) - 1;
      if (left <= 0) bySource.delete(source);
      else bySource.set(source, left);
    });
  });
}

const REFUSED_BODY = JSON.stringify({ error: { code: 'TOO_MANY_CONNECTIONS', message: 'too many open admin connections; retry later' } });
const REFUSED = `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(REFUSED_BODY)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${REFUSED_BODY}`;

/**
 * --admin-client-ca: every request but the probes needs a certificate the CA vouches for.
 * Checked before a write is relayed, so the leader (which sees the relaying member's own
 * certificate) never takes a write this node would have refused.
 */
function clientCertificateGate(next: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const socket = req.socket as TLSSocket;
    if (socket.authorized === true || ((req.method === 'GET' || req.method === 'HEAD') && PROBES.has(path))) {
      next(req, res);
      return;
    }
    const presented = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
    const [status, code, message] = presented
      ? [403, 'FORBIDDEN', `the client certificate is not accepted (${String(socket.authorizationError)}): it must be valid and issued by a CA in --admin-client-ca`]
      : [401, 'UNAUTHORIZED', 'this admin API needs a client certificate issued by a CA in --admin-client-ca'];
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
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
