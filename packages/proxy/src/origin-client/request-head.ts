// The request head, built once per request as one latin1 string, with the same bytes
// undici 7 writes (client-h1.js writeH1): the request line, `host` first, then
// `connection`, then the fields weldr passes in order, then the framing field. The
// Content-Length weldr passes (the client's) is not copied: the framing is re-derived
// here from the body, as undici does.

/**
 * Methods whose semantics anticipate content (undici's `expectsPayload`): without a body
 * they are sent with `content-length: 0`, other methods with no framing field at all
 * (RFC 9110 §8.6: a user agent SHOULD NOT send Content-Length without content when the
 * method does not anticipate any).
 */
export function expectsPayload(method: string): boolean {
  switch (method) {
    case 'PUT':
    case 'POST':
    case 'PATCH':
    case 'QUERY':
    case 'PROPFIND':
    case 'PROPPATCH':
      return true;
    default:
      return false;
  }
}

/** Whether `name` is `lower` ignoring ASCII case (same length checked by the caller). */
function same(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** The Content-Length value found by the last `requestHead` call, or null. */
export let headContentLength: string | null = null;

/**
 * `METHOD path HTTP/1.1`, host, connection and the other fields, each line ending in
 * CRLF; without the framing field and the blank line (the caller adds them).
 */
export function requestHead(method: string, path: string, headers: readonly string[], upgrade: string | null, close = false): string {
  let host = '';
  let fields = '';
  headContentLength = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name.length === 4 && same(name, 'host')) {
      host = `host: ${value}\r\n`;
      continue;
    }
    if (name.length === 14 && same(name, 'content-length')) {
      headContentLength = value;
      continue;
    }
    fields += `${name}: ${value}\r\n`;
  }
  const connection = upgrade != null ? `connection: upgrade\r\nupgrade: ${upgrade}\r\n` : close ? 'connection: close\r\n' : 'connection: keep-alive\r\n';
  return `${method} ${path} HTTP/1.1\r\n${host}${connection}${fields}`;
}

/**
 * The origin's `Keep-Alive: timeout=N` in ms (RFC 9112 has no such field; it is the
 * de-facto one of Apache, nginx and node), or null.
 */
export function keepAliveTimeoutMs(value: string): number | null {
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
  return m === null ? null : Number(m[1]) * 1000;
}
