// The Raft peer transport: TCP between the nodes' --raft listeners, one outbound
// connection per peer for what this node sends, inbound connections for what it
// receives. Raft tolerates loss, duplication and reordering, so the transport is
// simple: a message that cannot be written now (peer down, socket backed up) is
// dropped and the peer reported unreachable; the core retries by itself.
//
// Each connection starts with a hello frame naming the sender and carrying the
// cluster token (when one is configured). Every later frame must be a message that
// passes validateMessage, addressed to this node, from the peer that said hello.
// Anything else closes the connection: a peer that speaks nonsense is not trusted
// for the rest of what it sends.
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { validateMessage, InvalidMessage, type Message, type NodeId, type Transport } from '@weldr/raft';
import { encodeFrame, FrameDecoder, FrameError } from './codec.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TransportLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TcpTransportOptions {
  readonly id: NodeId;
  /** Where this node listens for its peers. */
  readonly listen: PeerAddress;
  /** Every other member's --raft address. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Shared secret every node must present in its hello; undefined: none. */
  readonly token?: string;
  readonly log: TransportLogger;
  /** A validated message for this node. */
  readonly onMessage: (m: Message) => void;
  /** Sending to `id` failed (not connected, or backed up). */
  readonly onUnreachable?: (id: NodeId) => void;
  /** Bytes queued on one outbound socket before messages to it are dropped. Default 8 MiB. */
  readonly maxQueuedBytes?: number;
  /** Reconnect backoff bounds, ms. Default 50 … 1000. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** A hello must arrive this soon after an inbound connect. Default 5000 ms. */
  readonly helloTimeoutMs?: number;
  /** What this node tells its peers about itself in each hello (e.g. its admin URL). */
  readonly advertise?: () => Readonly<Record<string, string>>;
  /** What a peer said about itself in its hello. */
  readonly onPeerInfo?: (id: NodeId, info: Readonly<Record<string, string>>) => void;
}

const PROTOCOL = 'weldr-raft/1';

interface Hello {
  readonly hello: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly token: string;
  readonly info?: Readonly<Record<string, string>>;
}

class Peer {
  socket: net.Socket | null = null;
  connected = false;
  backoffMs: number;
  timer: NodeJS.Timeout | null = null;
  /** Logged once per outage, not per retry. */
  reportedDown = false;

  constructor(
    readonly id: NodeId,
    readonly address: PeerAddress,
    minMs: number,
  ) {
    this.backoffMs = minMs;
  }
}

export class TcpTransport implements Transport {
  private readonly server: net.Server;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<net.Socket>();
  private readonly maxQueued: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly helloMs: number;
  private closed = false;

  constructor(private readonly opts: TcpTransportOptions) {
    this.maxQueued = opts.maxQueuedBytes ?? 8 << 20;
    this.minMs = opts.reconnectMinMs ?? 50;
    this.maxMs = opts.reconnectMaxMs ?? 1000;
    this.helloMs = opts.helloTimeoutMs ?? 5000;
    for (const [id, address] of opts.peers) if (id !== opts.id) this.peers.set(id, new Peer(id, address, this.minMs));
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Start listening and connecting. Rejects if the --raft address cannot be bound. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => this.opts.log.warn({ err: err.message }, 'raft listener error'));
    for (const peer of this.peers.values()) this.connect(peer);
  }

  /** The bound port (for tests that listen on port 0). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        // A member this node has no address for (added by a conf change it has not been told about).
        this.opts.onUnreachable?.(m.to);
        continue;
      }
      const s = peer.socket;
      if (s === null || !peer.connected || s.writableLength > this.maxQueued) {
        this.opts.onUnreachable?.(m.to);
        continue;
      }
      s.write(encodeFrame(m));
    }
  }

  /** Learn (or forget, with undefined) a member's address at run time. */
  setPeer(id: NodeId, address: PeerAddress | undefined): void {
    if (id === this.opts.id) return;
    const old = this.peers.get(id);
    if (old !== undefined) {
      if (address !== undefined && old.address.host === address.host && old.address.port === address.port) return;
      this.dropPeer(old);
      this.peers.delete(id);
    }
    if (address === undefined) return;
    const peer = new Peer(id, address, this.minMs);
    this.peers.set(id, peer);
    if (!this.closed) this.connect(peer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const peer of this.peers.values()) this.dropPeer(peer);
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- outbound ----------------------------------------------------------------------

  private connect(peer: Peer): void {
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    const s = net.connect({ host: peer.address.host, port: peer.address.port });
    s.setNoDelay(true);
    s.setKeepAlive(true, 1000);
    peer.socket = s;
    s.on('connect', () => {
      peer.connected = true;
      peer.backoffMs = this.minMs;
      if (peer.reportedDown) this.opts.log.info({ peer: peer.id }, 'raft peer reachable again');
      peer.reportedDown = false;
      const hello: Hello = { hello: PROTOCOL, from: this.opts.id, to: peer.id, token: this.opts.token ?? '', info: this.opts.advertise?.() ?? {} };
      s.write(encodeFrame(hello));
    });
    // Nothing is expected back on an outbound connection; reading keeps FIN/RST visible.
    s.on('data', () => undefined);
    s.on('error', (err) => {
      if (!peer.reportedDown) this.opts.log.debug({ peer: peer.id, err: (err as NodeJS.ErrnoException).code ?? err.message }, 'raft peer connection failed');
      peer.reportedDown = true;
    });
    s.on('close', () => {
      if (peer.socket === s) {
        peer.socket = null;
        peer.connected = false;
        this.scheduleReconnect(peer);
      }
    });
  }

  private scheduleReconnect(peer: Peer): void {
    if (this.closed || this.peers.get(peer.id) !== peer || peer.timer !== null) return;
    const delay = peer.backoffMs;
    peer.backoffMs = Math.min(this.maxMs, peer.backoffMs * 2);
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.connect(peer);
    }, delay);
    peer.timer.unref();
  }

  private dropPeer(peer: Peer): void {
    if (peer.timer !== null) clearTimeout(peer.timer);
    peer.timer = null;
    const s = peer.socket;
    peer.socket = null;
    peer.connected = false;
    s?.destroy();
  }

  // ---- inbound -------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let from: NodeId | null = null;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const helloTimer = setTimeout(() => refuse('no hello in time'), this.helloMs);
    helloTimer.unref();
    const refuse = (why: string): void => {
      this.opts.log.warn({ remote, peer: from, why }, 'raft peer connection refused');
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        refuse(err instanceof FrameError ? err.message : 'unreadable frame');
        return;
      }
      for (const f of frames) {
        if (socket.destroyed) return;
        if (from === null) {
          const why = this.checkHello(f);
          if (why !== undefined) {
            refuse(why);
            return;
          }
          from = (f as Hello).from;
          clearTimeout(helloTimer);
          const info = peerInfo((f as Hello).info);
          if (info !== undefined) this.opts.onPeerInfo?.(from, info);
          continue;
        }
        const m = validateMessage(f);
        if (m instanceof InvalidMessage) {
          refuse(`invalid message: ${m.message}`);
          return;
        }
        if (m.from !== from || m.to !== this.opts.id) {
          refuse(`message from ${m.from} to ${m.to} on the connection of ${from}`);
          return;
        }
        this.opts.onMessage(m);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.inbound.delete(socket);
    });
  }

  private checkHello(f: unknown): string | undefined {
    if (f === null || typeof f !== 'object') return 'hello is not an object';
    const h = f as Partial<Hello>;
    if (h.hello !== PROTOCOL) return `unknown protocol ${JSON.stringify(h.hello)?.slice(0, 40)}`;
    if (h.to !== this.opts.id) return `hello addressed to ${String(h.to).slice(0, 64)}, this node is ${this.opts.id}`;
    if (typeof h.from !== 'string' || h.from.length === 0 || h.from.length > 256) return 'hello without a sender id';
    if (!tokenMatches(this.opts.token ?? '', typeof h.token === 'string' ? h.token : '')) return 'wrong cluster token';
    return undefined;
  }
}

/** At most 16 short string fields; anything else is ignored. */
function peerInfo(v: unknown): Record<string, string> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  let n = 0;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (++n > 16) break;
    if (typeof x === 'string' && k.length <= 64 && x.length <= 512) out[k] = x;
  }
  return out;
}

function tokenMatches(expected: string, got: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}
