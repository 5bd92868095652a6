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

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const FORWARDED_BY = 'x-weldr-forwarded-by';
const CLIENT_ADDRESS = 'x-weldr-client-address';
// Hop-by-hop fields (RFC 9110 §7.6.1) and those undici sets itself.
const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length', 'expect']);

export interface ForwardTarget {
  /** Null when this node is the leader or no leader is known: handle locally. */
  leaderAdminUrl(): { leaderId: string; url: string | undefined } | null;
}

export interface AdminForwarderOptions {
  readonly nodeId: string;
  readonly target: ForwardTarget;
  readonly timeoutMs: number;
  /** How long to wait for the leader's admin address to be recorded. Default 2000 ms. */
  readonly addressWaitMs?: number;
  readonly log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * 'https' when the members' admin API speaks HTTPS (--admin-cert): every member is
   * configured alike, so the leader's does too. Default 'http'.
   */
  readonly scheme?: 'http' | 'https';
  /** The dispatcher for relays (HTTPS: the CA to verify the leader with, and this node's client certificate). */
  readonly dispatcher?: () => Dispatcher;
}

/** Wraps an admin request listener: writes on a follower are relayed to the leader. */
export function forwardingListener(
  local: (req: IncomingMessage, res: ServerResponse) => void,
  opts: AdminForwarderOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!WRITES.has(req.method ?? '') || req.headers[FORWARDED_BY] !== undefined || isNodeLocal(req.url)) return local(req, res);
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
        await new Promise((r) => setTimeout(r, 20));
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

/** Fault injection (drills) acts on the node that receives it, never on the leader. */
function isNodeLocal(url: string | undefined): boolean {
  return url !== undefined && (url === '/faults' || url.startsWith('/faults/') || url.startsWith('/faults?'));
}

async function relay(req: IncomingMessage, res: ServerResponse, leaderId: string, base: string, opts: AdminForwarderOptions): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !DROP.has(name)) headers[name] = value;
  }
  headers[FORWARDED_BY] = opts.nodeId;
  // For the leader's audit log: who asked, as this node saw it (never the client's own claim).
  headers[CLIENT_ADDRESS] = req.socket.remoteAddress ?? 'unknown';
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
    if (!res.headersSent) {
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
    } else {
      res.destroy();
    }
  }
}

function notLeader(res: ServerResponse, leaderId: string, message: string): void {
  send(res, 503, { error: { code: 'NOT_LEADER', message, leaderId } });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'retry-after': '1' });
  res.end(text);
}
