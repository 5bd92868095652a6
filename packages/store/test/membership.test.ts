// Member records as replicated state: configuration-change entries (with and without
// a context), UpdateMember / InitCluster, agreement with the Raft core's configuration,
// serialisation and the LevelDB layout.
import test from 'ava';
import { MemoryLevel } from 'memory-level';
import { applyConfChange, bootstrapEntries, decodeConfChange, EMPTY_CONF_STATE, type ConfChange, type ConfState } from '@weldr/raft';
import {
  applyCommand,
  applyConfChangeEntry,
  confStateOf,
  deserializeState,
  fullStateOps,
  initialState,
  loadState,
  memberConfChange,
  serializeState,
  stateWriteOps,
  UTF8,
  validateAdminAddress,
  validateHostPort,
  type MemberChangeEnvelope,
  type PoolDb,
  type PoolState,
} from '../src/index.js';

const add = (id: string, extra: object = {}): MemberChangeEnvelope => ({
  requestId: `add-${id}`,
  command: { type: 'AddMember', id, raftAddress: `10.0.0.${id.slice(1)}:8688`, adminAddress: `10.0.0.${id.slice(1)}:8687`, autoPromote: true, ...extra },
});

/** A new cluster's bootstrap entries applied, as every seed member does. */
function bootstrapped(voters: readonly string[]): PoolState {
  let state = initialState();
  for (const e of bootstrapEntries(voters)) state = applyConfChangeEntry(state, e.index, decodeConfChange(e.data)).state;
  return state;
}

function next(state: PoolState, cc: ConfChange | undefined) {
  return applyConfChangeEntry(state, state.appliedIndex + 1, cc);
}

test('the bootstrap entries of a new cluster make voter records without addresses', (t) => {
  const state = bootstrapped(['n2', 'n1', 'n3']);
  t.is(state.appliedIndex, 3);
  t.deepEqual([...state.cluster.members.keys()], ['n1', 'n2', 'n3']);
  t.deepEqual(state.cluster.members.get('n1'), { id: 'n1', role: 'voter', autoPromote: true, addedIndex: 1, updatedIndex: 1 });
  t.deepEqual(confStateOf(state.cluster), { voters: ['n1', 'n2', 'n3'], learners: [] });
  t.is(state.cluster.clusterId, null);
});

test('AddMember → learner with addresses; PromoteMember → voter; RemoveMember → gone; each remembered like a write', (t) => {
  let state = bootstrapped(['n1', 'n2', 'n3']);
  const added = next(state, memberConfChange(add('n4', { proxyAddress: '10.0.0.4:8080', incarnation: 'abc' })));
  state = added.state;
  t.like(added.result, { index: 4, duplicate: false, outcome: { ok: true, status: 'member', change: 'added' } });
  t.deepEqual(state.cluster.members.get('n4'), {
    id: 'n4',
    role: 'learner',
    raftAddress: '10.0.0.4:8688',
    adminAddress: '10.0.0.4:8687',
    proxyAddress: '10.0.0.4:8080',
    autoPromote: true,
    incarnation: 'abc',
    addedIndex: 4,
    updatedIndex: 4,
  });
  const promoted = next(state, memberConfChange({ requestId: 'p4', command: { type: 'PromoteMember', id: 'n4' } }));
  state = promoted.state;
  t.like(promoted.result.outcome, { ok: true, change: 'promoted', member: { id: 'n4', role: 'voter', addedIndex: 4, updatedIndex: 5 } });
  const removed = next(state, memberConfChange({ requestId: 'r2', command: { type: 'RemoveMember', id: 'n2' } }));
  state = removed.state;
  t.like(removed.result.outcome, { ok: true, change: 'removed', member: { id: 'n2' } });
  t.deepEqual(confStateOf(state.cluster), { voters: ['n1', 'n3', 'n4'], learners: [] });
  // The request ids are in the idempotency table with their outcomes.
  const replay = applyCommand(state, state.appliedIndex + 1, { requestId: 'add-n4', command: { type: 'InitCluster', clusterId: 'x' } });
  t.like(replay.result.outcome, { ok: false, code: 'CONFLICT' }, 'a pool write reusing a membership request id is a conflict');
});

test('a change the Raft core refuses only moves the index on every replica; a context that does not match the change is ignored, the change is not', (t) => {
  const state = bootstrapped(['n1', 'n2', 'n3']);
  const refused = next(state, memberConfChange(add('n2')));
  t.is(refused.state.appliedIndex, 4);
  t.is(refused.state.cluster, state.cluster, 'records untouched: the core ignores an addLearner of a voter too');
  t.like(refused.result.outcome, { ok: false, code: 'CONFLICT' });
  t.regex((refused.result.outcome as { message: string }).message, /already a voter|voter/);
  // A context for n5 on a change about n4: the core adds n4 (it reads only type and id), so the records do too.
  const mismatched = next(state, { type: 'addLearner', nodeId: 'n4', context: JSON.stringify({ requestId: 'x', command: add('n5').command }) });
  t.deepEqual(mismatched.state.cluster.members.get('n4'), { id: 'n4', role: 'learner', autoPromote: true, addedIndex: 4, updatedIndex: 4 });
  t.like(mismatched.result.outcome, { ok: false, code: 'INVALID' });
  const garbage = next(state, { type: 'removeNode', nodeId: 'n3', context: '{not json' });
  t.deepEqual(confStateOf(garbage.state.cluster), { voters: ['n1', 'n2'], learners: [] });
  const unreadable = next(state, undefined);
  t.is(unreadable.state.cluster, state.cluster);
  t.is(unreadable.state.appliedIndex, 4);
});

test('a configuration-change entry whose request id was already applied answers with the first outcome', (t) => {
  let state = bootstrapped(['n1']);
  state = next(state, memberConfChange(add('n4'))).state;
  state = next(state, memberConfChange({ requestId: 'rm', command: { type: 'RemoveMember', id: 'n4' } })).state;
  const again = next(state, memberConfChange(add('n4')));
  t.true(again.result.duplicate);
  t.is(again.result.index, 2);
  t.true(again.state.cluster.members.has('n4'), 'the configuration moved all the same, as in the Raft core');
  const other = next(state, memberConfChange({ requestId: 'add-n4', command: add('n9').command }));
  t.like(other.result.outcome, { ok: false, code: 'CONFLICT' });
});

test('the records follow the Raft core configuration over random change sequences', (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed % n;
  };
  for (let run = 0; run < 20; run++) {
    let state = bootstrapped(['n1', 'n2', 'n3']);
    let raft: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
    for (let i = 0; i < 60; i++) {
      const id = `n${rnd(7) + 1}`;
      const type = (['addLearner', 'addVoter', 'removeNode'] as const)[rnd(3)]!;
      const withContext = rnd(3) !== 0;
      const command = type === 'addLearner' ? add(id).command : { type: type === 'addVoter' ? ('PromoteMember' as const) : ('RemoveMember' as const), id };
      const cc: ConfChange = withContext ? memberConfChange({ requestId: `r${run}-${i}`, command }) : { type, nodeId: id };
      const core = applyConfChange(raft, cc);
      if (typeof core !== 'string') raft = core;
      state = next(state, cc).state;
      t.deepEqual(confStateOf(state.cluster), { voters: [...raft.voters], learners: [...raft.learners] }, `run ${run}, step ${i}`);
    }
  }
  t.deepEqual(confStateOf(initialState().cluster), EMPTY_CONF_STATE);
});

test('UpdateMember sets addresses, sets the incarnation once, and refuses another one', (t) => {
  let state = bootstrapped(['n1', 'n2']);
  const apply = (command: object, requestId = `u${state.appliedIndex}`) => {
    const r = applyCommand(state, state.appliedIndex + 1, { requestId, command: command as never });
    state = r.state;
    return r.result.outcome;
  };
  t.like(apply({ type: 'UpdateMember', id: 'n9', adminAddress: '10.0.0.9:1' }), { ok: false, code: 'NOT_FOUND' });
  t.like(apply({ type: 'UpdateMember', id: 'n1', raftAddress: '10.0.0.1:8688', adminAddress: 'http://10.0.0.1:8687', proxyAddress: '[::1]:8080', incarnation: 'i1' }), {
    ok: true,
    change: 'updated',
    member: { raftAddress: '10.0.0.1:8688', adminAddress: 'http://10.0.0.1:8687', proxyAddress: '[::1]:8080', incarnation: 'i1', updatedIndex: 4 },
  });
  t.like(apply({ type: 'UpdateMember', id: 'n1', incarnation: 'i1' }), { ok: true, change: 'unchanged' });
  t.like(apply({ type: 'UpdateMember', id: 'n1', incarnation: 'i2' }), { ok: false, code: 'CONFLICT', field: 'incarnation' });
  t.is(state.cluster.members.get('n1')?.incarnation, 'i1');
  t.like(apply({ type: 'InitCluster', clusterId: 'c1' }), { ok: true, status: 'cluster', clusterId: 'c1' });
  t.like(apply({ type: 'InitCluster', clusterId: 'c2' }), { ok: false, code: 'CONFLICT' });
  t.is(state.cluster.clusterId, 'c1');
  t.like(apply({ type: 'Batch', commands: [{ type: 'UpdateMember', id: 'n1', adminAddress: '10.0.0.1:1' }] }), { ok: false, code: 'INVALID' });
});

test('member states serialise, load and diff into LevelDB exactly; corruption is refused', async (t) => {
  let state = bootstrapped(['n1', 'n2', 'n3']);
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  t.teardown(() => db.close());
  await db.batch(fullStateOps(state), UTF8 as never);
  const steps: ((s: PoolState) => PoolState)[] = [
    (s) => applyCommand(s, s.appliedIndex + 1, { requestId: 'init', command: { type: 'InitCluster', clusterId: 'c-1' } }).state,
    (s) => next(s, memberConfChange(add('n4'))).state,
    (s) => applyCommand(s, s.appliedIndex + 1, { requestId: 'u', command: { type: 'UpdateMember', id: 'n2', adminAddress: 'h2.example:8687' } }).state,
    (s) => next(s, memberConfChange({ requestId: 'rm', command: { type: 'RemoveMember', id: 'n1' } })).state,
  ];
  for (const step of steps) {
    const after = step(state);
    await db.batch(stateWriteOps(state, after), UTF8 as never);
    state = after;
    t.is(serializeState((await loadState(db))!), serializeState(state));
  }
  t.is(serializeState(deserializeState(serializeState(state))), serializeState(state));
  const doc = JSON.parse(serializeState(state)) as { cluster: { members: Record<string, unknown>[] } };
  const corrupt = (mutate: (d: typeof doc) => void): string => {
    const copy = structuredClone(doc);
    mutate(copy);
    return JSON.stringify(copy);
  };
  t.throws(() => deserializeState(corrupt((d) => d.cluster.members.reverse())), { message: /out of order/ });
  t.throws(() => deserializeState(corrupt((d) => (d.cluster.members[0]!.role = 'boss'))), { message: /role/ });
  t.throws(() => deserializeState(corrupt((d) => (d.cluster.members[0]!.raftAddress = 'H2.EXAMPLE:1'))), { message: /canonical/ });
  t.throws(() => deserializeState(corrupt((d) => (d.cluster.members[0]!.addedIndex = 999))), { message: /addedIndex/ });
  t.throws(() => deserializeState(corrupt((d) => (d.cluster.members[0]!.extra = 1))), { message: /extra/ });
});

test('member addresses: host:port with IP literals or DNS names, canonical, never a wildcard', (t) => {
  t.is(validateHostPort('10.0.0.1:8688', 'a'), '10.0.0.1:8688');
  t.is(validateHostPort('[0:0::1]:80', 'a'), '[::1]:80');
  t.is(validateHostPort('Weldr-0.Weldr-Peers:8688', 'a'), 'weldr-0.weldr-peers:8688');
  for (const bad of ['10.0.0.1', '::1:80', '0.0.0.0:80', '[::]:80', '10.0.0.1:0', '10.0.0.1:65536', '10.0.0.1:080', '999.1.1.1:80', 'a b:80', '[10.0.0.1]:80', 'host:port', 42]) {
    t.throws(() => validateHostPort(bad, 'raftAddress'), { message: /raftAddress/ }, String(bad));
  }
  t.is(validateAdminAddress('HTTPS://Admin.Example:8687/'), 'https://admin.example:8687');
  t.is(validateAdminAddress('127.0.0.1:8687'), '127.0.0.1:8687');
  t.throws(() => validateAdminAddress('ftp://127.0.0.1:8687'));
  t.throws(() => validateAdminAddress('http://127.0.0.1:8687/admin'));
});
