// The one place that writes error bodies. Routes throw AdminError (or anything, which
// becomes 500 INTERNAL without leaking its message); requests no route answered become
// 404 / 405 in the same shape.
import type { Middleware } from 'koa';
import { AdminError } from '../errors.js';
import type { AdminLogger } from '../deps.js';
import type { AdminState } from '../context.js';

export function errorMiddleware(log: AdminLogger): Middleware<AdminState> {
  return async (ctx, next) => {
    let error: AdminError | undefined;
    try {
      await next();
      error = unanswered(ctx.status, ctx.method, ctx.path, ctx.response.get('Allow'), ctx.body);
      if (ctx.method === 'OPTIONS' && ctx.status === 200 && ctx.body === '') {
        // The router answers OPTIONS with an empty 200; say "no content" properly.
        ctx.status = 204;
        ctx.body = null;
      }
    } catch (err) {
      error = toAdminError(err);
    }
    if (error === undefined) return;
    logAnswer(log, error, ctx.state.requestId, ctx.method, ctx.path);
    ctx.status = error.status;
    for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
    ctx.body = error.toBody();
  };
}

/**
 * How loud an error answer is. Only a fault of this node (INTERNAL, NODE_FAILED) is an
 * error, with its cause; a condition of the cluster the caller is told to retry through
 * (no quorum, a commit that timed out, a full queue) is a warning without a stack; an
 * answer that is simply the truth — a passive node's /ready 503, NOT_LEADER while the
 * leadership moves — is debug: load balancers probe passive nodes every second, and a
 * log full of expected answers hides the real ones. 4xx are the client's business.
 */
function logAnswer(log: AdminLogger, error: AdminError, requestId: string, method: string, path: string): void {
  const entry = { requestId, code: error.code, status: error.status, method, path };
  switch (error.code) {
    case 'INTERNAL':
    case 'NODE_FAILED':
      log.error({ ...entry, err: error.cause ?? error }, 'admin request failed');
      return;
    case 'NO_QUORUM':
    case 'TIMEOUT':
    case 'OVERLOADED':
    case 'STOPPED':
      log.warn({ ...entry, reason: error.message }, `admin request not served: ${error.message}`);
      return;
    default:
      if (error.status >= 500) log.debug({ ...entry, reason: error.message }, 'admin request answered with an expected refusal');
  }
}

// "/servers/10.0.0.1:80" (the record's id as one segment) is a likely mistake; say what works.
const ONE_SEGMENT_SERVER = /^\/servers\/[^/]+\/?$/;
const SERVER_PATH_HINT = '; a server is addressed as /servers/{ip}/{port}, e.g. /servers/10.0.0.1/80 or /servers/::1/80';

/** A request the router matched no handler for, as an AdminError, or undefined if answered. */
function unanswered(status: number, method: string, path: string, allow: string, body: unknown): AdminError | undefined {
  if (body !== undefined && body !== null) return undefined;
  switch (status) {
    case 404:
      return new AdminError(404, 'NOT_FOUND', `no route for ${method} ${path}${ONE_SEGMENT_SERVER.test(path) ? SERVER_PATH_HINT : ''}`);
    case 405:
      // allowedMethods() has already set the Allow header.
      return new AdminError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${allow}`);
    case 501:
      // The router says 501 for a method outside its list (TRACE, PROPFIND, …). On a
      // path some route has (Allow is set) that is the same client mistake as PUT on
      // /servers, so it gets the same 405; on any other path, the same 404 as a GET.
      if (allow !== '') return new AdminError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${allow}`);
      return new AdminError(404, 'NOT_FOUND', `no route for ${method} ${path}`);
    default:
      return undefined;
  }
}

function toAdminError(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  // Errors Koa itself raises (http-errors with `expose`), e.g. a malformed request.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose === true) {
    return new AdminError(status, status === 404 ? 'NOT_FOUND' : 'INVALID_COMMAND', (err as Error).message, { cause: err });
  }
  return new AdminError(500, 'INTERNAL', 'internal error', { cause: err });
}
