// Strict validation of everything that enters the pool: commands from the admin API,
// request ids, and (when a state is loaded) settings. The output is canonical — IPs
// normalised, ports numbers, keys in a fixed order — so the same intent always produces
// the same log entry and the same idempotency fingerprint on every node.
import { BOUNDS } from './bounds.js';
import { parseIp } from './ip.js';
import type {
  BalancerKind,
  HealthCheckOverrides,
  HealthCheckSpec,
  PassiveHealthSpec,
  PoolCommand,
  PoolSettings,
  ServerOrSettingsCommand,
  StatusRange,
} from './types.js';
import { validateInitCluster, validateUpdateMember } from './validate-member.js';
import { booleanField, expectObject, fail, integerIn, join, oneOf, own, rejectUnknown } from './validate-fields.js';

export const BALANCER_KINDS: readonly BalancerKind[] = Object.freeze([
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'power-of-two',
]);

const COMMAND_TYPES = ['AddServer', 'RemoveServer', 'UpdateServer', 'UpdateSettings', 'Batch', 'UpdateMember', 'InitCluster'] as const;
const HEALTH_CHECK_KEYS = [
  'enabled',
  'method',
  'path',
  'intervalMs',
  'timeoutMs',
  'expectedStatus',
  'healthyThreshold',
  'unhealthyThreshold',
  'jitterMs',
] as const satisfies readonly (keyof HealthCheckSpec)[];
const PASSIVE_KEYS = ['enabled', 'consecutiveFailures', 'baseEjectionMs', 'maxEjectionMs'] as const satisfies readonly (keyof PassiveHealthSpec)[];
const SETTINGS_KEYS = ['balancer', 'healthCheck', 'passiveHealth'] as const satisfies readonly (keyof PoolSettings)[];

// Visible ASCII only: a request target with spaces or CTLs would be a malformed request
// line (RFC 9112 §3.2); '#' starts a fragment, which is never sent.
const PATH_CHARS = /^\/[\x21-\x22\x24-\x7e]*$/;
const REQUEST_ID_CHARS = /^[\x21-\x7e]+$/;
// Decimal without sign, spaces or leading zeros: "8080" yes, "+80", " 80", "080" no.
const PORT_STRING = /^[1-9][0-9]{0,4}$/;

/**
 * Validates and canonicalises a pool command. Throws StoreError('INVALID_COMMAND') with
 * `field` set to the path of the first offending value.
 */
export function validateCommand(input: unknown): PoolCommand {
  return validateCommandAt(input, '', true);
}

function validateCommandAt(input: unknown, prefix: string, allowBatch: boolean): PoolCommand {
  const obj = expectObject(input, prefix);
  const typeField = join(prefix, 'type');
  const type = oneOf(own(obj, 'type'), typeField, COMMAND_TYPES);
  switch (type) {
    case 'AddServer': {
      rejectUnknown(obj, ['type', 'ip', 'port', 'weight', 'healthCheck'], prefix);
      return {
        type,
        ...address(obj, prefix),
        ...optional('weight', own(obj, 'weight'), (v) => validateWeight(v, join(prefix, 'weight'))),
        ...optional('healthCheck', own(obj, 'healthCheck'), (v) => validateHealthCheckOverrides(v, join(prefix, 'healthCheck'))),
      };
    }
    case 'RemoveServer':
      rejectUnknown(obj, ['type', 'ip', 'port'], prefix);
      return { type, ...address(obj, prefix) };
    case 'UpdateServer':
      rejectUnknown(obj, ['type', 'ip', 'port', 'weight', 'healthCheck', 'draining'], prefix);
      return {
        type,
        ...address(obj, prefix),
        ...optional('weight', own(obj, 'weight'), (v) => validateWeight(v, join(prefix, 'weight'))),
        ...optional('healthCheck', own(obj, 'healthCheck'), (v) => validateHealthCheckOverrides(v, join(prefix, 'healthCheck'))),
        ...optional('draining', own(obj, 'draining'), (v) => booleanField(v, join(prefix, 'draining'))),
      };
    case 'UpdateSettings':
      rejectUnknown(obj, ['type', ...SETTINGS_KEYS], prefix);
      return { type, ...validateSettingsPatch(obj, prefix) };
    case 'Batch': {
      if (!allowBatch) fail(typeField, 'Batch cannot be nested inside a Batch');
      rejectUnknown(obj, ['type', 'commands'], prefix);
      const list = own(obj, 'commands');
      const field = join(prefix, 'commands');
      if (!Array.isArray(list)) fail(field, 'must be an array of commands');
      const { min, max } = BOUNDS.batchCommands;
      if (list.length < min || list.length > max) fail(field, `must hold between ${min} and ${max} commands`);
      const commands = list.map((sub: unknown, i) => validateCommandAt(sub, `${field}[${i}]`, false));
      return { type, commands: commands as ServerOrSettingsCommand[] };
    }
    // Membership records: never inside a Batch (a Batch is the pool's unit of change).
    case 'UpdateMember':
      if (!allowBatch) fail(typeField, 'UpdateMember cannot be part of a Batch');
      return validateUpdateMember(obj, prefix);
    case 'InitCluster':
      if (!allowBatch) fail(typeField, 'InitCluster cannot be part of a Batch');
      return validateInitCluster(obj, prefix);
  }
}

/** Spreads `{ [key]: check(value) }` when the value is present, nothing otherwise. */
function optional<K extends string, T>(key: K, value: unknown, check: (v: unknown) => T): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: check(value) }) as { [P in K]?: T };
}

function address(obj: Readonly<Record<string, unknown>>, prefix: string): { ip: string; port: number } {
  return { ip: validateIp(own(obj, 'ip'), join(prefix, 'ip')), port: validatePort(own(obj, 'port'), join(prefix, 'port')) };
}

/** Canonical IP (see parseIp for what is accepted). */
export function validateIp(value: unknown, field = 'ip'): string {
  if (typeof value !== 'string') fail(field, 'must be a string holding an IPv4 or IPv6 address');
  const parsed = parseIp(value);
  if (!parsed.ok) fail(field, parsed.reason);
  return parsed.value.ip;
}

/**
 * Port as an integer, or as a decimal string ("12345") because the seed API and URL
 * paths carry it as text. This is the one place that converts; the log only ever holds
 * numbers.
 */
export function validatePort(value: unknown, field = 'port'): number {
  const { min, max } = BOUNDS.port;
  const n = typeof value === 'string' && PORT_STRING.test(value) ? Number(value) : value;
  return integerIn(n, field, min, max);
}

export function validateWeight(value: unknown, field = 'weight'): number {
  return integerIn(value, field, BOUNDS.weight.min, BOUNDS.weight.max);
}

/** A client request id (Idempotency-Key): 1..255 visible ASCII characters. */
export function validateRequestId(value: unknown, field = 'requestId'): string {
  const { min, max } = BOUNDS.requestIdLength;
  if (typeof value !== 'string' || value.length < min || value.length > max || !REQUEST_ID_CHARS.test(value)) {
    fail(field, `must be ${min} to ${max} visible ASCII characters`);
  }
  return value;
}

/** Any subset of the health-check fields, each within its bounds. */
export function validateHealthCheckOverrides(value: unknown, prefix: string): HealthCheckOverrides {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, HEALTH_CHECK_KEYS, prefix);
  const out: Record<string, unknown> = {};
  for (const key of HEALTH_CHECK_KEYS) {
    const v = own(obj, key);
    if (v !== undefined) out[key] = validateHealthCheckField(key, v, join(prefix, key));
  }
  const overrides = out as HealthCheckOverrides;
  checkHealthCheckConsistency(overrides, prefix);
  return overrides;
}

function validateHealthCheckField(key: (typeof HEALTH_CHECK_KEYS)[number], v: unknown, field: string): unknown {
  switch (key) {
    case 'enabled':
      return booleanField(v, field);
    case 'method':
      return oneOf(v, field, ['GET', 'HEAD'] as const);
    case 'path':
      return validatePath(v, field);
    case 'intervalMs':
      return integerIn(v, field, BOUNDS.intervalMs.min, BOUNDS.intervalMs.max);
    case 'timeoutMs':
      return integerIn(v, field, BOUNDS.timeoutMs.min, BOUNDS.timeoutMs.max);
    case 'expectedStatus':
      return validateStatusRange(v, field);
    case 'healthyThreshold':
    case 'unhealthyThreshold':
      return integerIn(v, field, BOUNDS.threshold.min, BOUNDS.threshold.max);
    case 'jitterMs':
      return integerIn(v, field, BOUNDS.jitterMs.min, BOUNDS.jitterMs.max);
  }
}

function validatePath(v: unknown, field: string): string {
  const { max } = BOUNDS.pathLength;
  if (typeof v !== 'string' || !v.startsWith('/')) fail(field, "must be a string starting with '/'");
  if (v.length > max) fail(field, `must be at most ${max} characters`);
  if (!PATH_CHARS.test(v)) fail(field, "must contain only visible ASCII characters (no spaces, control characters or '#')");
  return v;
}

function validateStatusRange(v: unknown, prefix: string): StatusRange {
  const obj = expectObject(v, prefix);
  rejectUnknown(obj, ['min', 'max'], prefix);
  const { min: lo, max: hi } = BOUNDS.status;
  const min = integerIn(own(obj, 'min'), join(prefix, 'min'), lo, hi);
  const max = integerIn(own(obj, 'max'), join(prefix, 'max'), lo, hi);
  if (min > max) fail(join(prefix, 'min'), `must not exceed ${join(prefix, 'max')}`);
  return { min, max };
}

/**
 * Cross-field rule for a (possibly partial) health check: a check must time out before
 * the next one is due. Used on a single object here and on the merged, effective spec
 * by the state machine, whose inputs come from two places (defaults and overrides).
 */
export function checkHealthCheckConsistency(spec: HealthCheckOverrides, prefix: string): void {
  if (spec.timeoutMs !== undefined && spec.intervalMs !== undefined && spec.timeoutMs >= spec.intervalMs) {
    fail(join(prefix, 'timeoutMs'), `must be less than intervalMs (${spec.intervalMs})`);
  }
}

export function validatePassiveHealthPatch(value: unknown, prefix: string): Partial<PassiveHealthSpec> {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, PASSIVE_KEYS, prefix);
  const out: Record<string, unknown> = {};
  for (const key of PASSIVE_KEYS) {
    const v = own(obj, key);
    if (v === undefined) continue;
    const field = join(prefix, key);
    if (key === 'enabled') out[key] = booleanField(v, field);
    else if (key === 'consecutiveFailures') out[key] = integerIn(v, field, BOUNDS.consecutiveFailures.min, BOUNDS.consecutiveFailures.max);
    else out[key] = integerIn(v, field, BOUNDS.ejectionMs.min, BOUNDS.ejectionMs.max);
  }
  const patch = out as Partial<PassiveHealthSpec>;
  checkPassiveHealthConsistency(patch, prefix);
  return patch;
}

/** A longer first ejection than the cap would make the backoff shrink. */
export function checkPassiveHealthConsistency(spec: Partial<PassiveHealthSpec>, prefix: string): void {
  if (spec.baseEjectionMs !== undefined && spec.maxEjectionMs !== undefined && spec.baseEjectionMs > spec.maxEjectionMs) {
    fail(join(prefix, 'baseEjectionMs'), `must not exceed maxEjectionMs (${spec.maxEjectionMs})`);
  }
}

type SettingsPatch = Omit<Extract<PoolCommand, { type: 'UpdateSettings' }>, 'type'>;

function validateSettingsPatch(obj: Readonly<Record<string, unknown>>, prefix: string): SettingsPatch {
  return {
    ...optional('balancer', own(obj, 'balancer'), (v) => oneOf(v, join(prefix, 'balancer'), BALANCER_KINDS)),
    ...optional('healthCheck', own(obj, 'healthCheck'), (v) => validateHealthCheckOverrides(v, join(prefix, 'healthCheck'))),
    ...optional('passiveHealth', own(obj, 'passiveHealth'), (v) => validatePassiveHealthPatch(v, join(prefix, 'passiveHealth'))),
  };
}

/**
 * A complete PoolSettings value (every field present). Used when a state is loaded from
 * disk or a snapshot, where a missing field means corruption rather than "keep".
 */
export function validateSettings(value: unknown, prefix = 'settings'): PoolSettings {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, SETTINGS_KEYS, prefix);
  const patch = validateSettingsPatch(obj, prefix);
  const healthCheck = requireAll(patch.healthCheck, HEALTH_CHECK_KEYS, join(prefix, 'healthCheck'));
  const passiveHealth = requireAll(patch.passiveHealth, PASSIVE_KEYS, join(prefix, 'passiveHealth'));
  if (patch.balancer === undefined) fail(join(prefix, 'balancer'), 'is required');
  return { balancer: patch.balancer, healthCheck, passiveHealth };
}

function requireAll<T extends object>(partial: Partial<T> | undefined, keys: readonly (keyof T & string)[], prefix: string): T {
  if (partial === undefined) fail(prefix, 'is required');
  for (const key of keys) if (partial[key] === undefined) fail(join(prefix, key), 'is required');
  return partial as T;
}
