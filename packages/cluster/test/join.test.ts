// joinCluster against an injected fetch: retries while the cluster has no leader, the
// listing asked again once added, and what is logged at which level.
import test from 'ava';
import type { MemberRecord } from '@weldr/store';
import { joinCluster } from '../src/join.js';

const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

function record(id: string, raftAddress?: string): MemberRecord {
  return { id, role: 'voter', ...(raftAddress === undefined ? {} : { raftAddress }), adminAddress: '127.0.0.1:1', autoPromote: true, addedIndex: 1, updatedIndex: 1 } as MemberRecord;
}

test('no leader yet: retried, logged at info (routine while a cluster starts); once added, the listing is asked again until every address is known', async (t) => {
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  const log = { info: (obj: object) => void lines.push({ level: 'info', obj: obj as Record<string, unknown> }), warn: (obj: object) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown> }) };
  let gets = 0;
  let added = false;
  const fetch = (async (_url: string, init?: RequestInit) => {
    if (init?.method === 'POST') {
      added = true;
      return json(201, { ...record('n4', '127.0.0.1:4'), role: 'learner', clusterId: 'c1' });
    }
    gets++;
    if (gets <= 2) return json(503, { error: { code: 'NOT_LEADER', message: 'no leader is known' } });
    // The seeds' records fill in one by one: n2 has no address until the second listing after the add.
    const members = added ? [record('n1', '127.0.0.1:1'), record('n2', gets >= 5 ? '127.0.0.1:2' : undefined), record('n4', '127.0.0.1:4')] : [record('n1', '127.0.0.1:1'), record('n2')];
    return json(200, { clusterId: 'c1', members });
  }) as typeof globalThis.fetch;
  const answer = await joinCluster('http://127.0.0.1:9', { id: 'n4', raftAddress: '127.0.0.1:4', adminAddress: '127.0.0.1:5', incarnation: 'abc' }, { log, fetch });
  t.is(answer.clusterId, 'c1');
  t.deepEqual(answer.members.map((m) => [m.id, m.raftAddress]), [['n1', '127.0.0.1:1'], ['n2', '127.0.0.1:2'], ['n4', '127.0.0.1:4']]);
  const retries = lines.filter((l) => l.obj.event === 'join_retry');
  t.is(retries.length, 2);
  t.true(retries.every((l) => l.level === 'info'), 'routine retries are not warnings');
  t.false(lines.some((l) => l.level === 'warn'));
});
