// The audit log on a real cluster: pool, settings and membership changes made through
// a follower are recorded once, in the replicated state, with the follower as the node
// that received them and the client's address it saw; another member (and a member
// that joined later) reads the same log; a snapshot document carries it.
import test from 'ava';
import { MemberCluster } from './helpers/members.js';
import { eventually } from './helpers/wait.js';

interface AuditEntry {
  readonly index: number;
  readonly at: number;
  readonly nodeId: string;
  readonly client?: string;
  readonly idempotencyKey: string;
  readonly command: { readonly type: string; readonly [k: string]: unknown };
  readonly result: string;
}
interface AuditPage {
  readonly index: number;
  readonly retention: number;
  readonly oldest: number | null;
  readonly next: number;
  readonly entries: AuditEntry[];
}

test.serial('changes made through a follower are in every member\'s audit log, with who, when and from where', async (t) => {
  t.timeout(180_000, 'a cluster of real processes, a join and a removal on a loaded machine');
  const c = await MemberCluster.seed(t, 3);
  const leader = (await c.active()).id;
  const follower = c.seeds.find((id) => id !== leader)!;
  const reader = c.seeds.find((id) => id !== leader && id !== follower)!;
  const started = Date.now();

  /** A write through `id` as a careful client makes it: one key, retried while indeterminate. */
  const write = async (id: string, method: string, path: string, key: string, body?: unknown): Promise<number> => {
    return eventually(`${method} ${path} through ${id}`, async () => {
      const r = await c.call(id, method, path, body, { 'idempotency-key': key });
      if (r.status === 503 || r.status === 504) return undefined;
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return Number(r.headers['x-weldr-index']);
    }, 30_000);
  };

  const added = await write(follower, 'POST', '/servers', 'audit-add', { ip: '127.1.2.3', port: 8001 });
  const settings = await write(follower, 'PATCH', '/settings', 'audit-settings', { balancer: 'least-connections' });
  const batch = await write(follower, 'POST', '/servers/batch', 'audit-batch', { commands: Array.from({ length: 12 }, (_, i) => ({ type: 'AddServer', ip: '127.1.2.4', port: 9000 + i })) });
  // A client that makes up the relay headers (no member's signature) is recorded as what
  // it is: a request that arrived at the node that took it, from its own address.
  const forged = await eventually('a write with made-up relay headers', async () => {
    for (const id of c.seeds) {
      const r = await c.call(id, 'POST', '/servers', { ip: '127.1.2.5', port: 8002 }, { 'idempotency-key': 'audit-forged', 'x-weldr-forwarded-by': 'n9', 'x-weldr-client-address': '203.0.113.5' });
      if (r.status === 201 || r.status === 200) return { index: Number(r.headers['x-weldr-index']), at: id };
    }
    return undefined;
  }, 30_000);
  t.is((await c.call(follower, 'DELETE', '/servers/127.9.9.9/1')).status, 404);
  // Membership: a fourth member joins through the follower; the leader promotes it by itself.
  await c.join('n4', follower);
  // The new member received the state (by snapshot or log) with the log in it.
  const onJoiner = await eventually('n4 to hold the earlier entries', async () => {
    const p = await c.read<AuditPage>('n4', '/audit?stale=true');
    return p.entries.some((e) => e.index === batch) ? p : undefined;
  }, 30_000);
  const mine = new Set(['audit-add', 'audit-settings', 'audit-batch']);
  t.deepEqual(onJoiner.entries.filter((e) => mine.has(e.idempotencyKey)).map((e) => [e.index, e.idempotencyKey, e.nodeId]), [
    [added, 'audit-add', follower],
    [settings, 'audit-settings', follower],
    [batch, 'audit-batch', follower],
  ]);
  const removed = await write(follower, 'DELETE', '/cluster/members/n4', 'audit-remove-n4');
  await c.untilConfig((conf) => !conf.some((x) => x.startsWith('n4:')));

  // Read from a member that took no part in any of it.
  const page = await eventually(`${reader} to have applied the removal`, async () => {
    const p = await c.read<AuditPage>(reader, '/audit');
    return p.entries.some((e) => e.index === removed) ? p : undefined;
  }, 30_000);
  t.is(page.retention, 1000);
  const at = (index: number): AuditEntry => {
    const e = page.entries.find((x) => x.index === index);
    if (e === undefined) throw new Error(`no audit entry at ${index}: ${JSON.stringify(page.entries)}`);
    return e;
  };
  for (const [index, key, type, result] of [
    [added, 'audit-add', 'AddServer', 'created'],
    [settings, 'audit-settings', 'UpdateSettings', 'settings'],
    [batch, 'audit-batch', 'Batch', 'batch'],
    [removed, 'audit-remove-n4', 'RemoveMember', 'removed'],
  ] as const) {
    const e = at(index);
    t.like(e, { nodeId: follower, idempotencyKey: key, result, command: { type } }, `${type} at ${index}`);
    t.is(e.client, '127.0.0.1', `${type}: the client's address as ${follower} saw it`);
    t.true(e.at >= started - 60_000 && e.at <= Date.now() + 60_000, `${type} is dated by the leader's clock`);
  }
  t.like(at(forged.index), { nodeId: forged.at, client: '127.0.0.1', idempotencyKey: 'audit-forged' }, 'made-up relay headers are not believed');
  t.is(at(batch).command['more'], 2, 'a batch of 12 keeps its first 10 commands and counts the rest');
  // The join, received by the follower from the joining process; the promotion, the leader's own.
  const joined = page.entries.find((e) => e.command.type === 'AddMember' && e.command['id'] === 'n4');
  t.like(joined, { nodeId: follower, client: '127.0.0.1', result: 'added' });
  const promoted = page.entries.find((e) => e.command.type === 'PromoteMember' && e.command['id'] === 'n4');
  t.truthy(promoted, 'the automatic promotion is recorded');
  t.is(promoted?.client, undefined, 'made by the leader itself: no client');
  t.true(c.seeds.includes(promoted?.nodeId ?? ''), 'received on (made by) a member');
  // Each change once, in log order; nothing for the refused DELETE.
  const indexes = page.entries.map((e) => e.index);
  t.deepEqual(indexes, [...new Set(indexes)].sort((a, b) => a - b));
  t.false(page.entries.some((e) => e.command.type === 'RemoveServer'));

  // Every member holds the same log (the leader's copy, linearizable, equals the reader's).
  const fromLeader = await c.read<AuditPage>(leader, `/audit?since=0&limit=500`);
  t.deepEqual(fromLeader.entries.filter((e) => e.index <= removed), page.entries.filter((e) => e.index <= removed));
  // Paging: since/limit/next walk the same entries.
  const walked: AuditEntry[] = [];
  let since = 0;
  for (;;) {
    const p = await c.read<AuditPage>(reader, `/audit?stale=true&since=${since}&limit=2`);
    if (p.entries.length === 0) break;
    walked.push(...p.entries);
    since = p.next;
  }
  t.deepEqual(walked.filter((e) => e.index <= removed), page.entries.filter((e) => e.index <= removed));

  // A backup (the state a restored or snapshot-installed member starts from) carries it.
  const backup = await c.read<{ state: { audit?: AuditEntry[] } } & Record<string, unknown>>(reader, '/cluster/snapshot');
  const carried = JSON.stringify(backup);
  for (const key of ['audit-add', 'audit-settings', 'audit-batch', 'audit-remove-n4']) t.true(carried.includes(`"idempotencyKey":"${key}"`), `the snapshot document carries ${key}`);
});
