// Thin client for the admin API as the e2e tests use it.
import { Agent, request } from 'undici';
import type { Origin } from './origins.js';
import type { WeldrNode } from './node.js';

export interface AdminResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Record<string, string | string[] | undefined>;
}

/**
 * At most this many connections to one node's admin API: a burst of calls queues on them.
 * undici's default agent opens a connection per concurrent call without a bound, and a
 * node refuses more than 64 open admin connections from one address
 * (--admin-max-connections-per-source): a burst of 60 calls plus the connections kept
 * alive from the calls before it could pass that on a loaded machine, and the calls over
 * it were answered 503 TOO_MANY_CONNECTIONS (a test:workers CI run, 2026-12-07).
 */
const ADMIN_CONNECTIONS = 32;
const dispatcher = new Agent({ connections: ADMIN_CONNECTIONS });

export async function adminCall<T = unknown>(node: WeldrNode, method: string, path: string, body?: unknown, rawBody?: string): Promise<AdminResponse<T>> {
  const res = await request(`${node.adminUrl}${path}`, {
    dispatcher,
    method: method as 'GET',
    headers: body === undefined && rawBody === undefined ? {} : { 'content-type': 'application/json' },
    ...(rawBody !== undefined ? { body: rawBody } : body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.statusCode, body: parsed as T, headers: res.headers };
}

export async function addOrigin(node: WeldrNode, origin: Origin, extra: Record<string, unknown> = {}): Promise<AdminResponse> {
  const res = await adminCall(node, 'POST', '/servers', { ip: '127.0.0.1', port: origin.port, ...extra });
  if (res.status >= 300) throw new Error(`adding ${origin.id} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

export async function removeOrigin(node: WeldrNode, port: number): Promise<AdminResponse> {
  const res = await adminCall(node, 'DELETE', `/servers/127.0.0.1/${port}`);
  if (res.status >= 300) throw new Error(`removing :${port} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}
