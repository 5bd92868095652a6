// /cluster/members and /cluster/snapshot against a fake membership: validation, status
// codes, error mapping, Idempotency-Key and ?force, and the single-node answers.
import test from 'ava';
import { StoreError, type AddMemberCommand, type MemberRecord } from '@weldr/store';
import type { MembershipAdmin, MemberWriteOptions, MemberWriteResult } from '../src/index.js';
import { startAdmin } from './harness.js';

const record = (id: string, role: 'voter' | 'learner' = 'learner'): MemberRecord => ({ id, role, raftAddress: '10.0.0.4:8688', adminAddress: '10.0.0.4:8687', autoPromote: true, addedIndex: 9, updatedIndex: 9 });

class FakeMembers implements MembershipAdmin {
  readonly calls: { op: string; arg: unknown; options: MemberWriteOptions }[] = [];
  failWith: unknown;
  result: Partial<MemberWriteResult> = {};

  list = async (o: { stale: boolean }) => ({ clusterId: 'c1', leaderId: 'n1', index: o.stale ? 3 : 7, members: [record('n1', 'voter')] });
  private async run(op: string, arg: unknown, options: MemberWriteOptions, member: MemberRecord, change: MemberWriteResult['change']): Promise<MemberWriteResult> {
    this.calls.push({ op, arg, options });
    if (this.failWith !== undefined) throw this.failWith;
    return { index: 10, duplicate: false, change, member, clusterId: 'c1', ...this.result };
  }
  add = (command: AddMemberCommand, options: MemberWriteOptions) => this.run('add', command, options, record(command.id), 'added');
  promote = (id: string, options: MemberWriteOptions) => this.run('promote', id, options, record(id, 'voter'), 'promoted');
  remove = (id: string, options: MemberWriteOptions) => this.run('remove', id, options, record(id), 'removed');
  snapshot = async () => ({ index: 42, document: { format: 'weldr-snapshot', version: 1, index: 42 } });
}

test('GET /cluster/members lists the records with X-Weldr-Index; ?stale=true is passed on', async (t) => {
  const members = new FakeMembers();
  const h = await startAdmin(t, { members });
  const r = await h.call('GET', '/cluster/members');
  t.is(r.status, 200);
  t.is(r.headers['x-weldr-index'], '7');
  t.like(r.json, { clusterId: 'c1', leaderId: 'n1', members: [{ id: 'n1', role: 'voter' }] });
  t.is((await h.call('GET', '/cluster/members?stale=true')).headers['x-weldr-index'], '3');
  t.is((await h.call('GET', '/cluster/members?stale=maybe')).status, 400);
});

test('POST /cluster/members validates the body, adds a learner (201 + Location), passes Idempotency-Key and force', async (t) => {
  const members = new FakeMembers();
  const h = await startAdmin(t, { members });
  const body = { id: 'n4', raftAddress: '10.0.0.4:8688', adminAddress: 'HTTP://10.0.0.4:8687', proxyAddress: '[::1]:8080' };
  const r = await h.call('POST', '/cluster/members?force=1', { body, headers: { 'idempotency-key': 'add-n4' } });
  t.is(r.status, 201, r.text);
  t.is(r.headers.location, '/cluster/members/n4');
  t.is(r.headers['x-weldr-index'], '10');
  t.like(r.json, { id: 'n4', role: 'learner', clusterId: 'c1' });
  const { origin, ...options } = (members.calls[0] as { options: { origin?: { nodeId: string; client?: string } } }).options;
  t.deepEqual(members.calls[0], {
    op: 'add',
    arg: { type: 'AddMember', id: 'n4', raftAddress: '10.0.0.4:8688', adminAddress: 'http://10.0.0.4:8687', proxyAddress: '[::1]:8080', autoPromote: true },
    options: { force: true, timeoutMs: 5000, requestId: 'add-n4', origin },
  });
  t.deepEqual(options, { force: true, timeoutMs: 5000, requestId: 'add-n4' });
  // For the audit log: received here, from the test's loopback address.
  t.is(origin?.nodeId, 'n1');
  t.regex(origin?.client ?? '', /127\.0\.0\.1/);
  members.result = { change: 'unchanged', duplicate: true };
  const again = await h.call('POST', '/cluster/members', { body });
  t.is(again.status, 200);
  t.is(again.headers['idempotent-replayed'], 'true');
  for (const [bad, field] of [
    [{ ...body, id: '-x' }, 'id'],
    [{ ...body, raftAddress: '0.0.0.0:8688' }, 'raftAddress'],
    [{ ...body, adminAddress: 'ftp://x:1' }, 'adminAddress'],
    [{ ...body, extra: 1 }, 'extra'],
    [{ ...body, type: 'RemoveMember' }, 'type'],
    [{ id: 'n4', adminAddress: '10.0.0.4:8687' }, 'raftAddress'],
    [{ ...body, autoPromote: 'yes' }, 'autoPromote'],
  ] as const) {
    const res = await h.call('POST', '/cluster/members', { body: bad });
    t.is(res.status, 400, JSON.stringify(bad));
    t.like(res.json, { error: { code: 'INVALID_COMMAND', field } });
  }
  t.is(members.calls.length, 2, 'nothing invalid reached the membership');
  t.is((await h.call('POST', '/cluster/members?force=perhaps', { body })).status, 400);
});

test('membership errors map to their status and stable code', async (t) => {
  const members = new FakeMembers();
  const h = await startAdmin(t, { members });
  const cases: [StoreError, number][] = [
    [new StoreError('CHANGE_IN_PROGRESS', 'another membership change is in flight'), 409],
    [new StoreError('QUORUM_AT_RISK', 'removing n2 would leave …'), 409],
    [new StoreError('MEMBER_EXISTS', 'n4 is already a member', { field: 'id' }), 409],
    [new StoreError('NOT_CAUGHT_UP', 'n4 is behind'), 409],
    [new StoreError('CONFLICT', 'the last voter'), 409],
    [new StoreError('NOT_FOUND', 'n9 is not a member'), 404],
    [new StoreError('NOT_LEADER', 'not the leader', { leaderId: 'n2' }), 503],
    [new StoreError('TIMEOUT', 'did not complete'), 504],
  ];
  for (const [err, status] of cases) {
    members.failWith = err;
    const r = await h.call('DELETE', '/cluster/members/n2');
    t.is(r.status, status, err.code);
    t.is((r.json as { error: { code: string } }).error.code, err.code === 'TIMEOUT' ? 'TIMEOUT' : err.code);
  }
  members.failWith = undefined;
  t.is((await h.call('DELETE', '/cluster/members/n2')).status, 204);
  t.like(await h.call('POST', '/cluster/members/n4/promote'), { status: 200, json: { id: 'n4', role: 'voter' } });
  t.like(await h.call('DELETE', '/cluster/members/bad%20id'), { status: 400 });
});

test('GET /cluster/snapshot answers the document as an attachment', async (t) => {
  const h = await startAdmin(t, { members: new FakeMembers() });
  const r = await h.call('GET', '/cluster/snapshot');
  t.is(r.status, 200);
  t.is(r.headers['content-disposition'], 'attachment; filename="weldr-snapshot-42.json"');
  t.is(r.headers['x-weldr-index'], '42');
  t.like(r.json, { format: 'weldr-snapshot', index: 42 });
});

test('without a membership (a single node): the list is this node, writes are 409, there is nothing to back up', async (t) => {
  const h = await startAdmin(t);
  t.like(await h.call('GET', '/cluster/members'), { status: 200, json: { clusterId: null, members: [{ id: 'n1', role: 'voter' }] } });
  const add = await h.call('POST', '/cluster/members', { body: { id: 'n4', raftAddress: '10.0.0.4:1', adminAddress: '10.0.0.4:2' } });
  t.is(add.status, 409);
  t.regex((add.json as { error: { message: string } }).error.message, /single node/);
  t.is((await h.call('GET', '/cluster/snapshot')).status, 409);
});

test('membership writes need the admin token when one is set', async (t) => {
  const members = new FakeMembers();
  const h = await startAdmin(t, { members, auth: { token: 'secret-token-0123456789' } });
  t.is((await h.call('DELETE', '/cluster/members/n2')).status, 401);
  t.is((await h.call('POST', '/cluster/members/n2/promote', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 403);
  t.is((await h.call('GET', '/cluster/members')).status, 200, 'reads stay open');
  t.is(members.calls.length, 0);
});
