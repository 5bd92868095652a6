// A TCP relay the e2e drills put between Raft peers (node i reaches node j through the
// relay i→j), so that a test can cut links and heal them on loopback, unprivileged.
import net from 'node:net';
import { reservedPort } from './ports.js';
import type { Teardown } from './process.js';

/** Forwards connections to `target`; while blocked, cuts every connection and refuses new ones. */
export class Relay {
  blocked = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(readonly port: number, target: number) {
    this.server = net.createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port: target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  static async start(t: Teardown, target: number): Promise<Relay> {
    const port = await reservedPort();
    const r = new Relay(port, target);
    await new Promise<void>((resolve) => r.server.listen(port, '127.0.0.1', () => resolve()));
    t.teardown(() => r.close());
    return r;
  }

  block(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.blocked = false;
  }

  close(): Promise<void> {
    this.block();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
