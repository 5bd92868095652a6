// Every error the admin API answers with is an AdminError; routes throw them and one
// middleware (middleware/errors.ts) renders `{"error":{"code","message","field"?}}`.
import { StoreError, type CommandOutcome } from '@weldr/store';

/** Stable, documented error codes (docs/admin-api.md). */
export type AdminErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_COMMAND'
  | 'INVALID_HEADER'
  | 'INVALID_QUERY'
  | 'BAD_REQUEST'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BODY_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'FAULT_INJECTION_DISABLED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'CHANGE_IN_PROGRESS'
  | 'QUORUM_AT_RISK'
  | 'MEMBER_EXISTS'
  | 'NOT_CAUGHT_UP'
  | 'NOT_ACTIVE'
  | 'NOT_LEADER'
  | 'NO_QUORUM'
  | 'STOPPED'
  | 'OVERLOADED'
  | 'TIMEOUT'
  | 'NODE_FAILED'
  | 'INTERNAL';

export interface AdminErrorExtra {
  readonly field?: string;
  readonly leaderId?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class AdminError extends Error {
  override readonly name = 'AdminError';
  readonly field?: string;
  readonly leaderId?: string;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: number,
    readonly code: AdminErrorCode,
    message: string,
    extra: AdminErrorExtra = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    if (extra.field !== undefined) this.field = extra.field;
    if (extra.leaderId !== undefined) this.leaderId = extra.leaderId;
    this.headers = extra.headers ?? {};
  }

  /** The JSON body; `field` and `leaderId` only when known. */
  toBody(): { error: { code: AdminErrorCode; message: string; field?: string; leaderId?: string } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field === undefined ? {} : { field: this.field }),
        ...(this.leaderId === undefined ? {} : { leaderId: this.leaderId }),
      },
    };
  }
}

// Unavailability is usually an election in progress (hundreds of ms); ask for a retry soon.
const RETRY_SOON = { 'Retry-After': '1' };

/** Maps a StoreError (or anything else thrown by the store) to an AdminError. */
export function fromStoreError(err: unknown, kind: 'write' | 'read'): AdminError {
  if (err instanceof AdminError) return err;
  if (!(err instanceof StoreError)) {
    return new AdminError(500, 'INTERNAL', 'internal error', { cause: err });
  }
  const cause = { cause: err };
  switch (err.code) {
    case 'INVALID_COMMAND':
      return new AdminError(400, 'INVALID_COMMAND', err.message, { ...cause, ...(err.field === undefined ? {} : { field: err.field }) });
    case 'NOT_LEADER':
      return new AdminError(503, 'NOT_LEADER', err.message, { ...cause, headers: RETRY_SOON, ...(err.leaderId === undefined ? {} : { leaderId: err.leaderId }) });
    case 'NO_QUORUM':
    case 'STOPPED':
    case 'OVERLOADED':
      return new AdminError(503, err.code, err.message, { ...cause, headers: RETRY_SOON });
    case 'NODE_FAILED':
      // The node is exiting (docs/operations.md, exit code 3): the write may be on disk.
      return new AdminError(500, 'NODE_FAILED', err.message, cause);
    case 'TIMEOUT':
      return timeoutError(kind, cause);
    case 'NOT_FOUND':
      return new AdminError(404, 'NOT_FOUND', err.message, cause);
    case 'CONFLICT':
    case 'CHANGE_IN_PROGRESS':
    case 'QUORUM_AT_RISK':
    case 'MEMBER_EXISTS':
    case 'NOT_CAUGHT_UP':
      return new AdminError(409, err.code, err.message, { ...cause, ...(err.field === undefined ? {} : { field: err.field }) });
  }
}

export function timeoutError(kind: 'write' | 'read', extra: AdminErrorExtra = {}): AdminError {
  const message =
    kind === 'write'
      ? 'the write was not confirmed in time; it may still be applied — retry with the same Idempotency-Key to find out'
      : 'the linearizable read did not complete in time; retry, or add ?stale=true to read local state';
  return new AdminError(504, 'TIMEOUT', message, extra);
}

/** Maps a failed state-machine outcome to an AdminError. */
export function fromOutcome(outcome: Extract<CommandOutcome, { ok: false }>): AdminError {
  const extra = outcome.field === undefined ? {} : { field: outcome.field };
  switch (outcome.code) {
    case 'NOT_FOUND':
      return new AdminError(404, 'NOT_FOUND', outcome.message, extra);
    case 'CONFLICT':
      return new AdminError(409, 'CONFLICT', outcome.message, extra);
    case 'INVALID':
      return new AdminError(400, 'INVALID_COMMAND', outcome.message, extra);
  }
}
