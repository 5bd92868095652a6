import type { ParameterizedContext } from 'koa';
import type { RouterContext } from '@koa/router';
import type { AdminDeps, AdminLogger } from './deps.js';

/** Per-request state set by the outer middleware. */
export interface AdminState {
  /** X-Request-Id: echoed from the client when sane, generated otherwise. */
  requestId: string;
}

/** Dependencies with defaults resolved, shared by every route. */
export interface ResolvedDeps extends AdminDeps {
  readonly bodyLimitBytes: number;
  readonly batchBodyLimitBytes: number;
  readonly requestTimeoutMs: number;
  readonly log: AdminLogger;
}

export type AdminContext = ParameterizedContext<AdminState>;
export type AdminRouteContext = RouterContext<AdminState>;
