// Exit codes and errors of the operator commands (`weldr servers|cluster|member|…`).
// The codes are stable and documented (docs/operations.md#exit-codes) so scripts can
// tell "fix the command" from "the cluster is down" from "the cluster said no".

/** The command ran and the cluster did what was asked. */
export const EXIT_OK = 0;
/** Bad usage: unknown command or flag, malformed argument, unreadable input file. Nothing was sent. */
export const EXIT_USAGE_ERROR = 2;
/** No endpoint could be reached (connection refused, DNS, TLS, no answer in time). */
export const EXIT_UNREACHABLE = 3;
/** The cluster answered and refused the operation (4xx: invalid, unauthorized, not found, conflict). */
export const EXIT_REFUSED = 4;
/** The cluster answered with a server-side failure (5xx: no leader, no quorum, commit timeout, internal). */
export const EXIT_SERVER_ERROR = 5;

export type CtlExitCode = typeof EXIT_USAGE_ERROR | typeof EXIT_UNREACHABLE | typeof EXIT_REFUSED | typeof EXIT_SERVER_ERROR;

/**
 * A failed operator command: `message` says what happened, `hint` what to do next.
 * `body` is the admin API's error object when the cluster answered.
 */
export class CtlError extends Error {
  override readonly name = 'CtlError';
  constructor(
    readonly exitCode: CtlExitCode,
    message: string,
    readonly hint?: string,
    readonly body?: { readonly code: string; readonly message: string; readonly field?: string; readonly leaderId?: string },
    readonly status?: number,
  ) {
    super(message);
  }
}

export const EXIT_CODES_HELP = `Exit codes: 0 done; 2 bad usage (nothing was sent); 3 no endpoint could be reached;
4 the cluster refused (invalid input, unauthorized, not found, conflict);
5 the cluster failed (no leader or quorum within --timeout, commit timeout, internal error).
`;
