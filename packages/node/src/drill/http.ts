// The drill's HTTP plumbing: one keep-alive agent for the admin APIs (sampling, writes,
// faults) and one for the proxied traffic, each request bounded in time.
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';

export interface AdminAccess {
  readonly token: string | undefined;
  readonly dispatcher: Dispatcher;
}

export function adminAgent(cacert: string | undefined): Agent {
  const ca = cacert === undefined ? undefined : readFileSync(cacert);
  return new Agent({ connect: { timeout: 1_000, ...(ca === undefined ? {} : { ca }) }, keepAliveTimeout: 4_000, connections: 8 });
}

export interface JsonAnswer<T> {
  readonly status: number;
  readonly body: T | undefined;
}

/** One admin call, at most `timeoutMs`; throws on a connection failure or timeout. */
export async function adminCall<T>(access: AdminAccess, base: string, method: 'GET' | 'POST', path: string, options: { body?: unknown; timeoutMs: number; idempotencyKey?: string }): Promise<JsonAnswer<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (access.token !== undefined && method !== 'GET') headers['authorization'] = `Bearer ${access.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  const res = await request(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? null : JSON.stringify(options.body),
    dispatcher: access.dispatcher,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const text = await res.body.text();
  let body: T | undefined;
  try {
    body = text === '' ? undefined : (JSON.parse(text) as T);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body };
}

/** The code of an admin error body, if it is one. */
export function errorCode(body: unknown): string | undefined {
  const e = (body as { error?: { code?: unknown } } | undefined)?.error;
  return typeof e?.code === 'string' ? e.code : undefined;
}

/** A short name for a connection failure: ECONNREFUSED, timeout, … */
export function failureName(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  return e.code ?? e.cause?.code ?? 'error';
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
