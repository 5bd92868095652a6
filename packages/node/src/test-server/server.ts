// `weldr test-server`: the origin used by the e2e tests, the demo and the benchmarks.
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { route, splitTarget, type RouteState } from './routes.js';
import { acceptWebSocket } from './websocket-echo.js';
import { listen } from '../runtime/listen.js';

export interface TestServerOptions {
  readonly host: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** Defaults to `test-server-<bound port>`. */
  readonly id?: string;
}

export interface TestServer {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly server: Server;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then drops the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const state: RouteState = { id: options.id ?? '', healthy: true, total: 0, connections: 0, paths: new Map() };
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => route(req, res, state));
  server.on('connection', () => {
    state.connections++;
  });
  // Upgraded sockets leave the HTTP server's bookkeeping; close() has to end them itself.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req, socket, head) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const { path } = splitTarget(req.url ?? '/');
    state.total++;
    state.paths.set(path, (state.paths.get(path) ?? 0) + 1);
    if (path !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    acceptWebSocket(req, socket, head, state.id);
  });
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy(err);
  });

  // A bind failure is a ListenError that names the address (as for `weldr start`).
  const { port } = await listen(server, { host: options.host, port: options.port }, 'HTTP');
  if (state.id === '') state.id = `test-server-${port}`;

  const close = (graceMs = 5000): Promise<void> =>
    new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of upgraded) socket.destroy();
      }, graceMs);
      // close() only ends connections idle at the time of the call; a keep-alive
      // connection whose response finishes later would otherwise linger until its
      // keep-alive timeout.
      const sweep = setInterval(() => server.closeIdleConnections(), 20);
      server.close(() => {
        clearTimeout(force);
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
      for (const socket of upgraded) socket.end();
    });

  return { id: state.id, host: options.host, port, server, close };
}
