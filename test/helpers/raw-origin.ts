// An origin that answers with exact bytes, for responses no HTTP library will produce
// (ambiguous framing, malformed status lines). Runs inside the test process.
import { createServer, type Socket } from 'node:net';
import type { Teardown } from './process.js';

export interface RawOrigin {
  readonly port: number;
}

/**
 * `responses` maps a request path to the raw bytes sent back; a path whose response
 * should be delimited by closing the connection is listed in `closeAfter`.
 */
export async function startRawOrigin(t: Teardown, responses: Readonly<Record<string, string>>, closeAfter: readonly string[] = []): Promise<RawOrigin> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      // Requests to this origin carry no body; answer each complete head in turn.
      let end: number;
      while ((end = head.indexOf('\r\n\r\n')) >= 0) {
        const path = head.slice(0, end).split(' ')[1] ?? '/';
        head = head.slice(end + 4);
        const response = responses[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
        if (closeAfter.includes(path)) socket.end(response);
        else socket.write(response);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as { port: number }).port };
}
