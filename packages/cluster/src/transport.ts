// The Raft peer transport: TCP between the nodes' --raft listeners, one outbound
// connection per peer for what this node sends, inbound connections for what it
// receives. Raft tolerates loss, duplication and reordering, so the transport is
// simple: a message that cannot be written now (peer down, socket backed up) is
// dropped and the peer reported unreachable; the core retries by itself.
//
// Each connection starts with a hello frame naming the sender and carrying the
// cluster token (when one is configured) and the sender's identity: its cluster id,
// its incarnation, and what it knows of the receiver's incarnation (HelloIdentity).
// Whether such a peer may talk to this node is the `admit` hook's decision (the
// membership and identity rules live in identity.ts); until it has decided — it may
// first record the peer's incarnation durably — nothing the peer sent is delivered.
// Every later frame must be a message that passes validateMessage, addressed to this
// node, from the peer that said hello, or a control frame ({"ctl": …}) for the
// application. Anything else closes the connection: a peer that speaks nonsense is not
// trusted for the rest of what it sends. A peer refused for who it is gets one frame
// saying why ({"refused": …}) before the connection closes, so that it can tell, for
// instance, that it was removed from the cluster.
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
  /** This node's identity fields for a hello to `to`. */
  readonly identity?: (to: NodeId) => HelloIdentity;
  /**
   * Decides on a peer whose hello passed the protocol and token checks: undefined
   * admits it, a Refusal refuses it. May return a promise; the peer's frames wait.
   */
  readonly admit?: (hello: PeerHello) => Refusal | undefined | Promise<Refusal | undefined>;
  /** A control frame from an admitted peer. */
  readonly onControl?: (from: NodeId, frame: ControlFrame, hello: PeerHello) => void;
  /** A peer this node connected to refused it (the peer's Refusal frame). */
  readonly onRefused?: (peer: NodeId, refusal: Refusal) => void;
}

const PROTOCOL = 'weldr-raft/1';

/** What a node says about itself, and about the peer it connects to, in its hello. */
export interface HelloIdentity {
  /** The sender's cluster id; undefined before it has one. */
  readonly cluster?: string;
  /** The sender's incarnation (a random id fixed when its data directory was created). */
  readonly incarnation?: string;
  /** The incarnation the sender knows the receiver by, and its applied index when it learned it. */
  readonly expect?: { readonly incarnation: string; readonly index: number };
  /** A seed's digest of the seed list its bootstrap log was made from. */
  readonly bootstrap?: string;
}

/** A hello as the receiver sees it, after the protocol and token checks. */
export interface PeerHello extends HelloIdentity {
  readonly from: NodeId;
  readonly remote: string;
}

/** Why a peer is refused; sent to it as {"refused": code, ...}. */
export interface Refusal {
  readonly code: string;
  readonly message: string;
  /** The refuser's applied index (so a lagging refuser can be told from an informed one). */
  readonly index?: number;
  /** The refuser's cluster id, when it has one. */
  readonly cluster?: string;
  readonly expect?: { readonly incarnation: string; readonly index: number };
}

/** An application frame between admitted peers: {"ctl": name, ...fields}. */
export type ControlFrame = { readonly ctl: string } & Readonly<Record<string, unknown>>;

interface Hello extends HelloIdentity {
  readonly hello: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly token: string;
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
  /** Who each admitted inbound connection belongs to. */
  private readonly inboundFrom = new Map<net.Socket, NodeId>();
  /** Per inbound connection: refuse it now (with a refusal frame). */
  private readonly refusers = new Map<net.Socket, (why: string, refusal?: Refusal) => void>();
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

  /** Send a control frame to `to` over this node's connection to it; false if not connected. */
  sendControl(to: NodeId, frame: ControlFrame): boolean {
    const peer = this.peers.get(to);
    const s = peer?.socket;
    if (peer === undefined || s === null || s === undefined || !peer.connected || s.writableLength > this.maxQueued) return false;
    s.write(encodeFrame(frame));
    return true;
  }

  /**
   * Ends every inbound connection of `id` with `refusal`: a peer admitted before it
   * was removed from the configuration is told so now, not at its next reconnect.
   */
  refuseFrom(id: NodeId, refusal: Refusal): void {
    for (const [socket, from] of this.inboundFrom) {
      if (from === id) this.refusers.get(socket)?.(`${refusal.code}: ${refusal.message}`, refusal);
    }
  }

  /** The members this transport connects to, with their addresses. */
  peerAddresses(): ReadonlyMap<NodeId, PeerAddress> {
    return new Map([...this.peers].map(([id, p]) => [id, p.address]));
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
      const hello: Hello = { hello: PROTOCOL, from: this.opts.id, to: peer.id, token: this.opts.token ?? '', ...identityFields(this.opts.identity?.(peer.id)) };
      s.write(encodeFrame(hello));
    });
    // The only thing a peer sends back is a refusal before it closes; reading also keeps
    // FIN/RST visible. Anything else, or more than a small frame, ends the connection.
    const decoder = new FrameDecoder(REFUSAL_MAX_BYTES);
    s.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch {
        s.destroy();
        return;
      }
      for (const f of frames) {
        const refusal = parseRefusal(f);
        if (refusal === undefined) {
          s.destroy();
          return;
        }
        this.opts.log.warn({ peer: peer.id, code: refusal.code, why: refusal.message }, 'raft peer refused this node');
        this.opts.onRefused?.(peer.id, refusal);
      }
    });
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
    let hello: PeerHello | null = null;
    /** While the admit hook decides, frames wait here (and the socket is paused). */
    let backlog: unknown[] | null = null;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const helloTimer = setTimeout(() => refuse('no hello in time'), this.helloMs);
    helloTimer.unref();
    /** Once refused, nothing more from this connection is read (it may still be half open). */
    let refused = false;
    const refuse = (why: string, refusal?: Refusal): void => {
      refused = true;
      this.opts.log.warn({ remote, peer: from, why }, 'raft peer connection refused');
      if (refusal !== undefined && !socket.destroyed) {
        socket.end(
          encodeFrame({
            refused: refusal.code,
            message: refusal.message,
            ...(refusal.index === undefined ? {} : { index: refusal.index }),
            ...(refusal.cluster === undefined ? {} : { cluster: refusal.cluster }),
            ...(refusal.expect === undefined ? {} : { expect: refusal.expect }),
          }),
        );
        // A peer that does not close its side is cut shortly after.
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      socket.destroy();
    };
    const admitted = (verdict: Refusal | undefined): boolean => {
      if (verdict === undefined) return true;
      refuse(`${verdict.code}: ${verdict.message}`, verdict);
      return false;
    };
    const handle = (frames: unknown[]): void => {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i];
        if (socket.destroyed || refused) return;
        if (backlog !== null) {
          backlog.push(f);
          continue;
        }
        if (from === null) {
          const why = this.checkHello(f);
          if (why !== undefined) {
            refuse(why);
            return;
          }
          const h = f as Hello;
          from = h.from;
          hello = { from: h.from, remote, ...identityFields(h) };
          clearTimeout(helloTimer);
          const verdict = this.opts.admit?.(hello);
          if (verdict instanceof Promise) {
            backlog = frames.slice(i + 1);
            socket.pause();
            verdict.then(
              (v) => {
                const rest = backlog ?? [];
                backlog = null;
                if (!admitted(v) || socket.destroyed || refused) return;
                this.inboundFrom.set(socket, from!);
                socket.resume();
                handle(rest);
              },
              (err: unknown) => refuse(`admission failed: ${(err as Error).message}`),
            );
            return;
          }
          if (!admitted(verdict)) return;
          this.inboundFrom.set(socket, from);
          continue;
        }
        if (f !== null && typeof f === 'object' && typeof (f as { ctl?: unknown }).ctl === 'string') {
          this.opts.onControl?.(from, f as ControlFrame, hello!);
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
    };
    socket.on('data', (chunk: Buffer) => {
      if (refused) return;
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        refuse(err instanceof FrameError ? err.message : 'unreadable frame');
        return;
      }
      handle(frames);
    });
    this.refusers.set(socket, refuse);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.inbound.delete(socket);
      this.inboundFrom.delete(socket);
      this.refusers.delete(socket);
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

/** A refusal frame is small; an outbound connection reads nothing else. */
const REFUSAL_MAX_BYTES = 4096;
const IDENTITY_TEXT = /^[A-Za-z0-9_-]{1,64}$/;

/** The identity fields of a hello, each kept only when well-formed. */
function identityFields(h: HelloIdentity | undefined): HelloIdentity {
  if (h === undefined) return {};
  const ok = (v: unknown): v is string => typeof v === 'string' && IDENTITY_TEXT.test(v);
  const e = h.expect as { incarnation?: unknown; index?: unknown } | undefined;
  const expect = e !== undefined && e !== null && typeof e === 'object' && ok(e.incarnation) && Number.isSafeInteger(e.index) && (e.index as number) >= 0 ? { incarnation: e.incarnation, index: e.index as number } : undefined;
  return {
    ...(ok(h.cluster) ? { cluster: h.cluster } : {}),
    ...(ok(h.incarnation) ? { incarnation: h.incarnation } : {}),
    ...(expect === undefined ? {} : { expect }),
    ...(ok(h.bootstrap) ? { bootstrap: h.bootstrap } : {}),
  };
}

function parseRefusal(f: unknown): Refusal | undefined {
  if (f === null || typeof f !== 'object') return undefined;
  const r = f as { refused?: unknown; message?: unknown; index?: unknown; cluster?: unknown; expect?: unknown };
  if (typeof r.refused !== 'string' || r.refused.length > 64 || typeof r.message !== 'string') return undefined;
  const index = Number.isSafeInteger(r.index) ? (r.index as number) : undefined;
  const { cluster, expect } = identityFields({ cluster: r.cluster as string, expect: r.expect as HelloIdentity['expect'] });
  return {
    code: r.refused,
    message: r.message.slice(0, 1000),
    ...(index === undefined ? {} : { index }),
    ...(cluster === undefined ? {} : { cluster }),
    ...(expect === undefined ? {} : { expect }),
  };
}

function tokenMatches(expected: string, got: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}
