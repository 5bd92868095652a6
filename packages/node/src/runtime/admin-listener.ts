// The admin listener. INTERIM: until @weldr/admin's createAdminApp lands, this is a
// minimal stand-in serving the seed endpoints, so that the node and the e2e tests run
// end to end. It is replaced (not extended) by the real admin app.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Proxy } from '@weldr/proxy';
import { StoreError, type ApplyResult, type PoolCommand, type PoolStore } from '@weldr/store';
import type { NodeConfig } from '../config/options.js';
import type { HostPort } from '../config/values.js';
import { closeServer, listen } from './listen.js';
import type { Logger } from './logger.js';
import type { SingleNodeCluster } from './single-node-cluster.js';

export interface AdminDeps {
  readonly config: NodeConfig;
  readonly store: PoolStore;
  readonly proxy: Proxy;
  readonly cluster: SingleNodeCluster;
  readonly metrics: Registry;
  readonly log: Logger;
}

export interface AdminListener {
  readonly address: HostPort;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { error: { code, message } });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new StoreError('INVALID_COMMAND', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new StoreError('INVALID_COMMAND', 'request body is not valid JSON');
  }
}

async function propose(res: ServerResponse, store: PoolStore, command: PoolCommand, okStatus: number): Promise<void> {
  const result: ApplyResult = await store.propose(command);
  const { outcome } = result;
  if (outcome.ok) send(res, okStatus, { index: result.index, ...outcome });
  else fail(res, outcome.code === 'NOT_FOUND' ? 404 : outcome.code === 'CONFLICT' ? 409 : 400, outcome.code, outcome.message);
}

export async function startAdminListener(deps: AdminDeps): Promise<AdminListener> {
  const { store, proxy, cluster, metrics, log } = deps;
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const route = async (): Promise<void> => {
      if (req.method === 'GET' && url === '/health') return send(res, 200, { status: 'ok' });
      if (req.method === 'GET' && url === '/ready') return send(res, cluster.isActive() ? 200 : 503, { active: cluster.isActive() });
      if (req.method === 'GET' && url === '/servers') return send(res, 200, { index: store.snapshot().index, servers: store.snapshot().servers });
      if (req.method === 'GET' && (url === '/stats' || url === '/stats/detail')) return send(res, 200, proxy.stats());
      if (req.method === 'GET' && url === '/cluster') return send(res, 200, cluster.status());
      if (req.method === 'GET' && url === '/metrics') return send(res, 200, await metrics.metrics(), metrics.contentType);
      if (req.method === 'POST' && url === '/servers') {
        const body = (await readJson(req)) as { ip?: unknown; port?: unknown; weight?: unknown };
        const port = typeof body.port === 'string' && /^[0-9]+$/.test(body.port) ? Number(body.port) : body.port;
        return propose(res, store, { type: 'AddServer', ip: body.ip, port, ...(body.weight === undefined ? {} : { weight: body.weight }) } as PoolCommand, 201);
      }
      const m = /^\/servers\/([^/]+)\/([0-9]+)$/.exec(url);
      if (req.method === 'DELETE' && m) return propose(res, store, { type: 'RemoveServer', ip: decodeURIComponent(m[1]!), port: Number(m[2]) }, 200);
      fail(res, 404, 'NOT_FOUND', `no route for ${req.method ?? ''} ${url}`);
    };
    route().catch((err: unknown) => {
      if (err instanceof StoreError) fail(res, err.code === 'INVALID_COMMAND' ? 400 : err.code === 'TIMEOUT' ? 504 : 503, err.code, err.message);
      else {
        log.error({ err }, 'admin request failed');
        fail(res, 500, 'INTERNAL', 'internal error');
      }
    });
  });
  const address = await listen(server, deps.config.admin, 'the admin API');
  return {
    address,
    close: () => {
      server.closeIdleConnections();
      const closing = closeServer(server);
      server.closeAllConnections();
      return closing;
    },
  };
}
