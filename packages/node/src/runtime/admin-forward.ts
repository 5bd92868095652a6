// Admin writes on a follower go to the leader: the request is relayed as it came
// (method, path, headers, body) to the leader's admin API and the leader's answer is
// relayed back, so a client may write through any node. Reads are not relayed: the
// store serves them linearizably on any node (ReadIndex through the leader).
//
// A relayed request carries X-Weldr-Forwarded-By; a node never relays it again (a
// leader that just lost its leadership answers 503 NOT_LEADER instead of bouncing it).
//
// The leader's admin address comes from its replicated member record (never from what
// a peer said in a hello): a forged hello cannot redirect the relay, and with it the
// client's Authorization header.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { NODE_ID } from '../config/values.js';
import { RELAY_PROOF_HEADER, signRelay, verifyRelay } from './relay-proof.js';

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const FORWARDED_BY = 'x-weldr-forwarded-by';
const CLIENT_ADDRESS = 'x-weldr-client-address';
// Hop-by-hop fields (RFC 9110 §7.6.1), those undici sets itself, and what a browser says
// about the page a request came from: this node checked those (browser-guard.ts), and
// they name this node's origin, not the leader's.
const DROP = new Set([RELAY_PROOF_HEADER, 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length', 'expect', 'origin', 'referer', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-user']);

export interface ForwardTarget {
  /** Null when this node is the leader or no leader is known: handle locally. */
  leaderAdminUrl(): { leaderId: string; url: string | undefined } | null;
  /**
   * Where a write should go now, including the moments when it should go nowhere yet:
   * no leader is known, or this leader is handing its leadership over (it refuses
   * proposals until that ends, thesis §3.10). Without it, writes are never held.
   */
  writeTarget?(): WriteTarget;
  /** This node's own admin URL (its member record): a held write whose body was read comes back here when this node leads. */
  selfAdminUrl?(): string | undefined;
}

export type WriteTarget =
  | { readonly kind: 'local' }
  | { readonly kind: 'relay'; readonly leaderId: string; readonly url: string | undefined }
  | { readonly kind: 'settling' };

export interface AdminForwarderOptions {
  readonly nodeId: string;
  /** The cluster token: signs the relay headers for the leader's audit log (relay-proof.ts). */
  readonly relayKey?: string | undefined;
  readonly target: ForwardTarget;
  readonly timeoutMs: number;
  /** How long to wait for the leader's admin address to be recorded. Default 2000 ms. */
  readonly addressWaitMs?: number;
  /**
   * How long a pool write may wait for a leader that can take it — one known, a
   * transfer finished — before it is answered 503 NOT_LEADER as before. Default 0:
   * never held.
   */
  readonly holdMs?: number;
  readonly log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * 'https' when the members' admin API speaks HTTPS (--admin-cert): every member is
   * configured alike, so the leader's does too. Default 'http'.
   */
  readonly scheme?: 'http' | 'https';
  /** The dispatcher for relays (HTTPS: the CA to verify the leader with, and this node's client certificate). */
  readonly dispatcher?: () => Dispatcher;
}

/**
 * The writes that are held and handed to the next leader: the pool's (servers and
 * settings). Their only refusal that leaves nothing behind is NOT_LEADER — the command
 * was never proposed (refused by the Raft core: no leader, not the leader, a transfer
 * in progress) — so sending it again, to whichever member leads next, cannot apply it
 * twice. Membership and cluster operations keep their own rules (no hold).
 */
const HELD = /^\/(servers|settings)(\/|\?|$)/;
/** A held write's body is kept in memory to be sent again: at most this much (the admin API takes 64 KiB). */
const HELD_BODY_LIMIT = 256 * 1024;
/** How often a held write looks again at who leads (a transfer takes a few ms on a LAN; an election, about one election timeout). */
const HOLD_POLL_MS = 5;

/** Wraps an admin request listener: writes on a follower are relayed to the leader. */
export function forwardingListener(
  local: (req: IncomingMessage, res: ServerResponse) => void,
  opts: AdminForwarderOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!WRITES.has(req.method ?? '') || req.headers[FORWARDED_BY] !== undefined || isNodeLocal(req.url)) return local(req, res);
    if ((opts.holdMs ?? 0) > 0 && opts.target.writeTarget !== undefined && HELD.test(req.url ?? '/')) {
      void heldWrite(req, res, local, opts, Date.now() + opts.holdMs!);
      return;
    }
    const target = opts.target.leaderAdminUrl();
    if (target === null) return local(req, res);
    if (target.url !== undefined) {
      void relay(req, res, target.leaderId, target.url, opts);
      return;
    }
    // A new cluster's leader records its admin address right after its election; give
    // the record a moment to arrive rather than fail the write at once.
    void (async () => {
      const until = Date.now() + (opts.addressWaitMs ?? 2000);
      for (;;) {
        await sleep(20);
        const now = opts.target.leaderAdminUrl();
        if (now === null) return local(req, res);
        if (now.url !== undefined) return relay(req, res, now.leaderId, now.url, opts);
        if (Date.now() > until) {
          notLeader(res, now.leaderId, `this node is not the leader and the member record of ${now.leaderId} holds no admin address yet; retry, or send the write to the leader`);
          return;
        }
      }
    })();
  };
}

/**
 * A pool write held while leadership moves: it waits (until `until`) for a member that
 * can take it, and is taken here or relayed there. If the member that takes it refuses
 * with NOT_LEADER — nothing proposed — or cannot be reached at all, it waits for the
 * next leader and is sent again, with the same body and headers (an Idempotency-Key
 * included). Anything else — an answer, a timeout, a connection lost mid-request — is
 * the client's, as before: the write may have been applied.
 */
async function heldWrite(req: IncomingMessage, res: ServerResponse, local: (req: IncomingMessage, res: ServerResponse) => void, opts: AdminForwarderOptions, until: number): Promise<void> {
  const t = await settled(opts, until);
  if (t.kind !== 'relay' || t.url === undefined) {
    // Taken here (or nothing better before the hold ended: the local answer, as before).
    // A NOT_LEADER answer here — the leadership moved between this check and the
    // proposal — is caught before it leaves and the write goes to the next leader.
    localWithHandOver(req, res, local, opts, until);
    return;
  }
  const body = await readBody(req);
  if (body === null) {
    send(res, 413, { error: { code: 'PAYLOAD_TOO_LARGE', message: `the request body is over ${HELD_BODY_LIMIT} bytes` } });
    return;
  }
  await relayHeld(req, res, body, opts, until, t);
}

/** Waits until a write can go somewhere: this node leading (and not handing over), or a leader with a known admin address. */
async function settled(opts: AdminForwarderOptions, until: number, refusedBy?: string): Promise<WriteTarget> {
  const changedFrom = (t: WriteTarget): boolean => refusedBy === undefined || (t.kind === 'relay' ? t.leaderId : t.kind === 'local' ? opts.nodeId : null) !== refusedBy;
  // After a refusal by `refusedBy`, look for another leader for a while, then try it again anyway (its transfer may have been abandoned).
  const retrySameAfter = Date.now() + 10 * HOLD_POLL_MS;
  for (;;) {
    const t = opts.target.writeTarget!();
    const ready = t.kind === 'local' || (t.kind === 'relay' && t.url !== undefined);
    if (ready && (changedFrom(t) || Date.now() >= retrySameAfter)) return t;
    if (Date.now() >= until) return t;
    await sleep(HOLD_POLL_MS);
  }
}

/** Relays a buffered write, sending it again to the next leader after a refusal that left nothing behind. */
async function relayHeld(req: IncomingMessage, res: ServerResponse, body: Buffer, opts: AdminForwarderOptions, until: number, first?: WriteTarget): Promise<void> {
  let t = first ?? (await settled(opts, until));
  for (;;) {
    let leaderId: string;
    let url: string | undefined;
    if (t.kind === 'relay') {
      leaderId = t.leaderId;
      url = t.url;
    } else if (t.kind === 'local') {
      // This node leads now, but the body was read: it comes back through our own API.
      leaderId = opts.nodeId;
      url = opts.target.selfAdminUrl?.();
    } else {
      notLeader(res, null, 'no leader is known; retry');
      return;
    }
    if (url === undefined) {
      notLeader(res, leaderId, `the member record of ${leaderId} holds no admin address yet; retry`);
      return;
    }
    const outcome = await relayOnce(req, body, leaderId, url, opts);
    const refused = outcome.kind === 'refused' || (outcome.kind === 'answer' && outcome.status === 503 && isNotLeader(outcome.body));
    if (refused && Date.now() < until) {
      opts.log.debug({ method: req.method, url: req.url, leader: leaderId }, 'held admin write refused by the member that led; waiting for the next leader');
      t = await settled(opts, until, leaderId);
      continue;
    }
    if (outcome.kind === 'answer') {
      outcome.headers['x-weldr-leader'] = leaderId;
      outcome.headers['content-length'] = String(outcome.body.length);
      res.writeHead(outcome.status, outcome.headers);
      res.end(outcome.body);
      return;
    }
    answerRelayFailure(res, leaderId, outcome.err);
    return;
  }
}

type RelayOutcome =
  | { kind: 'answer'; status: number; headers: Record<string, string | string[]>; body: Buffer }
  /** Nothing was sent: the connection was refused. */
  | { kind: 'refused'; err: Error }
  /** Sent, and then the exchange failed: the write may have been applied. */
  | { kind: 'failed'; err: Error };

async function relayOnce(req: IncomingMessage, body: Buffer, leaderId: string, base: string, opts: AdminForwarderOptions): Promise<RelayOutcome> {
  const headers = relayHeaders(req, opts);
  try {
    const url = `${opts.scheme === 'https' ? base.replace(/^http:/, 'https:') : base}${req.url ?? '/'}`;
    const upstream = await request(url, {
      ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher() }),
      method: req.method as 'POST',
      headers,
      body: body.length > 0 || req.headers['content-length'] !== undefined ? body : null,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !DROP.has(name)) out[name] = value;
    }
    const answer = Buffer.from(await upstream.body.arrayBuffer());
    opts.log.debug({ method: req.method, url: req.url, leader: leaderId, status: upstream.statusCode }, 'admin write forwarded to the leader');
    return { kind: 'answer', status: upstream.statusCode, headers: out, body: answer };
  } catch (err) {
    opts.log.warn({ method: req.method, url: req.url, leader: leaderId, err: (err as Error).message }, 'forwarding an admin write to the leader failed');
    return (err as { code?: string }).code === 'ECONNREFUSED' ? { kind: 'refused', err: err as Error } : { kind: 'failed', err: err as Error };
  }
}

function isNotLeader(body: Buffer): boolean {
  try {
    return (JSON.parse(body.toString('utf8')) as { error?: { code?: unknown } }).error?.code === 'NOT_LEADER';
  } catch {
    return false;
  }
}

/**
 * The local handler, with its NOT_LEADER answer caught before it leaves: the body it
 * read is kept (seen as it streams to the handler), and the write goes to the next
 * leader instead. Any other answer goes out unchanged.
 */
function localWithHandOver(req: IncomingMessage, res: ServerResponse, local: (req: IncomingMessage, res: ServerResponse) => void, opts: AdminForwarderOptions, until: number): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const emit = req.emit;
  req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data' && size <= HELD_BODY_LIMIT) {
      const chunk = args[0] as Buffer;
      size += chunk.length;
      chunks.push(chunk);
    }
    return emit.call(this, event, ...args);
  } as typeof req.emit;
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    res.end = end;
    req.emit = emit;
    const chunk = args[0];
    const text = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : null;
    if (res.statusCode === 503 && !res.headersSent && text !== null && isNotLeader(text) && req.complete && size <= HELD_BODY_LIMIT && Date.now() < until) {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.statusCode = 200;
      res.statusMessage = '';
      opts.log.debug({ method: req.method, url: req.url }, 'admin write refused here while the leadership moved; handing it to the next leader');
      void relayHeld(req, res, Buffer.concat(chunks), opts, until);
      return res;
    }
    return (end as (...a: unknown[]) => ServerResponse).apply(res, args);
  } as typeof res.end;
  local(req, res);
}

/** The whole request body (a held write may be sent more than once); null when over the limit. */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= HELD_BODY_LIMIT) chunks.push(chunk);
    });
    req.once('end', () => resolve(size <= HELD_BODY_LIMIT ? Buffer.concat(chunks) : null));
    req.once('error', reject);
  });
}

/** Fault injection (drills) acts on the node that receives it, never on the leader. */
function isNodeLocal(url: string | undefined): boolean {
  return url !== undefined && (url === '/faults' || url.startsWith('/faults/') || url.startsWith('/faults?'));
}

function relayHeaders(req: IncomingMessage, opts: AdminForwarderOptions): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !DROP.has(name)) headers[name] = value;
  }
  headers[FORWARDED_BY] = opts.nodeId;
  // For the leader's audit log: who asked, as this node saw it (never the client's own
  // claim), signed so that the leader can tell it from headers a client made up.
  const client = req.socket.remoteAddress ?? 'unknown';
  headers[CLIENT_ADDRESS] = client;
  if (opts.relayKey !== undefined) {
    headers[RELAY_PROOF_HEADER] = signRelay(opts.relayKey, { via: opts.nodeId, client, method: req.method ?? '', target: req.url ?? '' });
  }
  return headers;
}

/**
 * The leader's side (AdminDeps.relayOrigin): the node and client a relayed write names,
 * if and only if a member signed them (relay-proof.ts); undefined for anything else.
 */
export function relayOriginVerifier(key: string | undefined): (req: { readonly headers: Readonly<Record<string, string | string[] | undefined>>; readonly method?: string | undefined; readonly url?: string | undefined }) => { nodeId: string; client: string } | undefined {
  return (req) => {
    if (key === undefined) return undefined;
    const via = req.headers[FORWARDED_BY];
    const client = req.headers[CLIENT_ADDRESS];
    const proof = req.headers[RELAY_PROOF_HEADER];
    if (typeof via !== 'string' || !NODE_ID.test(via) || typeof client !== 'string' || client === '' || client.length > 128 || typeof proof !== 'string') return undefined;
    return verifyRelay(key, { via, client, method: req.method ?? '', target: req.url ?? '' }, proof) ? { nodeId: via, client } : undefined;
  };
}

async function relay(req: IncomingMessage, res: ServerResponse, leaderId: string, base: string, opts: AdminForwarderOptions): Promise<void> {
  const headers = relayHeaders(req, opts);
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  try {
    const url = `${opts.scheme === 'https' ? base.replace(/^http:/, 'https:') : base}${req.url ?? '/'}`;
    const upstream = await request(url, {
      ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher() }),
      method: req.method as 'POST',
      headers,
      body: hasBody ? req : null,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !DROP.has(name)) out[name] = value;
    }
    out['x-weldr-leader'] = leaderId;
    const body = Buffer.from(await upstream.body.arrayBuffer());
    out['content-length'] = String(body.length);
    res.writeHead(upstream.statusCode, out);
    res.end(body);
    opts.log.debug({ method: req.method, url: req.url, leader: leaderId, status: upstream.statusCode }, 'admin write forwarded to the leader');
  } catch (err) {
    opts.log.warn({ method: req.method, url: req.url, leader: leaderId, err: (err as Error).message }, 'forwarding an admin write to the leader failed');
    answerRelayFailure(res, leaderId, err as Error);
  }
}

function answerRelayFailure(res: ServerResponse, leaderId: string, err: Error): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // The leader may or may not have applied it: say so, as a commit timeout would.
  // Refused, or a certificate that did not verify: nothing was sent.
  const errCode = (err as { code?: string }).code ?? '';
  const tlsFailure = /CERT|SSL|TLS|SELF_SIGNED|ALTNAME/.test(errCode);
  const status = errCode === 'ECONNREFUSED' || tlsFailure ? 503 : 504;
  const code = status === 503 ? 'NOT_LEADER' : 'TIMEOUT';
  const message = tlsFailure
    ? `the leader ${leaderId}'s admin certificate could not be verified (${errCode}); the write was not sent`
    : status === 503
      ? `the leader ${leaderId} could not be reached; retry`
      : `the leader ${leaderId} did not answer in time; the write may still be applied`;
  send(res, status, { error: { code, message, leaderId } });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function notLeader(res: ServerResponse, leaderId: string | null, message: string): void {
  send(res, 503, { error: { code: 'NOT_LEADER', message, ...(leaderId === null ? {} : { leaderId }) } });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'retry-after': '1' });
  res.end(text);
}
