// The admin relay's hold (issue 11, deliverable 3): a pool write that arrives while the
// leadership moves waits for the next leader and is completed there, and is sent again
// only after a refusal that left nothing behind (NOT_LEADER, or a refused connection).
// Real HTTP servers stand in for the members' admin APIs; the target is scripted.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { forwardingListener, type ForwardTarget, type WriteTarget } from '../src/runtime/admin-forward.js';

const quiet = { debug() {}, warn() {} };

interface Seen {
  method: string;
  url: string;
  body: string;
  forwardedBy: string | undefined;
  key: string | undefined;
}

/** A member's admin API: records what it gets and answers with `answer`. */
async function member(t: import('ava').ExecutionContext, answer: (seen: Seen, n: number) => [number, unknown]): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        body: Buffer.concat(chunks).toString(),
        forwardedBy: req.headers['x-weldr-forwarded-by'] as string | undefined,
        key: req.headers['idempotency-key'] as string | undefined,
      };
      seen.push(s);
      const [status, body] = answer(s, seen.length);
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await listen(server);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function listen(server: Server): Promise<void> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r()));
}

/** A scripted view of the cluster: `now` is what writeTarget() answers. */
function scripted(initial: WriteTarget, self?: string): ForwardTarget & { now: WriteTarget } {
  const target = {
    now: initial,
    leaderAdminUrl: () => (target.now.kind === 'relay' ? { leaderId: target.now.leaderId, url: target.now.url } : null),
    writeTarget: () => target.now,
    selfAdminUrl: () => self,
  };
  return target;
}

/** The node under test: the forwarder in front of `local`. */
async function node(t: import('ava').ExecutionContext, target: ForwardTarget, local: (req: IncomingMessage, res: ServerResponse) => void, holdMs = 3000): Promise<string> {
  const server = createServer(forwardingListener(local, { nodeId: 'n1', target, timeoutMs: 5000, holdMs, log: quiet }));
  await listen(server);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A local handler that reads the body and answers as a store would: `answer(body)`. */
function localHandler(answer: (body: string) => [number, unknown], calls: string[] = []) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      calls.push(body);
      const [status, out] = answer(body);
      res.statusCode = status;
      res.statusMessage = status === 503 ? 'Service Unavailable' : 'OK';
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-local', 'yes');
      res.end(JSON.stringify(out));
    });
  };
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), headersTimeout: 10_000 });
  return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as Record<string, unknown> };
}

const notLeader = (leaderId?: string): [number, unknown] => [503, { error: { code: 'NOT_LEADER', message: 'proposal refused: transferring', ...(leaderId === undefined ? {} : { leaderId }) } }];

test('a write that arrives with no leader known waits and is relayed once one is, with its body and Idempotency-Key', async (t) => {
  const leader = await member(t, () => [201, { ok: true }]);
  const target = scripted({ kind: 'settling' });
  const local: string[] = [];
  const base = await node(t, target, localHandler(() => notLeader(), local));
  setTimeout(() => (target.now = { kind: 'relay', leaderId: 'n2', url: leader.url }), 100);
  const r = await post(base, '/servers', { ip: '10.0.0.1', port: 80 }, { 'idempotency-key': 'k-1' });
  t.is(r.status, 201);
  t.is(r.headers['x-weldr-leader'], 'n2');
  t.deepEqual(local, [], 'never handled here');
  t.is(leader.seen.length, 1);
  t.like(leader.seen[0], { method: 'POST', url: '/servers', body: JSON.stringify({ ip: '10.0.0.1', port: 80 }), forwardedBy: 'n1', key: 'k-1' });
});

test('a leader that refuses with NOT_LEADER (transferring) gets nothing applied; the write goes again to the next leader', async (t) => {
  const next = await member(t, () => [201, { ok: 'next' }]);
  const target = scripted({ kind: 'settling' });
  const old = await member(t, () => {
    // The old leader refuses; its transfer completes: the view has moved on.
    target.now = { kind: 'relay', leaderId: 'n3', url: next.url };
    return notLeader('n2');
  });
  target.now = { kind: 'relay', leaderId: 'n2', url: old.url };
  const base = await node(t, target, localHandler(() => [500, {}]));
  const r = await post(base, '/servers/batch', { commands: [] });
  t.is(r.status, 201);
  t.deepEqual(r.body, { ok: 'next' });
  t.is(old.seen.length, 1);
  t.is(next.seen.length, 1);
  t.is(next.seen[0]!.body, old.seen[0]!.body, 'the same body both times');
});

test('a NOT_LEADER answer from this node (the leadership moved between the check and the proposal) is handed to the next leader', async (t) => {
  const next = await member(t, () => [200, { ok: 'next' }]);
  const target = scripted({ kind: 'local' });
  const local: string[] = [];
  const base = await node(
    t,
    target,
    localHandler(() => {
      target.now = { kind: 'relay', leaderId: 'n2', url: next.url };
      return notLeader('n2');
    }, local),
  );
  const r = await post(base, '/servers/10.0.0.1/80?x=1', { weight: 3 });
  t.is(r.status, 200);
  t.deepEqual(r.body, { ok: 'next' });
  t.is(r.headers['x-local'], undefined, 'none of the local answer\'s headers leak into the relayed one');
  t.is(local.length, 1);
  t.is(next.seen.length, 1);
  t.like(next.seen[0], { url: '/servers/10.0.0.1/80?x=1', body: JSON.stringify({ weight: 3 }), forwardedBy: 'n1' });
});

test('when this node leads again after the body was read, the write comes back through its own admin API', async (t) => {
  const self = await member(t, () => [201, { ok: 'self' }]);
  const target = scripted({ kind: 'local' }, self.url);
  let first = true;
  const base = await node(
    t,
    target,
    localHandler(() => {
      if (!first) return [500, {}];
      first = false;
      // A transfer was started and abandoned: still the leader afterwards.
      target.now = { kind: 'settling' };
      setTimeout(() => (target.now = { kind: 'local' }), 50);
      return notLeader();
    }),
  );
  const r = await post(base, '/settings', { balancer: 'p2c' });
  t.is(r.status, 201);
  t.is(self.seen.length, 1);
  t.is(self.seen[0]!.forwardedBy, 'n1', 'marked as relayed: it is not held or relayed again');
});

test('answers other than NOT_LEADER are the client\'s: a 504 from the leader is not sent again', async (t) => {
  const target = scripted({ kind: 'settling' });
  const spare = await member(t, () => [201, {}]);
  const leader = await member(t, () => {
    // Another leader is there to take it, were the write sent again.
    target.now = { kind: 'relay', leaderId: 'n3', url: spare.url };
    return [504, { error: { code: 'TIMEOUT', message: 'the write may still be applied' } }];
  });
  target.now = { kind: 'relay', leaderId: 'n2', url: leader.url };
  const base = await node(t, target, localHandler(() => [500, {}]));
  const r = await post(base, '/servers', { ip: '10.0.0.1', port: 80 });
  t.is(r.status, 504);
  t.is(leader.seen.length, 1);
  t.is(spare.seen.length, 0);
});

test('the hold is bounded: with no leader for longer than holdMs the write is answered 503 NOT_LEADER', async (t) => {
  const target = scripted({ kind: 'settling' });
  const local: string[] = [];
  const base = await node(t, target, localHandler(() => notLeader(), local), 200);
  const r = await post(base, '/servers', { ip: '10.0.0.1', port: 80 });
  t.is(r.status, 503);
  t.like(r.body, { error: { code: 'NOT_LEADER' } });
  t.is(local.length, 1, 'answered by the local store as before, once the hold ended');
});

test('membership and cluster writes are not held: they are answered at once', async (t) => {
  const target = scripted({ kind: 'settling' });
  const local: string[] = [];
  const base = await node(t, target, localHandler(() => notLeader(), local), 60_000);
  const r = await post(base, '/cluster/members', { id: 'n4' });
  t.is(r.status, 503);
  t.is(local.length, 1);
});

test('a refused connection to the leader (nothing sent) is sent again to the next leader', async (t) => {
  const closed = createServer();
  await listen(closed);
  const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
  const next = await member(t, () => [201, { ok: 'next' }]);
  const target = scripted({ kind: 'relay', leaderId: 'n2', url: deadUrl });
  const base = await node(t, target, localHandler(() => [500, {}]));
  setTimeout(() => (target.now = { kind: 'relay', leaderId: 'n3', url: next.url }), 50);
  const r = await post(base, '/servers', { ip: '10.0.0.1', port: 80 });
  t.is(r.status, 201);
  t.is(next.seen.length, 1);
});
