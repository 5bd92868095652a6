// The Raft peer transport: TCP (or TLS, with --peer-cert) between the nodes' --raft
// listeners, one outbound connection per peer for what this node sends, inbound
// connections for what it receives. Raft tolerates loss, duplication and reordering, so
// the transport is simple: a message that cannot be written now (peer down, socket
// backed up) is dropped and the peer reported unreachable; the core retries by itself.
//
// Each connection starts with a handshake (peer-proof.ts): the accepting node sends a
// challenge, the dialling node answers with a hello naming itself and proving the cluster
// token, the accepting node answers with a welcome proving it too. With peer TLS, both
// certificates are verified against the cluster CA and must name the member each side
// claims to be. Until the hello is accepted a connection is a stranger's: it may send one
// small frame (PRE_AUTH_MAX_FRAME_BYTES) within helloTimeoutMs, and only so many
// strangers are let in at once, in total and per source (pending-connections.ts).
// Refusals are counted and logged at a bounded rate (refusal-log.ts).
//
// The hello also carries the sender's identity (HelloIdentity: its cluster id, its
// incarnation, what it knows of the receiver's incarnation, a seed's bootstrap digest).
// Whether an authenticated peer may talk to this node is the `admit` hook's decision
// (the membership and identity rules live in identity.ts); it may first record the
// peer's incarnation durably, and the welcome waits for it. A peer refused for who it
// is gets a {"refused": …} frame instead of the welcome — and an admitted peer removed
// later gets one on its open connection (refuseFrom) — so that it can tell, for
// instance, that it was removed from the cluster. Nothing in a hello is used as an
// address: the admin relay and the peer set read the replicated member records.
//
// Every later frame must be a message that passes validateMessage, addressed to this
// node, from the peer that said hello, or a control frame ({"ctl": …}) for the
// application. Anything else closes the connection: a peer that speaks nonsense is not
// trusted for the rest of what it sends.
import net from 'node:net';
import tls from 'node:tls';
import { validateMessage, InvalidMessage, type Message, type NodeId, type Transport } from '@weldr/raft';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES, PRE_AUTH_MAX_FRAME_BYTES } from './codec.js';
import { isNonce, makeProof, newNonce, proofMatches, type ProofInput } from './peer-proof.js';
import { certificateNodeId } from './peer-identity.js';
import { PendingConnections, sourceOf } from './pending-connections.js';
import { RefusalLog } from './refusal-log.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

const sameAddress = (a: PeerAddress, b: PeerAddress): boolean => a.host === b.host && a.port === b.port;

export interface TransportLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** This node's peer certificate, key and the cluster CA, current and on each reload. */
export interface PeerTlsSource {
  readonly current: { readonly cert: string; readonly key: string; readonly ca: string | undefined };
  onReload(listener: () => void): () => void;
}

export interface TcpTransportOptions {
  readonly id: NodeId;
  /** Where this node listens for its peers. */
  readonly listen: PeerAddress;
  /** Every other member's --raft address. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Addresses to try in turn when a peer's cannot be reached there (see setPeer). */
  readonly alternates?: ReadonlyMap<NodeId, readonly PeerAddress[]>;
  /** Shared secret every node must prove in its handshake; undefined: none. */
  readonly token?: string | undefined;
  /** Peer TLS; undefined: plain TCP. */
  readonly tls?: PeerTlsSource | undefined;
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
  /** The handshake (TLS included) must be done this soon after a connect. Default 3000 ms. */
  readonly helloTimeoutMs?: number;
  /** Connections not yet authenticated, at most, in total. Default 64. */
  readonly maxPendingConnections?: number;
  /** Connections not yet authenticated, at most, from one source address (IPv6: one /64). Default 8. */
  readonly maxPendingPerSource?: number;
  /** Refused connections are summed up in one log line per this interval. Default 10000 ms. */
  readonly refusalLogIntervalMs?: number;
  /** This node's identity fields for a hello to `to`. */
  readonly identity?: (to: NodeId) => HelloIdentity;
  /**
   * Decides on an authenticated peer (its hello passed the protocol, token and
   * certificate checks): undefined admits it, an IdentityRefusal refuses it. May return
   * a promise; the welcome waits.
   */
  readonly admit?: (hello: PeerHello) => IdentityRefusal | undefined | Promise<IdentityRefusal | undefined>;
  /** A control frame from an admitted peer. */
  readonly onControl?: (from: NodeId, frame: ControlFrame, hello: PeerHello) => void;
  /** A peer this node connected to refused it (the peer's refusal frame). */
  readonly onRefused?: (peer: NodeId, refusal: IdentityRefusal) => void;
  /**
   * An established, authenticated connection with `peer` ended (FIN, RST or an error;
   * either direction): the first sign that its process may be gone (leader-death.ts).
   * Not called for a connection replaced by a newer one, nor while closing.
   */
  readonly onPeerClosed?: (peer: NodeId) => void;
  /** A peer this node connected to welcomed it: the peer admitted this node's hello (identity checks included). */
  readonly onPeerWelcomed?: (peer: NodeId) => void;
}

/** How this node sees one peer, for /cluster. */
export interface PeerStatus {
  /** This node's outbound connection to the peer is up (handshake done). */
  readonly reachable: boolean;
  /** Milliseconds since the last message received from the peer; null: none since the start. */
  readonly lastContactMs: number | null;
  /** Why the last outbound connection failed or closed, while it is down. */
  readonly lastError?: string;
}

/** What a node says about itself, and about the peer it connects to, in its hello. */
export interface HelloIdentity {
  /** The sender's cluster id; undefined before it has one. */
  readonly cluster?: string;
  /** The sender's incarnation (a random id fixed when its data directory was created). */
  readonly incarnation?: string;
  /**
   * The incarnation the sender knows the receiver by, and its applied index when it
   * learned it; with `start`, the latest start of the receiver's it has seen under it.
   */
  readonly expect?: ExpectedIdentity;
  /** The sender's current start (a counter and a random id; NodeIdentity.start). */
  readonly start?: { readonly n: number; readonly id: string };
  /** A seed's digest of the seed list its bootstrap log was made from. */
  readonly bootstrap?: string;
  /**
   * The sender's Raft address as it advertises it: a node that has no record of the
   * sender yet (a joining one) needs it to answer. A claim, checked by connecting.
   */
  readonly raft?: string;
}

/** An authenticated hello as the receiver sees it. */
export interface PeerHello extends HelloIdentity {
  readonly from: NodeId;
  readonly remote: string;
}

/** Why a peer is refused for who it is; sent to it as {"refused": code, ...}. */
export interface IdentityRefusal {
  readonly code: string;
  readonly message: string;
  /** The refuser's applied index (so a lagging refuser can be told from an informed one). */
  readonly index?: number;
  /** The refuser's cluster id, when it has one. */
  readonly cluster?: string;
  readonly expect?: ExpectedIdentity;
}

/** What a peer knows of this node: its incarnation (and where it learned it), and the latest start it saw. */
export interface ExpectedIdentity {
  readonly incarnation: string;
  readonly index: number;
  readonly start?: { readonly n: number; readonly id: string };
}

/** The refusal of a joining node that does not know the cluster's configuration yet (identity.ts). */
export const NOT_READY = 'not-ready';

/** An application frame between admitted peers: {"ctl": name, ...fields}. */
export type ControlFrame = { readonly ctl: string } & Readonly<Record<string, unknown>>;

/** Counters for metrics. */
export interface TransportStats {
  /** Refused inbound connections since the start, by reason. */
  readonly refused: ReadonlyMap<string, number>;
  /** Inbound connections not yet authenticated. */
  readonly pending: number;
}

const PROTOCOL = 'weldr-raft/2';

interface Hello extends HelloIdentity {
  readonly hello: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly nonce: string;
  readonly proof: string;
}

/** How long the same refusal by a peer is logged at debug after its warning (transport.logRefusal). */
const REFUSAL_WARN_MS = 60_000;

class Peer {
  socket: net.Socket | null = null;
  connected = false;
  backoffMs: number;
  timer: NodeJS.Timeout | null = null;
  /** Logged once per outage, not per retry. */
  reportedDown = false;
  /** The refusal last logged at warn (its code, and when): the same one again is logged at debug for a while. */
  refusalWarned: { code: string; at: number } | null = null;
  /** Why the connection failed or closed last (shown while it is down). */
  lastError: string | undefined;
  /** Index in [address, ...alternates] of the address the next connection tries. */
  private at = 0;
  /** The address of the last connection the peer welcomed (it proved who it is there). */
  proven: PeerAddress | null = null;

  constructor(
    readonly id: NodeId,
    readonly address: PeerAddress,
    minMs: number,
    /** Other addresses to try when the first cannot be reached (see setPeer). */
    readonly alternates: readonly PeerAddress[] = [],
  ) {
    this.backoffMs = minMs;
  }

  /** Where the next connection goes. */
  get dialled(): PeerAddress {
    return this.at === 0 ? this.address : this.alternates[this.at - 1]!;
  }

  /** The address tried last did not lead to the peer: the next connection tries the next one. */
  rotate(): void {
    if (this.alternates.length > 0) this.at = (this.at + 1) % (this.alternates.length + 1);
  }

  same(address: PeerAddress, alternates: readonly PeerAddress[]): boolean {
    return sameAddress(this.address, address) && alternates.length === this.alternates.length && alternates.every((a, i) => sameAddress(a, this.alternates[i]!));
  }
}

/** An inbound connection until its hello is accepted. */
interface Pending {
  readonly source: string;
  readonly remote: string;
  readonly deadline: NodeJS.Timeout;
  /** Counted as refused already (a connection is refused once). */
  refused: boolean;
  /** Gives the connection's place among the pending back; idempotent. */
  release(): void;
}

/** A refused inbound connection: a short reason code (for metrics) and what happened. */
class Refusal {
  constructor(
    readonly reason: string,
    readonly why: string,
  ) {}
}

export class TcpTransport implements Transport {
  private readonly server: net.Server;
  /** Wraps accepted sockets in TLS (never listens itself); null without peer TLS. */
  private readonly tlsServer: tls.Server | null = null;
  private clientContext: tls.SecureContext | null = null;
  /** Accepted sockets in their TLS handshake, by remote address and port. */
  private readonly inTlsHandshake = new Map<string, Pending>();
  /** Closed in their TLS handshake, waiting a moment for the TLS layer to say why. */
  private tlsClosed: Pending[] = [];
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<net.Socket>();
  /** The authenticated inbound connection of each peer: a newer one replaces it. */
  private readonly inboundById = new Map<NodeId, net.Socket>();
  private readonly pending: PendingConnections;
  private readonly refusals: RefusalLog;
  private readonly maxQueued: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly helloMs: number;
  private offReload: (() => void) | null = null;
  private closed = false;
  /** When a message from each peer last arrived (performance.now()). */
  private readonly lastHeard = new Map<NodeId, number>();

  constructor(private readonly opts: TcpTransportOptions) {
    this.maxQueued = opts.maxQueuedBytes ?? 8 << 20;
    this.minMs = opts.reconnectMinMs ?? 50;
    this.maxMs = opts.reconnectMaxMs ?? 1000;
    this.helloMs = opts.helloTimeoutMs ?? 3000;
    this.pending = new PendingConnections(opts.maxPendingConnections ?? 64, opts.maxPendingPerSource ?? 8);
    this.refusals = new RefusalLog({ log: opts.log, what: 'raft connection', event: 'raft_connection_refused', intervalMs: opts.refusalLogIntervalMs ?? 10_000 });
    for (const [id, address] of opts.peers) {
      if (id !== opts.id) this.peers.set(id, new Peer(id, address, this.minMs, (opts.alternates?.get(id) ?? []).filter((a) => !sameAddress(a, address))));
    }
    this.server = net.createServer((socket) => this.accept(socket));
    if (opts.tls !== undefined) {
      const source = opts.tls;
      this.tlsServer = tls.createServer({ ...this.secureOptions(), requestCert: true, rejectUnauthorized: true, handshakeTimeout: this.helloMs });
      this.tlsServer.on('secureConnection', (s: tls.TLSSocket) => this.secured(s));
      this.tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, s: tls.TLSSocket) => this.tlsFailed(err, s));
      this.clientContext = tls.createSecureContext(this.secureOptions());
      // Rotation: new connections, inbound and outbound, use the new certificate.
      this.offReload = source.onReload(() => {
        this.tlsServer?.setSecureContext(this.secureOptions());
        this.clientContext = tls.createSecureContext(this.secureOptions());
      });
    }
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
    // Out of file descriptors and the like: one failed accept per connection attempt,
    // so these are counted and logged at a bounded rate like refusals.
    this.server.on('error', (err: NodeJS.ErrnoException) => this.refusals.note('accept_failed', 'listener', { why: `accept failed: ${err.code ?? err.message}` }));
    for (const peer of this.peers.values()) this.connect(peer);
  }

  /** The bound port (for tests that listen on port 0). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** How this node sees `id` now: its own connection and the last message received. */
  peerStatus(id: NodeId): PeerStatus {
    const peer = this.peers.get(id);
    const heard = this.lastHeard.get(id);
    const reachable = peer !== undefined && peer.connected;
    return {
      reachable,
      lastContactMs: heard === undefined ? null : Math.max(0, Math.round(performance.now() - heard)),
      ...(reachable || peer?.lastError === undefined ? {} : { lastError: peer.lastError }),
    };
  }

  /** Whether an authenticated connection with `id` is up, in either direction. */
  connectedTo(id: NodeId): boolean {
    return this.peers.get(id)?.connected === true || this.inboundById.has(id);
  }

  stats(): TransportStats {
    return { refused: this.refusals.counts(), pending: this.pending.size };
  }

  send(messages: readonly Message[]): void {
    // The frames for one peer go out in one socket write: each write is a system call
    // and, on loopback, the receiver's wake-up — the cost that dominates a small write.
    let frames: Map<Peer, Buffer[]> | undefined;
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
      frames ??= new Map();
      const list = frames.get(peer);
      if (list === undefined) frames.set(peer, [encodeFrame(m)]);
      else list.push(encodeFrame(m));
    }
    if (frames === undefined) return;
    for (const [peer, list] of frames) peer.socket!.write(list.length === 1 ? list[0]! : Buffer.concat(list));
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
   * Where `id` last proved who it is: the address of the last outbound connection it
   * welcomed; undefined before one. Evidence about the peer's process (the fast
   * failover's probe) may be gathered there only: an address from a record or from
   * --peers may be one the peer has left, where a refused connection proves nothing.
   */
  provenAddress(id: NodeId): PeerAddress | undefined {
    return this.peers.get(id)?.proven ?? undefined;
  }

  /** The members this transport connects to, with their addresses. */
  peerAddresses(): ReadonlyMap<NodeId, PeerAddress> {
    return new Map([...this.peers].map(([id, p]) => [id, p.address]));
  }

  /**
   * Ends the inbound connection of `id` with `refusal`: a peer admitted before it was
   * removed from the configuration is told so now, not at its next reconnect.
   */
  refuseFrom(id: NodeId, refusal: IdentityRefusal): void {
    const socket = this.inboundById.get(id);
    if (socket === undefined) return;
    this.inboundById.delete(id);
    endWithRefusal(socket, refusal);
  }

  /**
   * Learn (or forget, with undefined) a member's address at run time. `alternates` are
   * tried in turn while `address` does not lead to the peer (nothing listens, or the
   * handshake fails): a member's record may name an address it has left, while this
   * start's --peers names the one it has now. Only a welcomed handshake — the peer
   * proved the cluster token, or its certificate, under the id it was dialled as — makes
   * an address the one used.
   */
  setPeer(id: NodeId, address: PeerAddress | undefined, alternates: readonly PeerAddress[] = []): void {
    if (id === this.opts.id) return;
    const old = this.peers.get(id);
    if (old !== undefined) {
      if (address !== undefined && old.same(address, alternates)) return;
      this.dropPeer(old);
      this.peers.delete(id);
    }
    if (address === undefined) return;
    const peer = new Peer(id, address, this.minMs, alternates.filter((a) => !sameAddress(a, address)));
    this.peers.set(id, peer);
    if (!this.closed) this.connect(peer);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.offReload?.();
    for (const peer of this.peers.values()) this.dropPeer(peer);
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    this.refusals.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private secureOptions(): tls.SecureContextOptions {
    const { cert, key, ca } = this.opts.tls!.current;
    // Both ends are weldr: TLS 1.3 only, no negotiation down.
    return { cert, key, ...(ca === undefined ? {} : { ca }), minVersion: 'TLSv1.3' };
  }

  // ---- outbound ----------------------------------------------------------------------

  private connect(peer: Peer): void {
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    const { host, port } = peer.dialled;
    const s: net.Socket =
      this.clientContext === null
        ? net.connect({ host, port })
        : tls.connect({
            host,
            port,
            secureContext: this.clientContext,
            // The identity that matters is the member's id, bound to its certificate; the
            // address it is reached at is configuration, so no host name is checked.
            checkServerIdentity: (_host, cert) => {
              const named = certificateNodeId(cert);
              if ('why' in named) return new Error(`${peer.id}'s certificate: ${named.why}`);
              return named.id === peer.id ? undefined : new Error(`the certificate at ${peer.id}'s address is ${named.id}'s`);
            },
          });
    s.setNoDelay(true);
    s.setKeepAlive(true, 1000);
    peer.socket = s;
    const decoder = new FrameDecoder(PRE_AUTH_MAX_FRAME_BYTES);
    const clientNonce = newNonce();
    let serverNonce: string | null = null;
    let failure: string | null = null;
    /** The peer said it is joining and not ready yet (NOT_READY): not a refusal to warn about. */
    let joining = false;
    const fail = (why: string): void => {
      failure ??= why;
      s.destroy();
    };
    const deadline = setTimeout(() => fail('no answer to the handshake in time'), this.helloMs);
    deadline.unref();
    let tlsUp = false;
    s.once('secureConnect', () => (tlsUp = true));
    s.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        fail(err instanceof FrameError ? err.message : 'unreadable frame');
        return;
      }
      for (const f of frames) {
        if (s.destroyed) return;
        // A peer refuses this node for who it is with one frame, before or after the
        // welcome (a member removed later); after the welcome nothing else comes back.
        const refusal = parseRefusal(f);
        if (refusal !== undefined) {
          // A node that is joining refuses everyone until the cluster's answer reaches it
          // (not-ready): expected for a moment on every member, not worth a warning. A
          // join that stalls shows up elsewhere (the leader's member_condition).
          joining = refusal.code === NOT_READY;
          if (joining) this.opts.log.debug({ peer: peer.id, code: refusal.code }, `raft peer ${peer.id} is joining and not ready yet`);
          else this.logRefusal(peer, refusal);
          this.opts.onRefused?.(peer.id, refusal);
          return fail(`refused (${refusal.code}): ${refusal.message}`);
        }
        if (peer.connected && peer.socket === s) return fail('the peer sent something after its welcome');
        if (serverNonce === null) {
          const c = f as { challenge?: unknown; nonce?: unknown } | null;
          if (c === null || typeof c !== 'object' || c.challenge !== PROTOCOL || !isNonce(c.nonce)) return fail('the peer did not send a weldr-raft/2 challenge (another program, or another weldr version?)');
          serverNonce = c.nonce;
          const input: ProofInput = { serverNonce, clientNonce, from: this.opts.id, to: peer.id };
          const hello: Hello = {
            hello: PROTOCOL,
            from: this.opts.id,
            to: peer.id,
            nonce: clientNonce,
            proof: this.opts.token === undefined ? '' : makeProof(this.opts.token, 'client', input),
            ...identityFields(this.opts.identity?.(peer.id)),
          };
          const bytes = encodeFrame(hello);
          if (bytes.length - 4 > PRE_AUTH_MAX_FRAME_BYTES) return fail(`this node's hello is ${bytes.length} bytes, over the ${PRE_AUTH_MAX_FRAME_BYTES} a peer accepts`);
          s.write(bytes);
          continue;
        }
        const w = f as { welcome?: unknown; proof?: unknown } | null;
        if (w === null || typeof w !== 'object' || w.welcome !== PROTOCOL) return fail('the peer answered the hello with something else than a welcome');
        const input: ProofInput = { serverNonce, clientNonce, from: this.opts.id, to: peer.id };
        if (this.opts.token !== undefined && !proofMatches(this.opts.token, 'server', input, w.proof)) return fail('the peer could not prove the cluster token');
        clearTimeout(deadline);
        peer.connected = true;
        peer.refusalWarned = null;
        peer.proven = { host, port };
        peer.lastError = undefined;
        peer.backoffMs = this.minMs;
        if (peer.reportedDown) this.opts.log.info({ event: 'raft_peer_reachable', peer: peer.id }, `raft peer ${peer.id} reachable again`);
        peer.reportedDown = false;
        this.opts.onPeerWelcomed?.(peer.id);
        return;
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= err.code ?? err.message;
    });
    s.on('close', () => {
      clearTimeout(deadline);
      // This node closed it (stopping, or the peer removed or moved: dropPeer): nothing
      // to report, and no reconnect (the peer's replacement, if any, has its own).
      if (this.closed || (peer.socket !== s && this.peers.get(peer.id) !== peer)) return;
      const authenticated = peer.connected && peer.socket === s;
      if (peer.socket === s) peer.lastError = failure ?? 'connection closed';
      if (!peer.reportedDown) {
        if ((serverNonce !== null || tlsUp) && !authenticated && !joining) {
          // The peer took the connection, then dropped it during the handshake: it
          // refused this node's hello (or, with TLS 1.3, where the server checks the
          // client certificate after the client considers the handshake done, its
          // certificate), or this node refused its welcome.
          const at = `${peer.dialled.host}:${peer.dialled.port}`;
          this.opts.log.warn(
            { peer: peer.id, address: at, why: failure ?? 'closed by the peer' },
            `raft peer ${peer.id} at ${at} refused the handshake (${failure ?? 'closed by the peer'}): check that both use the same --cluster-token, certificates from the same --peer-ca naming their ids, and that ${at} is ${peer.id}'s address (--peers); the peer's log says why`,
          );
        } else if (!joining && failure !== null && this.clientContext !== null && !/^E[A-Z]+$/.test(failure)) {
          this.opts.log.warn({ peer: peer.id, why: failure }, `raft peer ${peer.id}: TLS handshake failed: ${failure}`);
        } else {
          // The same level as "reachable again": an operator reading at info sees both
          // ends of every outage, and one line each, however long it lasts.
          this.opts.log.info(
            { event: 'raft_peer_unreachable', peer: peer.id, address: `${peer.dialled.host}:${peer.dialled.port}`, why: failure ?? 'closed', wasConnected: authenticated },
            authenticated ? `raft peer ${peer.id} unreachable (${failure ?? 'connection closed'})` : `raft peer ${peer.id} not reachable yet (${failure ?? 'connection closed'})`,
          );
        }
        peer.reportedDown = true;
      }
      if (peer.socket === s) {
        peer.socket = null;
        peer.connected = false;
        if (!authenticated) peer.rotate();
        this.scheduleReconnect(peer);
        if (authenticated && !this.closed) this.opts.onPeerClosed?.(peer.id);
      }
    });
  }

  /**
   * A peer refused this node for who it is. The first refusal (or one for another
   * reason) is a warning; the same one on every retry after it, about once a second,
   * would flood the log: at debug until REFUSAL_WARN_MS has passed, then warned again.
   */
  private logRefusal(peer: Peer, refusal: { code: string; message: string }): void {
    const now = Date.now();
    const last = peer.refusalWarned;
    const entry = { peer: peer.id, code: refusal.code, why: refusal.message };
    const message = `raft peer ${peer.id} refused this node: ${refusal.message}`;
    if (last !== null && last.code === refusal.code && now - last.at < REFUSAL_WARN_MS) {
      this.opts.log.debug(entry, message);
      return;
    }
    peer.refusalWarned = { code: refusal.code, at: now };
    this.opts.log.warn(entry, message);
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

  private accept(raw: net.Socket): void {
    raw.on('error', () => undefined);
    if (this.closed) {
      raw.destroy();
      return;
    }
    const source = sourceOf(raw.remoteAddress);
    const remote = `${raw.remoteAddress}:${raw.remotePort}`;
    const admission = this.pending.admit(source);
    if (admission !== 'admitted') {
      raw.destroy();
      this.refusals.note(admission, source, { remote, why: admission === 'too_many_pending' ? 'too many connections waiting to authenticate' : `too many connections waiting to authenticate from ${source}` });
      return;
    }
    this.inbound.add(raw);
    let released = false;
    const tlsKey = `${raw.remoteAddress}|${raw.remotePort}`;
    const pending: Pending = {
      source,
      remote,
      refused: false,
      deadline: setTimeout(() => this.refuse(raw, pending, new Refusal('hello_timeout', 'no hello in time')), this.helloMs),
      release: () => {
        if (released) return;
        released = true;
        clearTimeout(pending.deadline);
        this.pending.release(source);
      },
    };
    pending.deadline.unref();
    raw.on('close', () => {
      pending.release();
      this.inbound.delete(raw);
      if (this.inTlsHandshake.get(tlsKey) === pending) {
        this.inTlsHandshake.delete(tlsKey);
        if (!pending.refused) this.closedInTlsHandshake(pending);
      }
    });
    if (this.tlsServer === null) {
      raw.setNoDelay(true);
      this.handshake(raw, pending);
      return;
    }
    this.inTlsHandshake.set(tlsKey, pending);
    this.tlsServer.emit('connection', raw);
  }

  /** A TLS handshake completed with a client certificate the CA vouches for. */
  private secured(s: tls.TLSSocket): void {
    const key = `${s.remoteAddress}|${s.remotePort}`;
    const pending = this.inTlsHandshake.get(key);
    this.inTlsHandshake.delete(key);
    if (pending === undefined || this.closed) {
      s.destroy();
      return;
    }
    s.setNoDelay(true);
    this.handshake(s, pending);
  }

  /**
   * The TLS layer failed a handshake. A client without a certificate fails while its socket
   * is alive; one whose certificate did not verify (expired, another CA) is reported only
   * after its socket closed, when its address is gone: that report goes to the oldest
   * connection that closed in its handshake a moment ago (closedInTlsHandshake).
   */
  private tlsFailed(err: NodeJS.ErrnoException, s: tls.TLSSocket): void {
    const why = s.authorizationError !== undefined && s.authorizationError !== null ? `TLS: client certificate refused: ${String(s.authorizationError)}` : `TLS: ${err.code ?? err.message}`;
    s.destroy();
    const key = `${s.remoteAddress}|${s.remotePort}`;
    const alive = s.remoteAddress === undefined ? undefined : this.inTlsHandshake.get(key);
    const pending = alive ?? this.tlsClosed.shift();
    if (pending !== undefined) this.refuse(null, pending, new Refusal('tls', why));
  }

  private closedInTlsHandshake(pending: Pending): void {
    this.tlsClosed.push(pending);
    if (this.tlsClosed.length > 1) return;
    setImmediate(() => {
      const left = this.tlsClosed;
      this.tlsClosed = [];
      for (const p of left) this.refuse(null, p, new Refusal('tls', 'closed during the TLS handshake'));
    });
  }

  /** Refuses an inbound connection; `socket` null when it is already gone. */
  private refuse(socket: net.Socket | null, pending: Pending, refusal: Refusal, peer: NodeId | null = null): void {
    pending.release();
    socket?.destroy();
    if (pending.refused) return;
    pending.refused = true;
    this.refusals.note(refusal.reason, pending.source, { remote: pending.remote, ...(peer === null ? {} : { peer }), why: refusal.why });
  }

  private handshake(socket: net.Socket, pending: Pending): void {
    const decoder = new FrameDecoder(PRE_AUTH_MAX_FRAME_BYTES);
    const serverNonce = newNonce();
    let from: NodeId | null = null;
    let peerHello: PeerHello | null = null;
    let admitted = false;
    socket.write(encodeFrame({ challenge: PROTOCOL, nonce: serverNonce }));
    socket.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.refuse(socket, pending, new Refusal(from === null ? 'bad_hello' : 'invalid_message', err instanceof FrameError ? err.message : 'unreadable frame'), from);
        return;
      }
      for (const f of frames) {
        if (socket.destroyed) return;
        if (from === null) {
          const refusal = this.checkHello(f) ?? this.authenticate(f as Hello, socket, serverNonce);
          if (refusal !== undefined) {
            this.refuse(socket, pending, refusal);
            return;
          }
          const hello = f as Hello;
          from = hello.from;
          pending.release();
          peerHello = { from, remote: pending.remote, ...identityFields(hello) };
          // The peer sends nothing more before the welcome; the welcome waits for the
          // admission (which may first record the peer's incarnation, synced).
          const verdict = this.opts.admit?.(peerHello);
          const welcome = (): void => {
            admitted = this.welcome(socket, decoder, serverNonce, hello);
          };
          if (verdict instanceof Promise) {
            verdict.then(
              (v) => (v === undefined ? welcome() : this.refuseIdentity(socket, pending, v, hello.from)),
              (err: unknown) => this.refuse(socket, pending, new Refusal('admission_failed', `admission failed: ${(err as Error).message}`), hello.from),
            );
          } else if (verdict === undefined) {
            welcome();
          } else {
            this.refuseIdentity(socket, pending, verdict, hello.from);
          }
          continue;
        }
        if (!admitted) {
          // A peer speaks only once welcomed: its messages must not count before its
          // incarnation is recorded.
          this.refuse(socket, pending, new Refusal('invalid_message', `${from} sent a frame before its welcome`), from);
          return;
        }
        if (f !== null && typeof f === 'object' && typeof (f as { ctl?: unknown }).ctl === 'string') {
          if (peerHello !== null) this.opts.onControl?.(from, f as ControlFrame, peerHello);
          continue;
        }
        const m = validateMessage(f);
        if (m instanceof InvalidMessage) {
          this.refuse(socket, pending, new Refusal('invalid_message', `invalid message: ${m.message}`), from);
          return;
        }
        if (m.from !== from || m.to !== this.opts.id) {
          this.refuse(socket, pending, new Refusal('invalid_message', `message from ${m.from} to ${m.to} on the connection of ${from}`), from);
          return;
        }
        this.lastHeard.set(from, performance.now());
        this.opts.onMessage(m);
      }
    });
  }

  /** The hello is authenticated and admitted: welcome the peer, its connection replaces an older one. */
  private welcome(socket: net.Socket, decoder: FrameDecoder, serverNonce: string, hello: Hello): boolean {
    if (socket.destroyed || this.closed) return false;
    const from = hello.from;
    decoder.limit = MAX_FRAME_BYTES;
    const input: ProofInput = { serverNonce, clientNonce: hello.nonce, from, to: this.opts.id };
    socket.write(encodeFrame({ welcome: PROTOCOL, proof: this.opts.token === undefined ? '' : makeProof(this.opts.token, 'server', input) }));
    // One inbound connection per peer: a reconnect replaces the connection it left.
    const older = this.inboundById.get(from);
    this.inboundById.set(from, socket);
    if (older !== undefined && older !== socket) older.destroy();
    // The peer is up (it just proved it): an outbound connection waiting out its backoff
    // (up to reconnectMaxMs, grown while the peer was down) is made now. Otherwise a
    // member that restarted could not hear this node for up to a second — the second in
    // which, if the leader dies, the two of them must elect a new one.
    const peer = this.peers.get(from);
    if (peer !== undefined && peer.socket === null && peer.timer !== null) {
      clearTimeout(peer.timer);
      peer.timer = null;
      peer.backoffMs = this.minMs;
      this.connect(peer);
    }
    socket.once('close', () => {
      if (this.inboundById.get(from) !== socket) return;
      this.inboundById.delete(from);
      if (!this.closed) this.opts.onPeerClosed?.(from);
    });
    return true;
  }

  /** Refuses an authenticated peer for who it is: it is told why. */
  private refuseIdentity(socket: net.Socket, pending: Pending, refusal: IdentityRefusal, from: NodeId): void {
    pending.release();
    if (!pending.refused) {
      pending.refused = true;
      // Counted like any refusal, logged at debug: see NOT_READY.
      if (refusal.code === NOT_READY) {
        this.refusals.count(refusal.code);
        this.opts.log.debug({ event: 'raft_connection_refused', reason: refusal.code, peer: from, remote: pending.remote }, `${from} connected before this node knows the cluster's configuration (joining): refused for now`);
      } else {
        this.refusals.note(refusal.code, pending.source, { remote: pending.remote, peer: from, why: refusal.message });
      }
    }
    endWithRefusal(socket, refusal);
  }

  /** Whether the hello is well-formed and meant for this node (membership: who may say hello). */
  private checkHello(f: unknown): Refusal | undefined {
    if (f === null || typeof f !== 'object') return new Refusal('bad_hello', 'hello is not an object');
    const h = f as Partial<Hello>;
    if (h.hello !== PROTOCOL) return new Refusal('bad_hello', `unknown protocol ${JSON.stringify(h.hello)?.slice(0, 40)}`);
    if (h.to !== this.opts.id) return new Refusal('bad_hello', `hello addressed to ${String(h.to).slice(0, 64)}, this node is ${this.opts.id}`);
    if (typeof h.from !== 'string' || h.from.length === 0 || h.from.length > 256) return new Refusal('bad_hello', 'hello without a sender id');
    if (!isNonce(h.nonce)) return new Refusal('bad_hello', 'hello without a nonce');
    return undefined;
  }

  /** Whether the sender proved what it claims: the cluster token, and with TLS its id in its certificate. */
  private authenticate(hello: Hello, socket: net.Socket, serverNonce: string): Refusal | undefined {
    const token = this.opts.token;
    if (token !== undefined && !proofMatches(token, 'client', { serverNonce, clientNonce: hello.nonce, from: hello.from, to: this.opts.id }, hello.proof)) {
      return new Refusal('bad_proof', `${hello.from.slice(0, 64)} did not prove the cluster token`);
    }
    if (socket instanceof tls.TLSSocket) {
      const named = certificateNodeId(socket.getPeerX509Certificate());
      if ('why' in named) return new Refusal('certificate_id', `hello from ${hello.from.slice(0, 64)}: ${named.why}`);
      if (named.id !== hello.from) return new Refusal('certificate_id', `hello from ${hello.from.slice(0, 64)} over the certificate of ${named.id}`);
    }
    return undefined;
  }
}

const IDENTITY_TEXT = /^[A-Za-z0-9_-]{1,64}$/;
/** A host:port as member records hold it (checked again, fully, before it is used). */
const ADDRESS_TEXT = /^[A-Za-z0-9.:%[\]_-]{3,262}$/;

/** The identity fields of a hello, each kept only when well-formed. */
function identityFields(h: HelloIdentity | undefined): HelloIdentity {
  if (h === undefined) return {};
  const ok = (v: unknown): v is string => typeof v === 'string' && IDENTITY_TEXT.test(v);
  const startOf = (x: unknown): { n: number; id: string } | undefined => {
    const v = x as { n?: unknown; id?: unknown } | null | undefined;
    return v !== undefined && v !== null && typeof v === 'object' && Number.isSafeInteger(v.n) && (v.n as number) >= 0 && ok(v.id) ? { n: v.n as number, id: v.id } : undefined;
  };
  const e = h.expect as { incarnation?: unknown; index?: unknown; start?: unknown } | undefined;
  const expectStart = e === undefined || e === null ? undefined : startOf(e.start);
  const expect =
    e !== undefined && e !== null && typeof e === 'object' && ok(e.incarnation) && Number.isSafeInteger(e.index) && (e.index as number) >= 0
      ? { incarnation: e.incarnation, index: e.index as number, ...(expectStart === undefined ? {} : { start: expectStart }) }
      : undefined;
  const start = startOf(h.start);
  return {
    ...(ok(h.cluster) ? { cluster: h.cluster } : {}),
    ...(ok(h.incarnation) ? { incarnation: h.incarnation } : {}),
    ...(expect === undefined ? {} : { expect }),
    ...(start === undefined ? {} : { start }),
    ...(ok(h.bootstrap) ? { bootstrap: h.bootstrap } : {}),
    ...(typeof h.raft === 'string' && ADDRESS_TEXT.test(h.raft) ? { raft: h.raft } : {}),
  };
}

/** Sends the refusal frame and closes; a peer that does not close its side is cut shortly after. */
function endWithRefusal(socket: net.Socket, refusal: IdentityRefusal): void {
  if (socket.destroyed) return;
  socket.end(
    encodeFrame({
      refused: refusal.code,
      message: refusal.message.slice(0, 1000),
      ...(refusal.index === undefined ? {} : { index: refusal.index }),
      ...(refusal.cluster === undefined ? {} : { cluster: refusal.cluster }),
      ...(refusal.expect === undefined ? {} : { expect: refusal.expect }),
    }),
  );
  // Nothing the peer sends from now on is read.
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function parseRefusal(f: unknown): IdentityRefusal | undefined {
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
