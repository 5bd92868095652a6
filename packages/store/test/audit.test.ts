import test from 'ava';
import { appendAudit, auditAfter, auditFrom, auditMetaOf, EMPTY_AUDIT, parseAuditEntry, type AuditEntry } from '../src/pool/audit.js';

const entry = (index: number): AuditEntry => ({ index, at: 1_000 + index, nodeId: 'n1', client: '127.0.0.1', idempotencyKey: `k${index}`, command: { type: 'AddServer', ip: '10.0.0.1', port: index }, result: 'created' });

test('the log keeps the newest entries up to the retention, oldest first', (t) => {
  let log = EMPTY_AUDIT;
  for (let i = 1; i <= 7; i++) log = appendAudit(log, entry(i), 5);
  t.deepEqual(log.map((e) => e.index), [3, 4, 5, 6, 7]);
  t.true(Object.isFrozen(log) && Object.isFrozen(log[0]));
  t.deepEqual(EMPTY_AUDIT, [], 'appending never changes the log it was given');
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
