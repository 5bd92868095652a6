// Request handlers of `weldr test-server`. Plain node:http, one small function per
// endpoint; bodies are streamed with backpressure and every timer is cleared when the
// client goes away.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PATTERN_CHUNK_BYTES, chunkedParts, fillChunk, largeBodySlice } from './body-patterns.js';

export const DEFAULT_LARGE_BYTES = 4 * 1024 * 1024;
export const MAX_BODY_BYTES = 1024 * 1024 * 1024;
export const MAX_DELAY_MS = 60_000;
export const MAX_ECHO_BYTES = 16 * 1024 * 1024;
export const MAX_CHUNKS = 1000;

/** Mutable state shared by the handlers of one server. */
export interface RouteState {
  /** Set once the port is known when no id was given. */
  id: string;
  healthy: boolean;
  total: number;
  connections: number;
  readonly paths: Map<string, number>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, state: RouteState, path: string, query: URLSearchParams) => void;

function text(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  const buf = Buffer.from(body);
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(buf.length),
    ...extra,
  });
  res.end(buf);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const buf = Buffer.from(JSON.stringify(value) + '\n');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(buf.length) });
  res.end(buf);
}

/** Parses a non-negative integer path/query parameter; undefined when malformed. */
function intParam(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^[0-9]{1,16}$/.test(value)) return undefined;
  return Number(value);
}

/** Writes `total` bytes produced by `chunkAt`, waiting for 'drain' whenever the socket is full. */
function streamBody(res: ServerResponse, total: number, chunkAt: (offset: number, length: number) => Buffer): void {
  let offset = 0;
  const pump = (): void => {
    while (offset < total) {
      if (res.destroyed) return;
      const n = Math.min(PATTERN_CHUNK_BYTES, total - offset);
      const chunk = chunkAt(offset, n);
      offset += n;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function sizedStream(
  req: IncomingMessage,
  res: ServerResponse,
  size: number | undefined,
  contentType: string,
  chunkAt: (offset: number, length: number) => Buffer,
): void {
  if (size === undefined || size > MAX_BODY_BYTES) {
    text(res, 400, `size must be an integer in [0, ${MAX_BODY_BYTES}]\n`);
    return;
  }
  res.writeHead(200, { 'content-type': contentType, 'content-length': String(size) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  streamBody(res, size, chunkAt);
}

const hello: Handler = (_req, res, state) => text(res, 200, `hello from ${state.id}\n`);

const large: Handler = (req, res, _state, _path, query) => {
  const size = query.has('size') ? intParam(query.get('size')) : DEFAULT_LARGE_BYTES;
  sizedStream(req, res, size, 'text/plain; charset=us-ascii', largeBodySlice);
};

const bytes: Handler = (req, res, _state, path) => {
  const n = intParam(path.slice('/bytes/'.length));
  sizedStream(req, res, n, 'application/octet-stream', (_offset, length) =>
    length === fillChunk.length ? fillChunk : fillChunk.subarray(0, length),
  );
};

const chunked: Handler = (req, res, _state, _path, query) => {
  const count = query.has('n') ? intParam(query.get('n')) : 5;
  if (count === undefined || count < 1 || count > MAX_CHUNKS) {
    text(res, 400, `n must be an integer in [1, ${MAX_CHUNKS}]\n`);
    return;
  }
  // No Content-Length: node frames the body with Transfer-Encoding: chunked, one chunk per write.
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const parts = chunkedParts(count);
  let i = 0;
  const next = (): void => {
    if (res.destroyed) return;
    if (i === parts.length) {
      res.end();
      return;
    }
    res.write(parts[i++]);
    setImmediate(next); // separate writes on separate ticks so they are not coalesced
  };
  next();
};

const echo: Handler = (req, res, state, path, query) => {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_ECHO_BYTES) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) {
      text(res, 413, `echo bodies are limited to ${MAX_ECHO_BYTES} bytes\n`);
      return;
    }
    const body = Buffer.concat(chunks);
    const utf8 = isUtf8(body);
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const trailers: [string, string][] = [];
    for (let i = 0; i < req.rawTrailers.length; i += 2) trailers.push([req.rawTrailers[i]!, req.rawTrailers[i + 1]!]);
    json(res, 200, {
      id: state.id,
      method: req.method,
      url: req.url,
      path,
      query: Object.fromEntries(query),
      httpVersion: req.httpVersion,
      headers,
      trailers,
      body: body.toString(utf8 ? 'utf8' : 'base64'),
      bodyEncoding: utf8 ? 'utf8' : 'base64',
      bodyLength: body.length,
      remoteAddress: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
    });
  });
};

const status: Handler = (_req, res, _state, path) => {
  const code = intParam(path.slice('/status/'.length));
  if (code === undefined || code < 200 || code > 599) {
    text(res, 400, 'status must be an integer in [200, 599]\n');
    return;
  }
  if (code === 204 || code === 304) {
    res.writeHead(code);
    res.end();
    return;
  }
  text(res, code, `status ${code}\n`);
};

const delay: Handler = (_req, res, state, path) => {
  const ms = intParam(path.slice('/delay/'.length));
  if (ms === undefined || ms > MAX_DELAY_MS) {
    text(res, 400, `delay must be an integer in [0, ${MAX_DELAY_MS}] ms\n`);
    return;
  }
  const timer = setTimeout(() => text(res, 200, `delayed ${ms} ms by ${state.id}\n`), ms);
  res.on('close', () => clearTimeout(timer));
};

const health: Handler = (_req, res, state) =>
  state.healthy ? text(res, 200, 'ok\n') : text(res, 503, 'failing\n');

function setHealth(value: boolean): Handler {
  return (req, res, state) => {
    if (req.method !== 'POST') {
      text(res, 405, 'use POST\n', { allow: 'POST' });
      return;
    }
    state.healthy = value;
    text(res, 200, value ? 'ok\n' : 'failing\n');
  };
}

const requests: Handler = (req, res, state) => {
  if (req.method === 'POST') {
    state.total = 0;
    state.connections = 0;
    state.paths.clear();
  }
  json(res, 200, { id: state.id, total: state.total, connections: state.connections, paths: Object.fromEntries(state.paths) });
};

/** Drops the connection without answering: the proxy sees a reset. */
const reset: Handler = (req) => {
  req.socket.destroy();
};

/** Promises 1000 bytes, sends 100, then drops the connection. */
const truncate: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
  res.write('x'.repeat(100), () => req.socket.destroy());
};

/** Sets every query parameter as a response header, for hop-by-hop and header-passing tests. */
const responseHeaders: Handler = (_req, res, _state, _path, query) => {
  try {
    for (const [name, value] of query) res.appendHeader(name, value);
  } catch (err) {
    res.removeHeader('connection');
    text(res, 400, `bad header: ${(err as Error).message}\n`);
    return;
  }
  text(res, 200, 'headers set\n');
};

const wsWithoutUpgrade: Handler = (_req, res) => text(res, 426, 'this endpoint speaks WebSocket\n', { upgrade: 'websocket' });

const exact = new Map<string, Handler>([
  ['/', hello],
  ['/large', large],
  ['/chunked', chunked],
  ['/echo', echo],
  ['/health', health],
  ['/health/fail', setHealth(false)],
  ['/health/ok', setHealth(true)],
  ['/__requests', requests],
  ['/reset', reset],
  ['/truncate', truncate],
  ['/ws', wsWithoutUpgrade],
  ['/response-headers', responseHeaders],
]);

const prefixed: [string, Handler][] = [
  ['/bytes/', bytes],
  ['/status/', status],
  ['/delay/', delay],
  ['/echo/', echo],
];

/** The request path without the query; absolute-form targets are reduced to their path. */
export function splitTarget(url: string): { path: string; query: URLSearchParams } {
  let target = url;
  if (!target.startsWith('/')) {
    try {
      const parsed = new URL(target);
      target = parsed.pathname + parsed.search;
    } catch {
      return { path: target, query: new URLSearchParams() };
    }
  }
  const q = target.indexOf('?');
  return q < 0
    ? { path: target, query: new URLSearchParams() }
    : { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

export function route(req: IncomingMessage, res: ServerResponse, state: RouteState): void {
  const { path, query } = splitTarget(req.url ?? '/');
  if (path !== '/__requests') {
    state.total++;
    state.paths.set(path, (state.paths.get(path) ?? 0) + 1);
  }
  res.setHeader('x-server-id', state.id);
  const handler = exact.get(path) ?? prefixed.find(([prefix]) => path.startsWith(prefix))?.[1];
  if (handler === undefined) {
    text(res, 404, `no route for ${path}\n`);
    return;
  }
  handler(req, res, state, path, query);
}
