// Raw TCP exchanges for what an HTTP client library will not send: malformed and
// smuggling requests, exact framing, pipelining.
import { connect, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

export interface RawResult {
  /** Everything received, latin1-decoded (bytes map 1:1 to chars). */
  readonly text: string;
  /** True when the server closed the connection (rather than `until` matching or timing out). */
  readonly closedByServer: boolean;
}

/**
 * Writes `data` (string parts are written separately, so a test can split a request
 * across packets) and collects the reply until the server closes, `until` matches, or
 * timeoutMs passes.
 */
export function rawExchange(
  port: number,
  data: string | Buffer | readonly (string | Buffer)[],
  options: { until?: (text: string) => boolean; timeoutMs?: number; tls?: ConnectionOptions } = {},
): Promise<RawResult> {
  const parts = Array.isArray(data) ? data : [data];
  return new Promise((resolve, reject) => {
    // Over TLS (`tls`: the client's options, e.g. the CA), the bytes go inside the session.
    const socket: Socket = options.tls === undefined ? connect(port, '127.0.0.1') : connectTls({ port, host: '127.0.0.1', ...options.tls });
    let text = '';
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closedByServer });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 10_000);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (options.until?.(text)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the reply was read still counts as the server closing.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish(true);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on(options.tls === undefined ? 'connect' : 'secureConnect', () => {
      for (const part of parts) socket.write(part);
    });
  });
}

export interface ParsedResponse {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** Header value by case-insensitive name (first occurrence). */
export function header(res: ParsedResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/**
 * Splits a byte stream into HTTP/1.1 responses (Content-Length and chunked bodies;
 * `bodyless` statuses or HEAD responses have none). Enough for tests, not a parser
 * for untrusted input.
 */
export function parseResponses(text: string, headRequests: readonly boolean[] = []): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
    const headers = lines.slice(1).map((l) => {
      const c = l.indexOf(':');
      return [l.slice(0, c), l.slice(c + 1).trim()] as const;
    });
    const res0 = { status, headers, body: '' };
    let bodyStart = end + 4;
    let body = '';
    const isHead = headRequests[out.length] === true;
    if (!isHead && status !== 204 && status !== 304 && !(status >= 100 && status < 200)) {
      const te = header(res0, 'transfer-encoding');
      const cl = header(res0, 'content-length');
      if (te?.toLowerCase().includes('chunked')) {
        for (;;) {
          const lineEnd = text.indexOf('\r\n', bodyStart);
          if (lineEnd < 0) break;
          const size = parseInt(text.slice(bodyStart, lineEnd), 16);
          bodyStart = lineEnd + 2;
          if (size === 0) {
            const trailerEnd = text.indexOf('\r\n', bodyStart);
            bodyStart = trailerEnd < 0 ? text.length : trailerEnd + 2;
            break;
          }
          body += text.slice(bodyStart, bodyStart + size);
          bodyStart += size + 2;
        }
      } else if (cl !== undefined) {
        body = text.slice(bodyStart, bodyStart + Number(cl));
        bodyStart += Number(cl);
      } else {
        body = text.slice(bodyStart);
        bodyStart = text.length;
      }
    }
    out.push({ status, headers, body });
    at = bodyStart;
  }
  return out;
}
