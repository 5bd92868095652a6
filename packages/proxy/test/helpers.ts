// Shared fixtures for the proxy tests: origins on port 0, snapshots, raw sockets.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { DEFAULT_SETTINGS } from '@weldr/store';
import type { PoolSettings, PoolSnapshot, ServerRecord } from '@weldr/store';
import { createProxy, type Logger, type Proxy, type ProxyOptions } from '../src/index.js';
import { OriginClient } from '../src/origin-client/client.js';
import type { OriginClientOptions } from '../src/origin-client/types.js';

export interface LogLine {
  level: string;
  o: object;
  msg?: string;
}

export function memoryLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at = (level: string) => (o: object, msg?: string) => {
    lines.push({ level, o, msg });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface Origin {
  server: http.Server;
  port: number;
  id: string;
  /** Requests seen, in arrival order. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: string }[];
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** An origin that records every request (with its whole body) and answers with `handler`. */
export async function startOrigin(handler?: OriginHandler, name = 'origin'): Promise<Origin> {
  const seen: Origin['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body });
      if (handler) handler(req, res, body);
      else {
        res.setHeader('x-origin', name);
        res.end(`${name}:${req.method} ${req.url}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    id: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function record(port: number, over: Partial<ServerRecord> = {}, ip = '127.0.0.1'): ServerRecord {
  return {
    id: `${ip}:${port}`,
    ip,
    port,
    weight: 1,
    healthCheck: {},
    draining: false,
    createdIndex: 1,
    updatedIndex: 1,
    ...over,
  };
}

let index = 1;
export function snapshot(servers: ServerRecord[], settings: Partial<PoolSettings> = {}): PoolSnapshot {
  return { index: index++, servers, settings: { ...DEFAULT_SETTINGS, ...settings } };
}

export interface Running {
  proxy: Proxy;
  port: number;
  log: Logger & { lines: LogLine[] };
}

export async function startProxy(snap: PoolSnapshot, over: Partial<ProxyOptions> = {}): Promise<Running> {
  const log = memoryLogger();
  const proxy = createProxy({ snapshot: snap, log, healthChecks: false, ...over });
  const addr = await proxy.listen(0, '127.0.0.1');
  return { proxy, port: addr.port, log };
}

/**
 * Send raw bytes and collect everything until the server closes the connection (or
 * `idleMs` passes with nothing new, when the server keeps it open).
 */
/** One origin and a proxy routing to it, both closed when the test ends. */
export async function setup(t: Teardown, handler?: OriginHandler, over: Partial<ProxyOptions> = {}): Promise<{ origin: Origin; p: Running }> {
  const origin = await startOrigin(handler);
  const p = await startProxy(snapshot([record(origin.port)]), over);
  t.teardown(async () => {
    await p.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  return { origin, p };
}

/** The part of ava's ExecutionContext `setup` needs. */
export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/**
 * Send `data` and collect the answer until the connection closes or, once something
 * arrived, nothing more comes for `idleMs`. The first byte may take much longer on a
 * loaded machine (a 2-core CI box running other test files): waiting 1.5 s for it made
 * tests read an empty answer as "no response", so the wait for it is generous.
 */
export function rawRequest(port: number, data: string | Buffer, idleMs = 1_500, firstByteMs = 20_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const done = (closed: boolean): void => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => done(false), chunks.length === 0 ? Math.max(idleMs, firstByteMs) : idleMs);
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    socket.on('error', () => done(true));
    socket.on('end', () => done(true));
    socket.on('connect', () => {
      socket.write(data);
      arm();
    });
  });
}

export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Resolve when `predicate` holds, polling; rejects after `ms`. */
export async function until(predicate: () => boolean, ms = 10_000, step = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, step));
  }
}

/** A port with nothing listening (bound then closed). */
/**
 * A port on 127.0.0.1 that refuses connections. Taken below the kernel's ephemeral range
 * (32768+): a port found with listen(0) and freed could be handed to the next listen(0)
 * of a test running alongside (seen once: a "refused" origin answered 200), while
 * nothing binds 10000-13999 (the cluster package's tests take 14000-19999, the e2e
 * tests' fixed ports are 20000-32000).
 */
export async function deadPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 4_000);
    const s = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!free) continue;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  throw new Error('no free port in 10000-13999 for a dead origin');
}

/** An origin client for `127.0.0.1:port` with the tests' timeouts, destroyed at teardown. */
export function originClient(t: Teardown, port: number, over: Partial<OriginClientOptions> = {}): OriginClient {
  const c = new OriginClient({
    host: '127.0.0.1',
    port,
    tls: null,
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
    keepAliveTimeoutMs: 5_000,
    maxHeaderSize: 16 * 1024,
    connections: 8,
    ...over,
  });
  t.teardown(() => c.destroy());
  return c;
}
