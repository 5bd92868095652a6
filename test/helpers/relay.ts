// A TCP relay in front of one node's Raft listener, for drills that cut or slow the
// peer traffic between real processes on loopback (no privileges needed). Members
// reach the node through the relay because the node advertises the relay's address
// (--raft-advertise): its replicated member record holds it.
//
// The relay reads the frames the calling peer sends (4-byte length + JSON,
// packages/cluster/src/codec.ts): its first one, the hello (after the node's challenge),
// says which node is calling, so any pair of
// nodes can be cut apart; later ones can be held back — appends that carry entries,
// while heartbeats pass — so that a change stays uncommitted while its leader keeps
// leading.
import net from 'node:net';
import { reservedPort } from './ports.js';
import type { Teardown } from './process.js';

const MAX_FRAME = 32 << 20;

export class Relay {
  private readonly cut = new Set<string>();
  private readonly holding = new Set<string>();
  /** Delay (ms) of the frames each caller sends through this relay ('*': every caller). */
  private readonly delays = new Map<string, number>();
  private readonly held: { from: string; upstream: net.Socket; frame: Buffer }[] = [];
  private readonly sockets = new Map<net.Socket, string>();
  private readonly server: net.Server;

  private constructor(readonly port: number, readonly to: string, target: number) {
    this.server = net.createServer((client) => {
      client.on('error', () => undefined);
      // The node speaks first (its challenge): connect at once, and learn who is calling
      // from the first frame the caller sends (its hello).
      const upstream = net.connect({ host: '127.0.0.1', port: target });
      upstream.on('error', () => undefined);
      upstream.on('data', (d: Buffer) => client.write(d));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      let from: string | null = null;
      let buffered = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          if (buffered.length < 4) return;
          const len = buffered.readUInt32BE(0);
          if (len > MAX_FRAME) {
            client.destroy();
            return;
          }
          if (buffered.length < 4 + len) return;
          const frame = buffered.subarray(0, 4 + len);
          buffered = buffered.subarray(4 + len);
          let body: { from?: unknown; type?: unknown; entries?: unknown[] } = {};
          try {
            body = JSON.parse(frame.subarray(4).toString()) as typeof body;
          } catch {
            // not JSON: the node refuses it
          }
          if (from === null) {
            from = String(body.from);
            if (this.cut.has(from)) {
              client.destroy();
              return;
            }
            for (const s of [client, upstream]) {
              this.sockets.set(s, from);
              s.on('close', () => this.sockets.delete(s));
            }
          }
          const delay = this.delays.get(from) ?? this.delays.get('*') ?? 0;
          if (this.holding.has(from) && body.type === 'MsgApp' && Array.isArray(body.entries) && body.entries.length > 0) {
            this.held.push({ from, upstream, frame: Buffer.from(frame) });
          } else if (delay > 0) {
            // One delay for every frame of a caller: timers of equal delay fire in order.
            const copy = Buffer.from(frame);
            setTimeout(() => {
              if (!upstream.destroyed) upstream.write(copy);
            }, delay);
          } else {
            upstream.write(frame);
          }
        }
      });
    });
  }

  static async start(t: Teardown, to: string, target: number): Promise<Relay> {
    const port = await reservedPort();
    const r = new Relay(port, to, target);
    await new Promise<void>((resolve) => r.server.listen(port, '127.0.0.1', () => resolve()));
    t.teardown(() => r.close());
    return r;
  }

  /** Cut (or heal) the connections from node `from` to this relay's node. */
  setCut(from: string, cut: boolean): void {
    if (!cut) {
      this.cut.delete(from);
      return;
    }
    this.cut.add(from);
    for (const [s, f] of this.sockets) if (f === from) s.destroy();
  }

  /**
   * Delay every frame `from` ('*': any caller) sends this relay's node by `ms` (0: no
   * delay): a slow link, with every connection kept up. Frames already delayed still
   * arrive late.
   */
  setDelay(from: string, ms: number): void {
    if (ms > 0) this.delays.set(from, ms);
    else this.delays.delete(from);
  }

  /** Hold back (or release, in order) the appends with entries that `from` sends this relay's node. */
  hold(from: string, on: boolean): void {
    if (on) {
      this.holding.add(from);
      return;
    }
    this.holding.delete(from);
    const mine = this.held.filter((h) => h.from === from);
    this.held.splice(0, this.held.length, ...this.held.filter((h) => h.from !== from));
    for (const h of mine) if (!h.upstream.destroyed) h.upstream.write(h.frame);
  }

  close(): Promise<void> {
    for (const s of this.sockets.keys()) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
