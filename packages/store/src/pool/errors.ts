/** Stable error codes surfaced by stores; the admin API maps them to HTTP statuses. */
export type StoreErrorCode =
  | 'INVALID_COMMAND' // 400: failed validation before proposing
  | 'NOT_LEADER' // 503 (or forwarded): this node cannot accept the write
  | 'NO_QUORUM' // 503
  | 'TIMEOUT' // 504: may still apply
  | 'STOPPED' // 503: store closed
  | 'OVERLOADED' // 503: a bounded queue is full; nothing was done, retry shortly
  | 'NODE_FAILED' // 500: the node stopped after a failed storage write (or a loop failure); may have been applied
  // membership changes (refused before anything reaches the log):
  | 'NOT_FOUND' // 404: no such member
  | 'CONFLICT' // 409: e.g. removing the last voter, a request id reused, a single node
  | 'CHANGE_IN_PROGRESS' // 409: another membership change is not yet applied
  | 'QUORUM_AT_RISK' // 409: the change would leave no quorum of live voters
  | 'MEMBER_EXISTS' // 409: the id is a member with other addresses / incarnation
  | 'NOT_CAUGHT_UP'; // 409: promoting a learner that is behind or silent

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** For INVALID_COMMAND: the offending field path, e.g. "healthCheck.intervalMs". */
  readonly field?: string;
  /** For NOT_LEADER: the leader's id, when known. */
  readonly leaderId?: string;

  constructor(code: StoreErrorCode, message: string, extra: { field?: string; leaderId?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'StoreError';
    this.code = code;
    if (extra.field !== undefined) this.field = extra.field;
    if (extra.leaderId !== undefined) this.leaderId = extra.leaderId;
  }
}
