// Test harness: a real HTTP listener on an ephemeral port in front of createAdminApp
// with an in-memory pool and fake stats / cluster. Uses node:http directly so tests
// control the raw request target, headers and body framing.
import { request as httpRequest, createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import type { ApplyResult, PoolCommand, PoolSnapshot, PoolStore, ProposeOptions } from '@weldr/store';
import { MemoryPoolStore } from '@weldr/store/testing';
import { createAdminApp, type AdminDeps, type AdminLogger, type ClusterInfo, type ProxyStatsView } from '../src/index.js';

/** A PoolStore that delegates to MemoryPoolStore unless told to fail or hang. */
export class ControllablePool implements PoolStore {
  readonly inner = new MemoryPoolStore();
  failWith: unknown;
  hang = false;
  readonly proposals: Array<{ command: PoolCommand; options: ProposeOptions | undefined }> = [];

  snapshot(): PoolSnapshot {
    return this.inner.snapshot();
  }
  subscribe(listener: (snapshot: PoolSnapshot) => void): () => void {
    return this.inner.subscribe(listener);
  }
  async propose(command: PoolCommand, options?: ProposeOptions): Promise<ApplyResult> {
    this.proposals.push({ command, options });
    await this.gate();
    return this.inner.propose(command, options);
  }
  async linearizableSnapshot(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<PoolSnapshot> {
    await this.gate();
    return this.inner.linearizableSnapshot(options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  private async gate(): Promise<void> {
    if (this.failWith !== undefined) throw this.failWith;
    if (this.hang) await new Promise(() => undefined);
  }
}

export interface LogLine {
  readonly level: keyof AdminLogger;
  readonly obj: object;
  readonly msg: string | undefined;
}

export interface Harness {
  readonly url: string;
  readonly pool: ControllablePool;
  readonly stats: ProxyStatsView & { servers: ProxyStatsView['servers'] };
  readonly cluster: { active: boolean; info: ClusterInfo };
  readonly metrics: Registry;
  readonly logs: LogLine[];
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
}

export interface CallOptions {
  /** JSON-encoded unless it is a string or Buffer. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** Send the body with Transfer-Encoding: chunked, in pieces of this size. */
  readonly chunkSize?: number;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** Parsed JSON body, undefined when empty. */
  readonly json: unknown;
}

export function fakeStats(): ProxyStatsView {
  return {
    client: { success: 10, failed: 2 },
    server: { success: 9, failed: 3 },
    failOpen: false,
    servers: [],
  };
}

export function fakeClusterInfo(): ClusterInfo {
  return { nodeId: 'n1', role: 'active', leaderId: 'n1', term: 1, commitIndex: 0, appliedIndex: 0, members: [{ id: 'n1', address: '127.0.0.1:8688', role: 'voter' }] };
}

export async function startAdmin(t: ExecutionContext, overrides: Partial<AdminDeps> = {}): Promise<Harness> {
  const pool = new ControllablePool();
  const stats = fakeStats();
  const cluster = { active: true, info: fakeClusterInfo() };
  const metrics = new Registry();
  const logs: LogLine[] = [];
  const log: AdminLogger = {
    debug: (obj, msg) => logs.push({ level: 'debug', obj, msg }),
    info: (obj, msg) => logs.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => logs.push({ level: 'error', obj, msg }),
  };
  const app = createAdminApp({
    pool,
    stats: { stats: () => stats },
    cluster: { info: () => cluster.info, isActive: () => cluster.active },
    metrics,
    log,
    ...overrides,
  });
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await pool.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, pool, stats, cluster, metrics, logs, call: (m, p, o) => call(port, m, p, o) };
}

function call(port: number, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const { body, chunkSize } = options;
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { ...(payload !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...options.headers };
  if (payload !== undefined && chunkSize === undefined) headers['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        if (text !== '' && String(res.headers['content-type']).startsWith('application/json')) json = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined && chunkSize !== undefined) {
      for (let i = 0; i < payload.length; i += chunkSize) req.write(payload.subarray(i, i + chunkSize));
    } else if (payload !== undefined) {
      req.write(payload);
    }
    req.end();
  });
}
