// Whole-state serialisation: the format of Raft snapshots (and of anything else that
// ships a complete pool). Loading re-validates everything, because a snapshot crosses a
// process boundary and possibly a version boundary; corruption must stop the load, not
// surface later as a divergent replica.
import { StoreError } from './errors.js';
import { requestEntries, requestTableFrom, type RememberedRequest } from './idempotency.js';
import { deepFreeze } from './json-value.js';
import { serverId } from './server-id.js';
import type { PoolState } from './state.js';
import { ServerTable } from './server-table.js';
import type { CommandOutcome, PoolSettings, ServerRecord } from './types.js';
import { validateHealthCheckOverrides, validateIp, validatePort, validateRequestId, validateSettings, validateWeight } from './validate.js';
import { booleanField, expectObject, fail, integerIn, own, rejectUnknown } from './validate-fields.js';

/** Bump when the serialised shape or the meaning of a field changes. */
export const STATE_FORMAT_VERSION = 1;

export interface SerializedPoolState {
  readonly version: typeof STATE_FORMAT_VERSION;
  readonly appliedIndex: number;
  readonly settings: PoolSettings;
  /** Canonical order. */
  readonly servers: readonly ServerRecord[];
  /** Idempotency table, oldest first. */
  readonly requests: readonly RememberedRequest[];
}

/** The parts a state is rebuilt from, whether from one JSON document or from LevelDB keys. */
export interface PoolStateParts {
  readonly appliedIndex: unknown;
  readonly settings: unknown;
  readonly servers: readonly unknown[];
  readonly requests: readonly unknown[];
}

export function toSerialized(state: PoolState): SerializedPoolState {
  return {
    version: STATE_FORMAT_VERSION,
    appliedIndex: state.appliedIndex,
    settings: state.settings,
    servers: state.servers.list(),
    requests: [...requestEntries(state.requests)],
  };
}

export function serializeState(state: PoolState): string {
  return JSON.stringify(toSerialized(state));
}

/** Throws Error('corrupt pool state: …') on anything that serializeState would not produce. */
export function deserializeState(json: string): PoolState {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new Error('corrupt pool state: not JSON', { cause: err });
  }
  return loading(() => {
    const obj = expectObject(doc, 'state');
    rejectUnknown(obj, ['version', 'appliedIndex', 'settings', 'servers', 'requests'], 'state');
    if (own(obj, 'version') !== STATE_FORMAT_VERSION) {
      fail('state.version', `is ${JSON.stringify(own(obj, 'version'))}; this build reads version ${STATE_FORMAT_VERSION}`);
    }
    const servers = own(obj, 'servers');
    const requests = own(obj, 'requests');
    if (!Array.isArray(servers)) fail('state.servers', 'must be an array');
    if (!Array.isArray(requests)) fail('state.requests', 'must be an array');
    return buildState({ appliedIndex: own(obj, 'appliedIndex'), settings: own(obj, 'settings'), servers, requests });
  });
}

/** Validates parts and assembles a frozen PoolState. Same error contract as deserializeState. */
export function stateFromParts(parts: PoolStateParts): PoolState {
  return loading(() => buildState(parts));
}

function loading<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof StoreError) throw new Error(`corrupt pool state: ${err.message}`, { cause: err });
    throw err;
  }
}

function buildState(parts: PoolStateParts): PoolState {
  const appliedIndex = integerIn(parts.appliedIndex, 'appliedIndex', 0, Number.MAX_SAFE_INTEGER);
  const settings = deepFreeze(validateSettings(parts.settings));
  const records: ServerRecord[] = [];
  let previous: ServerRecord | undefined;
  for (const [i, value] of parts.servers.entries()) {
    const record = parseRecord(value, `servers[${i}]`, appliedIndex);
    if (previous !== undefined && !(previous.createdIndex < record.createdIndex || (previous.createdIndex === record.createdIndex && previous.id < record.id))) {
      fail(`servers[${i}]`, 'is out of canonical order (createdIndex, then id)');
    }
    records.push(record);
    previous = record;
  }
  const servers = ServerTable.from(records);
  let lastIndex = 0;
  const requests = parts.requests.map((value, i) => {
    const entry = parseRemembered(value, `requests[${i}]`, appliedIndex);
    if (entry.index <= lastIndex) fail(`requests[${i}].index`, 'must be increasing');
    lastIndex = entry.index;
    return entry;
  });
  return Object.freeze({ appliedIndex, settings, servers, requests: requestTableFrom(requests) });
}

const RECORD_KEYS = ['id', 'ip', 'port', 'weight', 'healthCheck', 'draining', 'createdIndex', 'updatedIndex'] as const;

function parseRecord(value: unknown, prefix: string, appliedIndex: number): ServerRecord {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, RECORD_KEYS, prefix);
  const ip = validateIp(own(obj, 'ip'), `${prefix}.ip`);
  if (ip !== own(obj, 'ip')) fail(`${prefix}.ip`, 'is not in canonical form');
  const port = validatePort(own(obj, 'port'), `${prefix}.port`);
  if (own(obj, 'port') !== port) fail(`${prefix}.port`, 'must be a number');
  const id = serverId(ip, port);
  if (own(obj, 'id') !== id) fail(`${prefix}.id`, `must be "${id}"`);
  const createdIndex = integerIn(own(obj, 'createdIndex'), `${prefix}.createdIndex`, 1, appliedIndex);
  return deepFreeze({
    id,
    ip,
    port,
    weight: validateWeight(own(obj, 'weight'), `${prefix}.weight`),
    healthCheck: validateHealthCheckOverrides(own(obj, 'healthCheck'), `${prefix}.healthCheck`),
    draining: booleanField(own(obj, 'draining'), `${prefix}.draining`),
    createdIndex,
    updatedIndex: integerIn(own(obj, 'updatedIndex'), `${prefix}.updatedIndex`, createdIndex, appliedIndex),
  });
}

function parseRemembered(value: unknown, prefix: string, appliedIndex: number): RememberedRequest {
  const obj = expectObject(value, prefix);
  rejectUnknown(obj, ['requestId', 'index', 'fingerprint', 'outcome'], prefix);
  const fingerprint = own(obj, 'fingerprint');
  if (typeof fingerprint !== 'string' || fingerprint === '') fail(`${prefix}.fingerprint`, 'must be a non-empty string');
  const outcome = expectObject(own(obj, 'outcome'), `${prefix}.outcome`);
  booleanField(own(outcome, 'ok'), `${prefix}.outcome.ok`);
  // Batch results feed the table's eviction weight, so they must at least be a list.
  if (own(outcome, 'status') === 'batch' && !Array.isArray(own(outcome, 'results'))) fail(`${prefix}.outcome.results`, 'must be an array');
  return deepFreeze({
    requestId: validateRequestId(own(obj, 'requestId'), `${prefix}.requestId`),
    index: integerIn(own(obj, 'index'), `${prefix}.index`, 1, appliedIndex),
    fingerprint,
    // Outcomes are answers replayed to clients, never inputs to the state machine, so a
    // shape check is enough.
    outcome: outcome as unknown as CommandOutcome,
  });
}
