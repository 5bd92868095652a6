// The deterministic pool state machine. Every replica applies the same committed entries
// in the same order and must end in the same state, so this file has no clocks, no
// randomness, no I/O and no dependence on iteration order of anything but our own Maps.
// Semantic failures (unknown server, conflicting request id, a setting that is invalid
// against the current state) are *outcomes* recorded like successes; exceptions are
// reserved for programming errors such as applying an index out of order.
import { appendAudit, auditEntryFor, auditMetaOf } from './audit.js';
import { effectiveHealthCheck } from './defaults.js';
import { StoreError } from './errors.js';
import { fingerprintOf } from './fingerprint.js';
import { DEFAULT_REQUEST_LIMITS, lookupRequest, rememberRequest, type RequestTableLimits } from './idempotency.js';
import { deepFreeze, jsonEqual } from './json-value.js';
import { serverId } from './server-id.js';
import type { PoolState } from './state.js';
import { applyConfChange, type ConfChange } from '@weldr/raft';
import { applyRoleChange, confStateOf, initCluster, parseMemberChangeContext, updateMember } from './membership.js';
import type {
  ApplyResult,
  ClusterState,
  CommandEnvelope,
  MemberChangeEnvelope,
  CommandOutcome,
  HealthCheckOverrides,
  HealthCheckSpec,
  PoolCommand,
  PoolSettings,
  ServerRecord,
  UpdateServerCommand,
  UpdateSettingsCommand,
} from './types.js';
import { checkPassiveHealthConsistency, validateCommand, validateRequestId } from './validate.js';
import { fail, join } from './validate-fields.js';

export interface ApplyOptions {
  /** Idempotency-table bounds. Must be identical on every replica; tests shrink them. */
  readonly limits?: RequestTableLimits;
  /** Audit entries kept (AUDIT_RETENTION). Must be identical on every replica; tests shrink it. */
  readonly auditRetention?: number;
}

export interface Applied {
  readonly state: PoolState;
  readonly result: ApplyResult;
}

/**
 * Applies one committed log entry. Pure: `state` is not modified and the same
 * (state, index, envelope) always yields an equal result.
 *
 * The command is validated again here even though proposers validate first: the log
 * may hold entries from another version or a buggy proposer, and an INVALID outcome on
 * every replica is better than an exception that stops every replica's apply loop.
 */
export function applyCommand(state: PoolState, index: number, envelope: CommandEnvelope, options: ApplyOptions = {}): Applied {
  assertNextIndex(state, index);
  const skip = (outcome: CommandOutcome, at = index, duplicate = false): Applied => ({
    state: advanceIndex(state, index),
    result: Object.freeze({ index: at, outcome, duplicate }),
  });

  let requestId: string;
  let command: PoolCommand;
  try {
    const e: Partial<CommandEnvelope> = typeof envelope === 'object' && envelope !== null ? envelope : {};
    requestId = validateRequestId(e.requestId);
    command = validateCommand(e.command);
  } catch (err) {
    return skip(invalidOutcome(err));
  }

  const fingerprint = fingerprintOf(command);
  const seen = lookupRequest(state.requests, requestId);
  if (seen !== undefined) {
    if (seen.fingerprint === fingerprint) return skip(seen.outcome, seen.index, true);
    return skip(
      deepFreeze({
        ok: false,
        code: 'CONFLICT',
        message: `request id "${requestId}" was already used at index ${seen.index} for a different command`,
      }),
    );
  }

  const draft = new Draft(state, index);
  const outcome = deepFreeze(draft.run(command));
  const { servers, settings, cluster } = outcome.ok ? draft.commit() : state;
  const requests = rememberRequest(state.requests, { requestId, index, fingerprint, outcome }, options.limits ?? DEFAULT_REQUEST_LIMITS);
  const audited = auditEntryFor(index, requestId, command, auditMetaOf((envelope as { meta?: unknown }).meta), outcome);
  const audit = audited === undefined ? state.audit : appendAudit(state.audit, audited, options.auditRetention);
  return {
    state: Object.freeze({ appliedIndex: index, settings, servers, requests, cluster, audit }),
    result: Object.freeze({ index, outcome, duplicate: false }),
  };
}

/**
 * Applies one committed configuration-change entry (`cc` undefined: its payload was
 * unreadable). The member records change exactly as the Raft core's configuration does
 * — whatever the context says, since the core applied the change regardless — and the
 * context's request id is remembered like a write's, so a retried membership request
 * is answered, not applied twice. Pure, like applyCommand.
 */
export function applyConfChangeEntry(state: PoolState, index: number, cc: ConfChange | undefined, options: ApplyOptions = {}): Applied {
  assertNextIndex(state, index);
  let envelope: MemberChangeEnvelope | undefined;
  let invalid: CommandOutcome | undefined;
  if (cc?.context !== undefined) {
    try {
      envelope = parseMemberChangeContext(cc);
    } catch (err) {
      invalid = invalidOutcome(err);
    }
  }
  const applied = cc === undefined ? undefined : applyRoleChange(state.cluster, cc, envelope?.command, index);
  const cluster = applied?.cluster ?? state.cluster;
  let outcome: CommandOutcome =
    applied !== undefined
      ? { ok: true, status: 'member', change: applied.change, member: applied.member }
      : { ok: false, code: 'CONFLICT', message: cc === undefined ? 'unreadable configuration change' : `configuration change refused: ${describeRefusal(state, cc)}` };
  if (invalid !== undefined) outcome = invalid;
  outcome = deepFreeze(outcome);
  let requests = state.requests;
  let audit = state.audit;
  let result: ApplyResult = Object.freeze({ index, outcome, duplicate: false });
  if (envelope !== undefined) {
    const fingerprint = fingerprintOf(envelope.command);
    const seen = lookupRequest(state.requests, envelope.requestId);
    if (seen === undefined) {
      requests = rememberRequest(state.requests, { requestId: envelope.requestId, index, fingerprint, outcome }, options.limits ?? DEFAULT_REQUEST_LIMITS);
      // Only a change asked for through the membership API has a context: the seed
      // configuration a cluster starts from is no one's change and is not audited.
      const audited = auditEntryFor(index, envelope.requestId, envelope.command, envelope.meta, outcome);
      if (audited !== undefined) audit = appendAudit(state.audit, audited, options.auditRetention);
    } else if (seen.fingerprint === fingerprint) {
      // Leaders never propose a remembered request again; should one reach the log
      // anyway, its answer is the first one's (the configuration moved all the same).
      result = Object.freeze({ index: seen.index, outcome: seen.outcome, duplicate: true });
    } else {
      const conflict: CommandOutcome = { ok: false, code: 'CONFLICT', message: `request id "${envelope.requestId}" was already used at index ${seen.index} for a different command` };
      result = Object.freeze({ index, outcome: deepFreeze(conflict), duplicate: false });
    }
  }
  return { state: Object.freeze({ ...state, appliedIndex: index, cluster, requests, audit }), result };
}

function describeRefusal(state: PoolState, cc: ConfChange): string {
  const why = applyConfChange(confStateOf(state.cluster), cc);
  return typeof why === 'string' ? why : `${cc.type} ${cc.nodeId}`;
}

/**
 * Moves the applied index over a log entry that is not a pool command (a leader's no-op,
 * a membership change) so the applied index stays equal to the log's.
 */
export function advanceIndex(state: PoolState, index: number): PoolState {
  assertNextIndex(state, index);
  return Object.freeze({ ...state, appliedIndex: index });
}

function assertNextIndex(state: PoolState, index: number): void {
  if (!Number.isSafeInteger(index) || index <= state.appliedIndex) {
    throw new RangeError(`cannot apply index ${index}: already applied up to ${state.appliedIndex}`);
  }
}

function invalidOutcome(err: unknown): CommandOutcome {
  if (!(err instanceof StoreError)) throw err;
  return deepFreeze({ ok: false, code: 'INVALID', message: err.message, ...(err.field === undefined ? {} : { field: err.field }) });
}

type ServerPatch = Pick<UpdateServerCommand, 'weight' | 'healthCheck' | 'draining'>;

/**
 * The working copy for one command: the changes it makes, laid over the base state's
 * table, so a failed command (or a failed Batch sub-command) is discarded by not
 * committing the draft. Reads and iteration see the base as a Map would after the same
 * sets and deletes; commit() applies the changes to the persistent table, at a cost
 * that depends on how many servers the command touched, not on the pool's size.
 */
class Draft {
  /** Servers written by this command: the new record, or null when removed. In first-write order, like a Map. */
  private readonly changed = new Map<string, ServerRecord | null>();
  /** Ids removed at some point (a later add puts them last, as Map.delete + Map.set would). */
  private readonly removed = new Set<string>();
  private settings: PoolSettings;
  private cluster: ClusterState;

  constructor(
    private readonly base: PoolState,
    private readonly index: number,
  ) {
    this.settings = base.settings;
    this.cluster = base.cluster;
  }

  run(command: PoolCommand): CommandOutcome {
    try {
      return this.dispatch(command);
    } catch (err) {
      return invalidOutcome(err);
    }
  }

  commit(): Pick<PoolState, 'servers' | 'settings' | 'cluster'> {
    let servers = this.base.servers;
    const fresh: ServerRecord[] = [];
    for (const [id, record] of this.changed) {
      if (record === null) servers = servers.without(id);
      // Created by this command: placed after the others below.
      else if (record.createdIndex === this.index) {
        servers = servers.without(id);
        fresh.push(record);
      } else servers = servers.with(record);
    }
    // Servers created by one command share createdIndex; order them by id so the
    // canonical order does not depend on the order of sub-commands within a Batch.
    fresh.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const record of fresh) servers = servers.with(record);
    return { servers, settings: this.settings, cluster: this.cluster };
  }

  private read(id: string): ServerRecord | undefined {
    const record = this.changed.get(id);
    if (record !== undefined) return record ?? undefined;
    return this.base.servers.get(id);
  }

  private set(id: string, record: ServerRecord): void {
    if (this.removed.has(id)) {
      // Map semantics: a key set again after a delete goes last.
      this.removed.delete(id);
      this.changed.delete(id);
    }
    this.changed.set(id, record);
  }

  private remove(id: string): void {
    this.changed.set(id, null);
    this.removed.add(id);
  }

  /** The draft's servers in the order a Map copied from the base and then written would give. */
  private *servers(): Generator<ServerRecord> {
    for (const r of this.base.servers.values()) {
      const c = this.changed.get(r.id);
      if (c === undefined) yield r;
      else if (c !== null && !this.removed.has(r.id) && !this.isReAdded(r.id)) yield c;
    }
    for (const [id, c] of this.changed) {
      if (c !== null && (!this.base.servers.has(id) || this.isReAdded(id))) yield c;
    }
  }

  /** Removed and added again within this command (its key then went last). */
  private isReAdded(id: string): boolean {
    const c = this.changed.get(id);
    return c !== null && c !== undefined && this.base.servers.has(id) && c.createdIndex === this.index;
  }

  private dispatch(command: PoolCommand): CommandOutcome {
    switch (command.type) {
      case 'AddServer': {
        const id = serverId(command.ip, command.port);
        const existing = this.read(id);
        // Re-adding is idempotent: the given fields are applied as an update.
        if (existing !== undefined) return this.patch(existing, command);
        if (command.healthCheck !== undefined) this.checkOverrides(command.healthCheck, 'healthCheck');
        const server = makeRecord({
          id,
          ip: command.ip,
          port: command.port,
          weight: command.weight ?? 1,
          healthCheck: command.healthCheck ?? {},
          draining: false,
          createdIndex: this.index,
          updatedIndex: this.index,
        });
        this.set(id, server);
        return { ok: true, status: 'created', server };
      }
      case 'RemoveServer': {
        const id = serverId(command.ip, command.port);
        const existing = this.read(id);
        if (existing === undefined) return notFound(id);
        this.remove(id);
        return { ok: true, status: 'removed', server: existing };
      }
      case 'UpdateServer': {
        const id = serverId(command.ip, command.port);
        const existing = this.read(id);
        return existing === undefined ? notFound(id) : this.patch(existing, command);
      }
      case 'UpdateSettings':
        this.settings = this.mergeSettings(command);
        return { ok: true, status: 'settings', settings: this.settings };
      case 'Batch': {
        const results: CommandOutcome[] = [];
        for (const [i, sub] of command.commands.entries()) {
          const outcome = this.run(sub);
          if (!outcome.ok) {
            const field = outcome.field === undefined ? `commands[${i}]` : `commands[${i}].${outcome.field}`;
            return { ok: false, code: outcome.code, message: `commands[${i}]: ${outcome.message}`, field };
          }
          results.push(outcome);
        }
        return { ok: true, status: 'batch', results };
      }
      case 'UpdateMember': {
        const { cluster, outcome } = updateMember(this.cluster, command, this.index);
        this.cluster = cluster;
        return outcome;
      }
      case 'InitCluster': {
        const { cluster, outcome } = initCluster(this.cluster, command.clusterId);
        this.cluster = cluster;
        return outcome;
      }
    }
  }

  private patch(existing: ServerRecord, patch: ServerPatch): CommandOutcome {
    const weight = patch.weight ?? existing.weight;
    const healthCheck = patch.healthCheck ?? existing.healthCheck;
    const draining = patch.draining ?? existing.draining;
    if (weight === existing.weight && draining === existing.draining && jsonEqual(healthCheck, existing.healthCheck)) {
      return { ok: true, status: 'unchanged', server: existing };
    }
    if (patch.healthCheck !== undefined) this.checkOverrides(patch.healthCheck, 'healthCheck');
    const server = makeRecord({ ...existing, weight, healthCheck, draining, updatedIndex: this.index });
    this.set(existing.id, server);
    return { ok: true, status: 'updated', server };
  }

  /** A server's overrides must still form a valid check once laid over the pool defaults. */
  private checkOverrides(overrides: HealthCheckOverrides, prefix: string): void {
    checkTimeoutBeforeInterval(effectiveHealthCheck(this.settings, { healthCheck: overrides }), overrides, prefix);
  }

  private mergeSettings(command: UpdateSettingsCommand): PoolSettings {
    const current = this.settings;
    // Unchanged parts keep their identity so consumers can diff settings by reference.
    const healthCheck = keepIfEqual<HealthCheckSpec>(current.healthCheck, { ...current.healthCheck, ...command.healthCheck });
    const passiveHealth = keepIfEqual(current.passiveHealth, { ...current.passiveHealth, ...command.passiveHealth });
    const merged: PoolSettings = { balancer: command.balancer ?? current.balancer, healthCheck, passiveHealth };
    if (jsonEqual(merged, current)) return current;
    checkTimeoutBeforeInterval(healthCheck, command.healthCheck ?? {}, 'healthCheck');
    checkPassiveHealthConsistency(passiveHealth, 'passiveHealth');
    // New defaults must not invalidate a server's overrides; say which server blocks it.
    for (const server of this.servers()) {
      const spec = effectiveHealthCheck(merged, server);
      if (spec.timeoutMs >= spec.intervalMs) {
        fail(
          join('healthCheck', command.healthCheck?.timeoutMs !== undefined ? 'timeoutMs' : 'intervalMs'),
          `would give server ${server.id} timeoutMs ${spec.timeoutMs} >= intervalMs ${spec.intervalMs}; change its override first`,
        );
      }
    }
    return deepFreeze(merged);
  }
}

function keepIfEqual<T>(current: T, next: T): T {
  return jsonEqual(current, next) ? current : next;
}

/** Blames whichever of the two fields the command itself set. */
function checkTimeoutBeforeInterval(spec: HealthCheckSpec, given: HealthCheckOverrides, prefix: string): void {
  if (spec.timeoutMs < spec.intervalMs) return;
  if (given.intervalMs !== undefined && given.timeoutMs === undefined) {
    fail(join(prefix, 'intervalMs'), `must be greater than the effective timeoutMs (${spec.timeoutMs})`);
  }
  fail(join(prefix, 'timeoutMs'), `must be less than the effective intervalMs (${spec.intervalMs})`);
}

function notFound(id: string): CommandOutcome {
  return { ok: false, code: 'NOT_FOUND', message: `server ${id} is not in the pool` };
}

/** Fixed key order keeps serialised records byte-identical across replicas. */
function makeRecord(r: ServerRecord): ServerRecord {
  return deepFreeze({
    id: r.id,
    ip: r.ip,
    port: r.port,
    weight: r.weight,
    healthCheck: r.healthCheck,
    draining: r.draining,
    createdIndex: r.createdIndex,
    updatedIndex: r.updatedIndex,
  });
}
