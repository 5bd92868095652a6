// The audit log: its building blocks, what the state machine records (pool, settings and
// membership changes), retention, and its way through snapshots and LevelDB.
import test from 'ava';
import { MemoryLevel } from 'memory-level';
import { bootstrapEntries, decodeConfChange } from '@weldr/raft';
import { appendAudit, auditAfter, auditFrom, auditMetaOf, AUDIT_BATCH_SHOWN, EMPTY_AUDIT, parseAuditEntry, type AuditEntry, type AuditMeta } from '../src/pool/audit.js';
import {
  applyCommand,
  applyConfChangeEntry,
  AUDIT_RETENTION,
  deserializeState,
  fullStateOps,
  initialState,
  loadState,
  memberConfChange,
  serializeState,
  snapshotOf,
  stateWriteOps,
  UTF8,
  type CommandEnvelope,
  type PoolCommand,
  type PoolDb,
} from '../src/index.js';

const entry = (index: number): AuditEntry => ({ index, at: 1_000 + index, nodeId: 'n1', client: '127.0.0.1', idempotencyKey: `k${index}`, command: { type: 'AddServer', ip: '10.0.0.1', port: index }, result: 'created' });

test('the log keeps the newest entries up to the retention, oldest first', (t) => {
  let log = EMPTY_AUDIT;
  for (let i = 1; i <= 7; i++) log = appendAudit(log, entry(i), 5);
  t.deepEqual(log.map((e) => e.index), [3, 4, 5, 6, 7]);
  t.true(Object.isFrozen(log.at(0)), 'entries are frozen (the array is not: see AuditLog)');
  t.deepEqual([...EMPTY_AUDIT], [], 'appending never changes the log it was given');
});

test('versions share one array and never see each other\'s entries: appends to the newest, to an older one (a branch), past the retention', (t) => {
  // Every version made along the way, with the indexes it must hold for ever.
  const versions: { log: typeof EMPTY_AUDIT; want: number[] }[] = [{ log: EMPTY_AUDIT, want: [] }];
  const retention = 4;
  let rng = 7;
  const next = (): number => (rng = (rng * 1103515245 + 12345) % 2 ** 31);
  for (let i = 1; i <= 400; i++) {
    // Mostly the newest version (the state machine's case), sometimes an older one.
    const from = next() % 5 === 0 ? versions[next() % versions.length]! : versions[versions.length - 1]!;
    const log = appendAudit(from.log, entry(i), retention);
    versions.push({ log, want: [...from.want, i].slice(-retention) });
  }
  for (const { log, want } of versions) {
    t.deepEqual([...log].map((e) => e.index), want);
    t.is(log.length, want.length);
    t.deepEqual(log.map((e) => e.index), want);
    t.deepEqual(log.slice(1, 3).map((e) => e.index), want.slice(1, 3));
    t.is(log.at(-1)?.index, want.at(-1));
    t.is(log.at(want.length), undefined);
    t.deepEqual(JSON.parse(JSON.stringify(log)).map((e: AuditEntry) => e.index), want, 'as JSON: the entries');
  }
  t.true(Object.isFrozen(versions[1]!.log), 'a log cannot be changed from outside');
});

test('auditAfter pages by index', (t) => {
  let log = EMPTY_AUDIT;
  for (const i of [2, 5, 9, 12]) log = appendAudit(log, entry(i));
  t.deepEqual(auditAfter(log, 0, 2).map((e) => e.index), [2, 5]);
  t.deepEqual(auditAfter(log, 5, 100).map((e) => e.index), [9, 12]);
  t.deepEqual(auditAfter(log, 4, 1).map((e) => e.index), [5]);
  t.deepEqual(auditAfter(log, 12, 10), []);
});

test('envelope metadata is checked, and dropped when malformed rather than refusing the write', (t) => {
  t.deepEqual(auditMetaOf({ at: 5, nodeId: 'n2', client: '::1' }), { at: 5, nodeId: 'n2', client: '::1' });
  t.deepEqual(auditMetaOf({ at: 5, nodeId: 'n2' }), { at: 5, nodeId: 'n2' });
  for (const bad of [undefined, null, [], { at: -1, nodeId: 'n1' }, { at: 1.5, nodeId: 'n1' }, { at: 1, nodeId: '' }, { at: 1, nodeId: 'n 1' }, { at: 1, nodeId: 'n1', client: '' }, { at: 1, nodeId: 'n1', client: 'x'.repeat(200) }]) {
    t.is(auditMetaOf(bad), undefined, JSON.stringify(bad));
  }
});

test('entries loaded from disk or a snapshot are checked like the rest of the state', (t) => {
  t.deepEqual(parseAuditEntry(entry(3), 'audit[0]', 10), entry(3));
  t.throws(() => parseAuditEntry({ ...entry(3), extra: 1 }, 'audit[0]', 10), { message: /audit\[0\]\.extra is not a known field/ });
  t.throws(() => parseAuditEntry(entry(11), 'audit[0]', 10), { message: /audit\[0\]\.index/ });
  t.throws(() => parseAuditEntry({ ...entry(3), command: { ip: 'x' } }, 'audit[0]', 10), { message: /command\.type/ });
  t.throws(() => auditFrom([entry(3), entry(3)]), { message: /increasing/ });
});

// ---- in the state machine -----------------------------------------------------------------

const via = (nodeId: string, client?: string, at = 1_700_000_000_000): AuditMeta => ({ at, nodeId, ...(client === undefined ? {} : { client }) });

test('every applied pool and settings change is recorded with its index, time, receiving node, client and idempotency key', (t) => {
  let state = initialState();
  const apply = (requestId: string, command: PoolCommand, meta?: unknown) => {
    const r = applyCommand(state, state.appliedIndex + 1, { requestId, command, ...(meta === undefined ? {} : { meta }) } as CommandEnvelope);
    state = r.state;
    return r.result;
  };
  apply('k-add', { type: 'AddServer', ip: '10.0.0.1', port: 80 }, via('n2', '192.0.2.7'));
  apply('k-set', { type: 'UpdateSettings', balancer: 'least-connections' }, via('n1', '::1', 1_700_000_000_500));
  apply('k-gone', { type: 'RemoveServer', ip: '10.0.0.9', port: 80 }, via('n1')); // NOT_FOUND: nothing applied
  apply('k-add', { type: 'AddServer', ip: '10.0.0.1', port: 80 }, via('n3')); // a retry: the first answer, no entry
  apply('k-bad-meta', { type: 'UpdateServer', ip: '10.0.0.1', port: 80, weight: 5 }, { at: 'yesterday', nodeId: 'n1' });
  t.deepEqual([...state.audit], [
    { index: 1, at: 1_700_000_000_000, nodeId: 'n2', client: '192.0.2.7', idempotencyKey: 'k-add', command: { type: 'AddServer', ip: '10.0.0.1', port: 80 }, result: 'created' },
    { index: 2, at: 1_700_000_000_500, nodeId: 'n1', client: '::1', idempotencyKey: 'k-set', command: { type: 'UpdateSettings', balancer: 'least-connections' }, result: 'settings' },
    // Malformed metadata is dropped (the change still applies, on every replica alike).
    { index: 5, at: 0, nodeId: '', idempotencyKey: 'k-bad-meta', command: { type: 'UpdateServer', ip: '10.0.0.1', port: 80, weight: 5 }, result: 'updated' },
  ]);
  t.true(Object.isFrozen(state.audit.at(0)) && Object.isFrozen(state.audit.at(0)?.command));
  t.is(snapshotOf(state).audit, state.audit, 'the snapshot the admin API reads carries the log');
});

test('a large Batch is recorded with its first sub-commands and how many more', (t) => {
  const commands = Array.from({ length: 25 }, (_, i) => ({ type: 'AddServer' as const, ip: '10.0.1.1', port: i + 1 }));
  const { state } = applyCommand(initialState(), 1, { requestId: 'b', command: { type: 'Batch', commands }, meta: via('n1') });
  const [entry] = state.audit;
  t.is(entry?.result, 'batch');
  t.is((entry?.command['commands'] as unknown[]).length, AUDIT_BATCH_SHOWN);
  t.is(entry?.command['more'], 25 - AUDIT_BATCH_SHOWN);
  const small = applyCommand(initialState(), 1, { requestId: 'b', command: { type: 'Batch', commands: commands.slice(0, 2) } }).state.audit.at(0);
  t.is(small?.command['more'], undefined);
});

test('retention: only the newest entries are kept, identically on every replica', (t) => {
  let a = initialState();
  let b = initialState();
  for (let i = 1; i <= 12; i++) {
    const envelope: CommandEnvelope = { requestId: `k${i}`, command: { type: 'AddServer', ip: '10.0.0.1', port: i }, meta: via('n1') };
    a = applyCommand(a, i, envelope, { auditRetention: 4 }).state;
    b = applyCommand(b, i, envelope, { auditRetention: 4 }).state;
  }
  t.deepEqual(a.audit.map((e) => e.index), [9, 10, 11, 12]);
  t.is(serializeState(a), serializeState(b));
  t.is(AUDIT_RETENTION, 1000);
});

test('membership changes are recorded from their context; the seed configuration is no one\'s change', (t) => {
  let state = initialState();
  for (const e of bootstrapEntries(['n1', 'n2', 'n3'])) state = applyConfChangeEntry(state, e.index, decodeConfChange(e.data)).state;
  t.deepEqual([...state.audit], []);
  const cc = memberConfChange({ requestId: 'join-n4', command: { type: 'AddMember', id: 'n4', raftAddress: '10.0.0.4:8688', adminAddress: '10.0.0.4:8687', autoPromote: true }, meta: via('n2', '10.0.0.4') });
  state = applyConfChangeEntry(state, 4, cc).state;
  state = applyConfChangeEntry(state, 5, memberConfChange({ requestId: 'auto-promote-n4-4', command: { type: 'PromoteMember', id: 'n4' }, meta: via('n1') })).state;
  // The same change again (a retry that reached the log): answered, not recorded twice.
  state = applyConfChangeEntry(state, 6, cc).state;
  t.deepEqual(
    state.audit.map((e) => [e.index, e.nodeId, e.client, e.idempotencyKey, e.command['type'], e.result]),
    [
      [4, 'n2', '10.0.0.4', 'join-n4', 'AddMember', 'added'],
      [5, 'n1', undefined, 'auto-promote-n4-4', 'PromoteMember', 'promoted'],
    ],
  );
  // A context from an older proposer (no meta) still records the change, undated.
  state = applyConfChangeEntry(state, 7, memberConfChange({ requestId: 'rm-n4', command: { type: 'RemoveMember', id: 'n4' } })).state;
  t.like(state.audit.at(2), { index: 7, at: 0, nodeId: '', result: 'removed' });
});

test('the log travels in snapshots and LevelDB: serialised, loaded and diffed exactly', async (t) => {
  let state = initialState();
  for (let i = 1; i <= 9; i++) state = applyCommand(state, i, { requestId: `k${i}`, command: { type: 'AddServer', ip: '10.0.0.1', port: i }, meta: via('n1', '::1') }, { auditRetention: 3 }).state;
  const restored = deserializeState(serializeState(state));
  t.deepEqual([...restored.audit], [...state.audit]);
  const db = new MemoryLevel<string, string>() as unknown as PoolDb;
  t.teardown(() => db.close());
  let prev = initialState();
  await db.batch(fullStateOps(prev), UTF8);
  // Step by step, each write a diff: entries that fell off are deleted.
  for (let i = 1; i <= 9; i++) {
    const next = applyCommand(prev, i, { requestId: `k${i}`, command: { type: 'AddServer', ip: '10.0.0.1', port: i }, meta: via('n1', '::1') }, { auditRetention: 3 }).state;
    await db.batch(stateWriteOps(prev, next), UTF8);
    prev = next;
  }
  t.deepEqual([...(await loadState(db))!.audit], [...state.audit]);
  t.deepEqual(await db.keys({ gte: 'pool/audit/', lt: 'pool/audit0', ...UTF8 }).all(), ['pool/audit/0000000000000007', 'pool/audit/0000000000000008', 'pool/audit/0000000000000009']);
});
