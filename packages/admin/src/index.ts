// Public surface of @weldr/admin. See README.md.
export { createAdminApp } from './app.js';
export { AdminError } from './errors.js';
export { answerClientError } from './client-error.js';
export type { AdminErrorCode } from './errors.js';
export { DEFAULT_BATCH_BODY_LIMIT_BYTES, DEFAULT_BODY_LIMIT_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, silentLogger } from './deps.js';
export type {
  AdminDeps,
  AdminLogger,
  ClusterInfo,
  ClusterMember,
  LeadershipTransfer,
  FaultInjector,
  FaultRefusal,
  ServingView,
  MemberListView,
  MemberView,
  MemberWriteOptions,
  MemberWriteResult,
  MembershipAdmin,
  CounterPair,
  NodeView,
  LastCheckView,
  ProxyStatsView,
  ProxyTotalsView,
  ServerHealth,
  ServerStatsView,
  RequestOrigin,
} from './deps.js';
export type { AdminState } from './context.js';
export { StatsHistory } from './stats-history.js';
export type { StatsHistoryOptions, StatsHistoryView, StatsSample } from './stats-history.js';
export { NodeEvents } from './node-events.js';
export type { NodeEvent } from './node-events.js';
