import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { AdminError } from '../errors.js';
import type { AdminState } from '../context.js';

/**
 * Bearer-token check for write routes. Missing or non-Bearer credentials → 401 with a
 * WWW-Authenticate challenge; a wrong token → 403. Tokens are compared as SHA-256
 * digests with timingSafeEqual, so neither content nor length leaks through timing.
 */
export function requireToken(token: string | undefined): Middleware<AdminState> {
  if (token === undefined) return (_ctx, next) => next();
  if (token.length === 0) throw new TypeError('auth.token must not be empty');
  const expected = digest(token);
  return async (ctx, next) => {
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(ctx.get('authorization'));
    if (match === null) {
      throw new AdminError(401, 'UNAUTHORIZED', 'this endpoint needs Authorization: Bearer <token>', {
        headers: { 'WWW-Authenticate': 'Bearer realm="weldr-admin"' },
      });
    }
    if (!timingSafeEqual(digest(match[1] ?? ''), expected)) {
      throw new AdminError(403, 'FORBIDDEN', 'the bearer token is not valid for this node');
    }
    await next();
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Reads need the token too (GET, HEAD), except on `openPaths`: probes that load balancers
 * and Kubernetes send without credentials. Writes keep their own check on each route.
 */
export function requireTokenForReads(auth: Middleware<AdminState>, openPaths: readonly string[]): Middleware<AdminState> {
  const open = new Set(openPaths);
  return (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || open.has(ctx.path)) return next();
    return auth(ctx, next);
  };
}
