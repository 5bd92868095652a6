// How routes touch the pool: reads say which index they reflect and whether they are
// linearizable; writes carry the client's Idempotency-Key, wait at most the request
// timeout, and turn failed outcomes into typed errors.
import { validateCommand, validateRequestId, StoreError, type CommandOutcome, type PoolCommand, type PoolSnapshot, type ServerRecord } from '@weldr/store';
import { AdminError, fromOutcome, fromStoreError, timeoutError } from './errors.js';
import type { AdminRouteContext, ResolvedDeps } from './context.js';
import type { RequestOrigin } from './deps.js';

export const INDEX_HEADER = 'X-Weldr-Index';
const IDEMPOTENCY_HEADER = 'idempotency-key';

/**
 * The pool as this request should see it: linearizable (ReadIndex) by default,
 * the local snapshot with ?stale=true. Sets X-Weldr-Index.
 */
export async function readPool(ctx: AdminRouteContext, deps: ResolvedDeps): Promise<PoolSnapshot> {
  const snapshot = staleAllowed(ctx)
    ? deps.pool.snapshot()
    : await withDeadline(deps.pool.linearizableSnapshot({ timeoutMs: deps.requestTimeoutMs }), deps.requestTimeoutMs, 'read');
  ctx.set(INDEX_HEADER, String(snapshot.index));
  return snapshot;
}

export function staleAllowed(ctx: AdminRouteContext): boolean {
  return booleanQuery(ctx, 'stale');
}

/** A boolean query flag: absent, `false` or `0` is false; empty, `true` or `1` is true. */
export function booleanQuery(ctx: AdminRouteContext, name: string): boolean {
  const raw = ctx.query[name];
  if (raw === undefined) return false;
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new AdminError(400, 'INVALID_QUERY', `${name} must be true or false`, { field: name });
}

type Success = Extract<CommandOutcome, { ok: true }>;

/**
 * Validates `input` as a command, proposes it and waits for it to be applied. Sets
 * X-Weldr-Index (and Idempotent-Replayed for a remembered request id) and returns the
 * successful outcome; a failed outcome is thrown as the matching AdminError.
 */
export async function commit(ctx: AdminRouteContext, deps: ResolvedDeps, input: unknown): Promise<{ outcome: Success; replayed: boolean }> {
  const requestId = idempotencyKey(ctx);
  let command: PoolCommand;
  try {
    command = validateCommand(input);
  } catch (err) {
    throw fromStoreError(err, 'write');
  }
  const options = { timeoutMs: deps.requestTimeoutMs, ...(requestId === undefined ? {} : { requestId }), origin: requestOrigin(ctx, deps) };
  const result = await withDeadline(deps.pool.propose(command, options), deps.requestTimeoutMs, 'write');
  ctx.set(INDEX_HEADER, String(result.index));
  if (result.duplicate) ctx.set('Idempotent-Replayed', 'true');
  deps.log.info(
    { requestId: ctx.state.requestId, idempotencyKey: requestId, command: command.type, index: result.index, duplicate: result.duplicate, ok: result.outcome.ok },
    'pool write applied',
  );
  if (!result.outcome.ok) throw fromOutcome(result.outcome);
  if (deps.dataPlaneSynced !== undefined) await deps.dataPlaneSynced();
  return { outcome: result.outcome, replayed: result.duplicate };
}

/**
 * For the audit log: the node the request arrived at and the client's address there. A
 * write relayed by a follower says both in headers the node verifies (deps.relayOrigin:
 * signed by the relaying member with the cluster secret); anything else — including
 * relay headers a client made up — is recorded as arrived here, from the socket's peer.
 */
export function requestOrigin(ctx: AdminRouteContext, deps: ResolvedDeps): RequestOrigin {
  const relayed = deps.relayOrigin?.(ctx.req);
  if (relayed !== undefined) return relayed;
  const client = ctx.req.socket.remoteAddress;
  return { nodeId: deps.nodeId ?? deps.cluster.info().nodeId, ...(client === undefined ? {} : { client }) };
}

export function idempotencyKey(ctx: AdminRouteContext): string | undefined {
  // Present but empty is an error, not "no key": `-H "Idempotency-Key: $KEY"` with KEY
  // unset would otherwise make a client believe its retries are safe when they are not.
  if (ctx.req.headers[IDEMPOTENCY_HEADER] === undefined) return undefined;
  const raw = ctx.get(IDEMPOTENCY_HEADER);
  try {
    return validateRequestId(raw, 'Idempotency-Key');
  } catch (err) {
    throw new AdminError(400, 'INVALID_HEADER', (err as StoreError).message, { field: 'Idempotency-Key' });
  }
}

/**
 * Waits for a store call, mapping its errors, and answers 504 ourselves if the store
 * overruns the deadline it was given (a stuck store must not hang admin clients). The
 * abandoned promise gets a no-op catch so its later rejection is not "unhandled".
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, kind: 'write' | 'read'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    // A little grace so the store's own TIMEOUT (with its message) normally wins.
    timer = setTimeout(() => reject(timeoutError(kind)), ms + 250);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    throw fromStoreError(err, kind);
  } finally {
    clearTimeout(timer);
  }
}

/** The record a server command answered with (every successful server outcome has one). */
export function serverOf(outcome: Success): ServerRecord {
  if ('server' in outcome && outcome.server !== undefined) return outcome.server;
  throw new AdminError(500, 'INTERNAL', `a ${outcome.status} outcome carried no server record`);
}
