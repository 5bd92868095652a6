export type {
  BalancerKind,
  StatusRange,
  HealthCheckSpec,
  HealthCheckOverrides,
  PassiveHealthSpec,
  PoolSettings,
  ServerRecord,
  PoolSnapshot,
  AddServerCommand,
  RemoveServerCommand,
  UpdateServerCommand,
  UpdateSettingsCommand,
  BatchCommand,
  PoolCommand,
  CommandEnvelope,
  ApplyErrorCode,
  CommandOutcome,
  ApplyResult,
  ProposeOptions,
  PoolStore,
} from './pool/types.js';
export { StoreError } from './pool/errors.js';
export type { StoreErrorCode } from './pool/errors.js';
export {
  DEFAULT_SETTINGS,
  DEFAULT_HEALTH_CHECK,
  DEFAULT_PASSIVE_HEALTH,
  DEFAULT_WEIGHT,
  effectiveHealthCheck,
} from './pool/defaults.js';
