// The admin API against web pages. A node without an admin token takes writes from
// anyone who can reach its (loopback) admin address — and a browser on the same host
// can reach it on behalf of any page it shows:
//
// - Cross-site requests (CSRF). A page may send a "simple" request to another origin
//   without asking first: `fetch('http://127.0.0.1:8687/servers', {method: 'POST',
//   mode: 'no-cors', headers: {'content-type': 'application/x-www-form-urlencoded'},
//   body: '{"ip":…,"port":…}'})` reaches the API with a body it accepts (the form type
//   is taken because `curl -d` sends it). The page cannot read the answer, but the write
//   is done: its origin joins the pool. Browsers say where a request comes from:
//   `Sec-Fetch-Site` (all current ones) and `Origin` (on every POST, PUT, PATCH,
//   DELETE). A write whose `Sec-Fetch-Site` is not `same-origin` or `none` (typed by
//   the user), or whose `Origin` is not this API's own, is refused: 403
//   CROSS_SITE_REQUEST. Command-line clients (curl, the weldr CLI, scripts on undici)
//   send neither field and are not affected.
// - DNS rebinding. A page's own host name can be made to resolve to 127.0.0.1 after it
//   loaded; the browser then takes the API for the page's origin and lets it read and
//   write freely (same origin: no field above gives it away). What does give it away is
//   `Host`: the page's name, where every legitimate client of a loopback API names an
//   address or `localhost`. Without a token (the only case in which the API is open,
//   and then only on loopback), a request whose `Host` is not an IP address, `localhost`
//   or a name under `.localhost` is refused: 421 MISDIRECTED_REQUEST. With a token (or
//   client certificates) names are accepted — an admin API off loopback is reached by
//   name — and the page has no credential to send. Over HTTPS too: a rebound name does
//   not match the API's certificate, so the browser never gets as far as a request.
//
// The probes (`/health`, `/ready`, `/serving`) stay open to every Host: they change
// nothing and tell little, and load balancers call them by any name.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface BrowserGuardOptions {
  /** The API needs a credential for writes (a token, or client certificates): any Host name is accepted. */
  readonly authenticated: boolean;
  /** 'https' when the listener speaks TLS: an Origin must use the same scheme, and any Host name is accepted (a rebound name fails the certificate check). */
  readonly scheme: 'http' | 'https';
  /** Paths answered whatever Host says (probes). */
  readonly openPaths: ReadonlySet<string>;
  /** Refusals are logged at warn level, at most one line per 10 s (with the count since the last). */
  readonly log?: { warn(obj: object, msg: string): void };
  /** Injected clock for the log's pacing (ms). */
  readonly now?: () => number;
}

const LOG_EVERY_MS = 10_000;

/** Why a request is refused, or undefined when it may go on. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The check alone (exported for tests): undefined, or why `req` is refused. */
export function browserRefusal(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, opts: BrowserGuardOptions): Refusal | undefined {
  const host = req.headers.host;
  if (!opts.authenticated && opts.scheme === 'http' && host !== undefined && !loopbackName(host)) {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!opts.openPaths.has(path)) {
      return {
        status: 421,
        code: 'MISDIRECTED_REQUEST',
        message: `Host "${printable(host)}" is not an address of this admin API: without an admin token it answers only requests for an IP address or localhost (a name resolved to it by someone else is a DNS-rebinding attempt); use the address, or configure --admin-token`,
      };
    }
  }
  if (READS.has(req.method ?? '')) return undefined;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return crossSite(`Sec-Fetch-Site: ${printable(site)}`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, host, opts.scheme)) {
    return crossSite(`Origin: ${printable(origin)}`);
  }
  return undefined;
}

/** Wraps an admin request handler with browserRefusal. */
export function browserGuard(
  next: (req: IncomingMessage, res: ServerResponse) => void,
  opts: BrowserGuardOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const now = opts.now ?? Date.now;
  let lastLogged = -Infinity;
  let unlogged = 0;
  return (req, res) => {
    const refusal = browserRefusal(req, opts);
    if (refusal === undefined) {
      next(req, res);
      return;
    }
    unlogged++;
    if (opts.log !== undefined && now() - lastLogged >= LOG_EVERY_MS) {
      lastLogged = now();
      opts.log.warn(
        { event: 'admin_browser_refused', code: refusal.code, method: req.method, path: (req.url ?? '/').split('?')[0]!.slice(0, 200), remote: req.socket?.remoteAddress, refused: unlogged },
        `admin request refused (${refusal.code}): a web page's request, or a name that is not this API's; ${unlogged} refused since the last such line`,
      );
      unlogged = 0;
    }
    const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
    // The body of a refused write is not read: the connection does not carry another request.
    res.shouldKeepAlive = false;
    res.writeHead(refusal.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  };
}

function crossSite(what: string): Refusal {
  return {
    status: 403,
    code: 'CROSS_SITE_REQUEST',
    message: `a write from a web page of another origin (${what}) is refused: the admin API takes writes from its own status page, command-line clients and scripts only`,
  };
}

/** An IP literal (with or without port, IPv6 in brackets), localhost or a name under .localhost (RFC 6761). */
function loopbackName(hostHeader: string): boolean {
  const host = hostOnly(hostHeader);
  if (host === undefined) return false;
  if (isIP(host) !== 0) return true;
  const name = (host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost');
}

/** The host part of a Host field value, brackets removed; undefined when malformed. */
function hostOnly(value: string): string | undefined {
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0) return undefined;
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return value.slice(1, end);
  }
  const colon = value.indexOf(':');
  if (colon < 0) return value;
  if (!/^\d{1,5}$/.test(value.slice(colon + 1))) return undefined;
  return value.slice(0, colon);
}

/** The Origin names this API: same scheme, host and port as the request's Host. */
function sameOrigin(origin: string, host: string | undefined, scheme: 'http' | 'https'): boolean {
  if (host === undefined || origin === 'null') return false;
  try {
    const from = new URL(origin);
    const self = new URL(`${scheme}://${host}`);
    return from.protocol === self.protocol && from.host === self.host;
  } catch {
    return false;
  }
}

/** A header value as it may appear in a message: printable ASCII, at most 100 characters. */
function printable(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}…` : clean;
}
