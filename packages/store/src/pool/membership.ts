// The cluster's members as replicated state: pure functions over ClusterState used by
// the state machine. A member's Raft role changes only when a configuration-change
// entry is applied, and it changes exactly as the Raft core's configuration does
// (@weldr/raft applyConfChange on the same entries in the same order), so the records
// and the Raft configuration at any applied index agree on every replica.
import { applyConfChange, type ConfChange, type ConfState } from '@weldr/raft';
import { deepFreeze } from './json-value.js';
import type { ClusterState, CommandOutcome, MemberChange, MemberChangeCommand, MemberChangeEnvelope, MemberRecord, UpdateMemberCommand } from './types.js';
import { auditMetaOf } from './audit.js';
import { validateRequestId } from './validate.js';
import { validateMemberChange } from './validate-member.js';
import { expectObject, fail, own, rejectUnknown } from './validate-fields.js';

/** Voters and learners as the Raft core represents them (sorted ids). */
export function confStateOf(cluster: ClusterState): ConfState {
  const voters: string[] = [];
  const learners: string[] = [];
  for (const m of cluster.members.values()) (m.role === 'voter' ? voters : learners).push(m.id);
  return { voters: voters.sort(), learners: learners.sort() };
}

/** Fixed key order keeps serialised records byte-identical across replicas. */
export function makeMember(r: MemberRecord): MemberRecord {
  return deepFreeze({
    id: r.id,
    role: r.role,
    ...(r.raftAddress === undefined ? {} : { raftAddress: r.raftAddress }),
    ...(r.adminAddress === undefined ? {} : { adminAddress: r.adminAddress }),
    ...(r.proxyAddress === undefined ? {} : { proxyAddress: r.proxyAddress }),
    autoPromote: r.autoPromote,
    ...(r.incarnation === undefined ? {} : { incarnation: r.incarnation }),
    addedIndex: r.addedIndex,
    updatedIndex: r.updatedIndex,
  });
}

/** The members with `record` put in (or replaced), still in id order. */
function withMember(members: ReadonlyMap<string, MemberRecord>, record: MemberRecord): ReadonlyMap<string, MemberRecord> {
  if (members.has(record.id)) return new Map(members).set(record.id, record);
  return new Map([...members, [record.id, record] as const].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function withoutMember(members: ReadonlyMap<string, MemberRecord>, id: string): ReadonlyMap<string, MemberRecord> {
  const next = new Map(members);
  next.delete(id);
  return next;
}

/**
 * Reads a configuration change's context: a MemberChangeEnvelope whose command matches
 * the change (AddMember ↔ addLearner, PromoteMember ↔ addVoter, RemoveMember ↔
 * removeNode, same id). Throws StoreError('INVALID_COMMAND') otherwise.
 */
export function parseMemberChangeContext(cc: ConfChange): MemberChangeEnvelope {
  let doc: unknown;
  try {
    doc = JSON.parse(cc.context ?? '');
  } catch {
    fail('context', 'is not JSON');
  }
  const obj = expectObject(doc, 'context');
  rejectUnknown(obj, ['requestId', 'command', 'meta'], 'context');
  const requestId = validateRequestId(own(obj, 'requestId'), 'context.requestId');
  const command = validateMemberChange(own(obj, 'command'), 'context.command');
  // Malformed audit metadata is dropped, never a reason to refuse the change (audit.ts).
  const meta = auditMetaOf(own(obj, 'meta'));
  const expected = { addLearner: 'AddMember', addVoter: 'PromoteMember', removeNode: 'RemoveMember' }[cc.type];
  if (command.type !== expected || command.id !== cc.nodeId) {
    fail('context.command', `${command.type} ${command.id} does not describe the configuration change ${cc.type} ${cc.nodeId}`);
  }
  return meta === undefined ? { requestId, command } : { requestId, command, meta };
}

/** The entry a leader proposes for a membership change: the Raft change and its context. */
export function memberConfChange(envelope: MemberChangeEnvelope): ConfChange {
  const { command } = envelope;
  const type = command.type === 'AddMember' ? 'addLearner' : command.type === 'PromoteMember' ? 'addVoter' : 'removeNode';
  const context = { requestId: envelope.requestId, command, ...(envelope.meta === undefined ? {} : { meta: envelope.meta }) };
  return { type, nodeId: command.id, context: JSON.stringify(context) };
}

export interface RoleChange {
  readonly cluster: ClusterState;
  readonly change: MemberChange;
  readonly member: MemberRecord;
}

/**
 * Applies a configuration change the Raft core accepts to the records: undefined when
 * the core refuses it too (then only the applied index moves, on every replica alike).
 * `command` is the change's context, when it has a valid one.
 */
export function applyRoleChange(cluster: ClusterState, cc: ConfChange, command: MemberChangeCommand | undefined, index: number): RoleChange | undefined {
  if (typeof applyConfChange(confStateOf(cluster), cc) === 'string') return undefined;
  const existing = cluster.members.get(cc.nodeId);
  let member: MemberRecord;
  let change: MemberChange;
  switch (cc.type) {
    case 'addLearner': {
      const add = command?.type === 'AddMember' ? command : undefined;
      member = makeMember({
        id: cc.nodeId,
        role: 'learner',
        ...(add === undefined ? {} : { raftAddress: add.raftAddress, adminAddress: add.adminAddress }),
        ...(add?.proxyAddress === undefined ? {} : { proxyAddress: add.proxyAddress }),
        autoPromote: add?.autoPromote ?? true,
        ...(add?.incarnation === undefined ? {} : { incarnation: add.incarnation }),
        addedIndex: index,
        updatedIndex: index,
      });
      change = 'added';
      break;
    }
    case 'addVoter':
      // A learner is promoted; an unknown id (the bootstrap entries of a new cluster) is added as a voter.
      member = makeMember(existing === undefined ? { id: cc.nodeId, role: 'voter', autoPromote: true, addedIndex: index, updatedIndex: index } : { ...existing, role: 'voter', updatedIndex: index });
      change = existing === undefined ? 'added' : 'promoted';
      break;
    case 'removeNode':
      return { cluster: Object.freeze({ clusterId: cluster.clusterId, members: withoutMember(cluster.members, cc.nodeId) }), change: 'removed', member: existing! };
  }
  return { cluster: Object.freeze({ clusterId: cluster.clusterId, members: withMember(cluster.members, member) }), change, member };
}

/** UpdateMember: a member's addresses (replaced) and incarnation (set once). */
export function updateMember(cluster: ClusterState, command: UpdateMemberCommand, index: number): { cluster: ClusterState; outcome: CommandOutcome } {
  const existing = cluster.members.get(command.id);
  if (existing === undefined) return { cluster, outcome: { ok: false, code: 'NOT_FOUND', message: `${command.id} is not a member of the cluster` } };
  if (command.incarnation !== undefined && existing.incarnation !== undefined && existing.incarnation !== command.incarnation) {
    return {
      cluster,
      outcome: {
        ok: false,
        code: 'CONFLICT',
        message: `member ${command.id} is incarnation ${existing.incarnation}, not ${command.incarnation}: a node that lost its data must rejoin under a new record`,
        field: 'incarnation',
      },
    };
  }
  const next = makeMember({
    ...existing,
    ...(command.raftAddress === undefined ? {} : { raftAddress: command.raftAddress }),
    ...(command.adminAddress === undefined ? {} : { adminAddress: command.adminAddress }),
    ...(command.proxyAddress === undefined ? {} : { proxyAddress: command.proxyAddress }),
    ...(command.incarnation === undefined ? {} : { incarnation: command.incarnation }),
    updatedIndex: index,
  });
  const same =
    next.raftAddress === existing.raftAddress &&
    next.adminAddress === existing.adminAddress &&
    next.proxyAddress === existing.proxyAddress &&
    next.incarnation === existing.incarnation;
  if (same) return { cluster, outcome: { ok: true, status: 'member', change: 'unchanged', member: existing } };
  return {
    cluster: Object.freeze({ clusterId: cluster.clusterId, members: withMember(cluster.members, next) }),
    outcome: { ok: true, status: 'member', change: 'updated', member: next },
  };
}

/** InitCluster: the first cluster id applied is the cluster's for good. */
export function initCluster(cluster: ClusterState, clusterId: string): { cluster: ClusterState; outcome: CommandOutcome } {
  if (cluster.clusterId === null) {
    return { cluster: Object.freeze({ clusterId, members: cluster.members }), outcome: { ok: true, status: 'cluster', clusterId } };
  }
  if (cluster.clusterId === clusterId) return { cluster, outcome: { ok: true, status: 'cluster', clusterId } };
  return { cluster, outcome: { ok: false, code: 'CONFLICT', message: `the cluster id is already ${cluster.clusterId}` } };
}
