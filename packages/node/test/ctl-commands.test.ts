// The operator commands run in-process (runCtl) against a real admin API — createAdminApp
// over an in-memory pool on a loopback listener — and, for the membership and snapshot
// commands, against a small fake of the documented /cluster/members and /cluster/snapshot
// contract (docs/admin-api.md#membership). The real cluster is exercised end to end in
// test/ctl.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { createAdminApp, silentLogger, type ClusterInfo } from '@weldr/admin';
import type { PoolSettings, ServerRecord } from '@weldr/store';
import { MemoryPoolStore } from '@weldr/store/testing';
import { runCtl } from '../src/ctl/run.js';

const dir = mkdtempSync(join(tmpdir(), 'weldr-ctl-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Api {
  readonly url: string;
  readonly pool: MemoryPoolStore;
}

const clusterInfo = (): ClusterInfo => ({ nodeId: 'n1', role: 'active', leaderId: 'n1', term: 0, commitIndex: 0, appliedIndex: 0, members: [{ id: 'n1', address: '127.0.0.1:8688', role: 'voter' }] });

async function listen(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A real admin API over an in-memory pool. */
async function startApi(t: ExecutionContext, token?: string): Promise<Api> {
  const pool = new MemoryPoolStore();
  const app = createAdminApp({
    pool,
    stats: {
      stats: () => ({
        client: { success: 10, failed: 2 },
        server: { success: 9, failed: 3 },
        failOpen: false,
        servers: [{ id: '10.0.0.1:80', ip: '10.0.0.1', port: 80, weight: 1, success: 9, failed: 3, health: 'healthy', ejected: false, draining: false, active: 1, lastCheck: { at: Date.now() - 1500, ok: true, status: 200 } }],
      }),
    },
    cluster: { info: clusterInfo, isActive: () => true },
    metrics: new Registry(),
    log: silentLogger,
    ...(token === undefined ? {} : { auth: { token } }),
  });
  return { url: await listen(t, app.callback()), pool };
}

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function ctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const [noun, ...rest] = args;
  const code = await runCtl(noun!, rest, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    readFile: (p) => readFileSync(p, 'utf8'),
    writeFile: (p, s) => writeFileSync(p, s),
  }, env);
  return { code, out, err };
}

const json = <T>(r: Run): T => JSON.parse(r.out) as T;

test('servers add, list, drain, remove: one atomic change each, tables and --json', async (t) => {
  const api = await startApi(t);
  const E = ['--endpoints', api.url];
  const added = await ctl(['servers', 'add', '10.0.0.1:80', '[::1]:8081', '--weight', '3', ...E]);
  t.is(added.code, 0, added.err);
  t.regex(added.out, /^10\.0\.0\.1:80: added\n\[::1\]:8081: added\n\(one atomic change at index 1\)\n$/);
  t.is(api.pool.snapshot().index, 1);

  const list = await ctl(['servers', 'list', ...E]);
  t.regex(list.out, /^SERVER +WEIGHT +DRAINING +HEALTH CHECK\n10\.0\.0\.1:80 +3 +no +defaults\n\[::1\]:8081 +3 +no +defaults\n$/);
  const listed = json<ServerRecord[]>(await ctl(['servers', 'list', '--json', ...E]));
  t.deepEqual(listed.map((s) => [s.id, s.weight]), [['10.0.0.1:80', 3], ['[::1]:8081', 3]]);

  const drained = await ctl(['servers', 'drain', '10.0.0.1:80', '--json', ...E]);
  t.like(json<{ index: number; results: { status: string; server: ServerRecord }[] }>(drained), { index: 2, results: [{ status: 'updated', server: { draining: true } }] });
  t.regex((await ctl(['servers', 'drain', '10.0.0.1:80', ...E])).out, /was already draining/);
  t.regex((await ctl(['servers', 'drain', '10.0.0.1:80', '--undo', ...E])).out, /serving again/);

  const removed = await ctl(['servers', 'remove', '[::1]:8081', ...E]);
  t.is(removed.code, 0);
  t.deepEqual(api.pool.snapshot().servers.map((s) => s.id), ['10.0.0.1:80']);
});

test('a refused change is exit 4, names the server as typed, and changes nothing (all or nothing)', async (t) => {
  const api = await startApi(t);
  const E = ['--endpoints', api.url];
  await ctl(['servers', 'add', '10.0.0.1:80', ...E]);
  const before = api.pool.snapshot();
  const r = await ctl(['servers', 'remove', '10.0.0.1:80', '10.0.0.9:80', ...E]);
  t.is(r.code, 4);
  t.is(r.err, 'weldr servers remove: 404 NOT_FOUND: server 10.0.0.9:80 is not in the pool\n');
  t.deepEqual(api.pool.snapshot().servers, before.servers);
  const bad = await ctl(['servers', 'add', '10.0.0.1:80', '10.0.0.300:80', ...E]);
  t.is(bad.code, 4);
  t.regex(bad.err, /10\.0\.0\.300:80: .*ip/);
  t.deepEqual(api.pool.snapshot().servers, before.servers);
  const withJson = await ctl(['servers', 'remove', '10.0.0.9:80', '--json', ...E]);
  t.like(json<{ error: Record<string, unknown> }>(withJson), { error: { code: 'NOT_FOUND', status: 404, exitCode: 4 } });
});

test('usage errors are exit 2 and contact nobody; --help is exit 0', async (t) => {
  const cases: [string[], RegExp][] = [
    [['servers'], /weldr servers: needs a command: list, add, remove, drain, export, import/],
    [['servers', 'frob'], /unknown command "frob"/],
    [['servers', 'add'], /weldr servers add: needs IP:PORT…/],
    [['servers', 'add', '10.0.0.1:80', '--weight', '0'], /--weight must be an integer 1-1000/],
    [['servers', 'add', '10.0.0.1'], /needs a port/],
    [['servers', 'list', 'extra'], /takes no arguments/],
    [['cluster', 'status', '--endpoints', 'ftp://x:1'], /--endpoints: "ftp:\/\/x:1" must be an http/],
    [['settings', 'set', 'balancer'], /KEY=VALUE/],
    [['member', 'add', 'n4', '--raft', '10.0.0.4:8688'], /needs --admin/],
    [['member', 'remove', 'bad id!'], /member id "bad id!"/],
    [['servers', 'import', join(dir, 'missing.json')], /cannot read/],
  ];
  for (const [args, pattern] of cases) {
    // An endpoint nobody listens on: a usage error must not get as far as trying it.
    const r = await ctl([...args, ...(args.includes('--endpoints') ? [] : ['--endpoints', 'http://127.0.0.1:9'])]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.regex(r.err, pattern, args.join(' '));
    t.is(r.err.trim().split('\n').length, 1, r.err);
  }
  const help = await ctl(['servers', 'import', '--help']);
  t.is(help.code, 0);
  t.regex(help.out, /Usage: weldr servers import FILE \[options\]/);
  t.regex(help.out, /--replace/);
  t.regex(help.out, /Exit codes: 0 done; 2 bad usage/);
  t.regex((await ctl(['stats', '--help'])).out, /Usage: weldr stats \[options\]/);
});

test('an admin token comes from --token or WELDR_ADMIN_TOKEN; without it a write is refused with the way out', async (t) => {
  const api = await startApi(t, 'tok-123');
  const E = ['--endpoints', api.url];
  const refused = await ctl(['servers', 'add', '10.0.0.1:80', ...E]);
  t.is(refused.code, 4);
  t.regex(refused.err, /401 UNAUTHORIZED/);
  t.regex(refused.err, /pass --token TOKEN or set WELDR_ADMIN_TOKEN/);
  t.is((await ctl(['servers', 'add', '10.0.0.1:80', '--token', 'tok-123', ...E])).code, 0);
  t.is((await ctl(['servers', 'add', '10.0.0.2:80', ...E], { WELDR_ADMIN_TOKEN: 'tok-123' })).code, 0);
  t.is((await ctl(['servers', 'add', '10.0.0.3:80', '--token', 'wrong', ...E])).code, 4);
  t.is(api.pool.snapshot().servers.length, 2);
});

test('export → import into a fresh pool reproduces the servers and settings exactly', async (t) => {
  const source = await startApi(t);
  const S = ['--endpoints', source.url];
  t.is((await ctl(['settings', 'set', 'balancer=weighted-round-robin', 'healthCheck.path=/healthz', 'healthCheck.intervalMs=5000', 'passiveHealth.consecutiveFailures=7', ...S])).code, 0);
  await source.pool.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80, weight: 7, healthCheck: { path: '/ready', timeoutMs: 300 } });
  await source.pool.propose({ type: 'AddServer', ip: '::1', port: 8081 });
  await source.pool.propose({ type: 'AddServer', ip: '10.0.0.2', port: 80 });
  await source.pool.propose({ type: 'UpdateServer', ip: '10.0.0.2', port: 80, draining: true });
  const file = join(dir, 'export.json');
  const exported = await ctl(['servers', 'export', file, ...S]);
  t.is(exported.code, 0, exported.err);
  t.regex(exported.out, /wrote 3 servers and the settings \(index 5\)/);

  const target = await startApi(t);
  await target.pool.propose({ type: 'AddServer', ip: '10.0.0.2', port: 80, weight: 9 }); // already there, other weight
  const imported = await ctl(['servers', 'import', file, '--endpoints', target.url]);
  t.is(imported.code, 0, imported.err);
  t.regex(imported.out, /imported 3 servers from .* in one atomic change at index 2: 2 added, 1 updated, 0 unchanged, 0 removed; settings applied/);
  const shape = (s: ServerRecord) => ({ id: s.id, ip: s.ip, port: s.port, weight: s.weight, healthCheck: s.healthCheck, draining: s.draining });
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
  t.deepEqual(target.pool.snapshot().servers.map(shape).sort(byId), source.pool.snapshot().servers.map(shape).sort(byId));
  t.deepEqual(target.pool.snapshot().settings, source.pool.snapshot().settings);
  t.is(target.pool.snapshot().index, 2, 'one log entry');

  // The same file again changes nothing but the index.
  const again = await ctl(['servers', 'import', file, '--endpoints', target.url, '--json']);
  t.true(json<{ results: { status: string }[] }>(again).results.every((r) => r.status === 'unchanged' || r.status === 'settings'));
});

test('import: a plain server list, --replace, --dry-run, and a bad entry that changes nothing', async (t) => {
  const api = await startApi(t);
  const E = ['--endpoints', api.url];
  await api.pool.propose({ type: 'AddServer', ip: '10.0.0.9', port: 80 });
  const list = join(dir, 'haproxy.txt');
  writeFileSync(list, 'server a 10.0.0.1:80 weight 2 check\nserver b 10.0.0.2:80 disabled\n');
  const dry = await ctl(['servers', 'import', list, '--replace', '--dry-run', ...E]);
  t.is(dry.code, 0);
  t.deepEqual(json<{ commands: { type: string }[] }>(dry).commands.map((c) => c.type), ['RemoveServer', 'AddServer', 'AddServer', 'UpdateServer']);
  t.regex(dry.err, /line 1: ignored check/);
  t.is(api.pool.snapshot().servers.length, 1, 'dry run changed nothing');

  const replaced = await ctl(['servers', 'import', list, '--replace', ...E]);
  t.is(replaced.code, 0, replaced.err);
  t.deepEqual(api.pool.snapshot().servers.map((s) => [s.id, s.weight, s.draining]), [['10.0.0.1:80', 2, false], ['10.0.0.2:80', 1, true]]);

  const before = api.pool.snapshot();
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ format: 'weldr-pool/v1', servers: [{ ip: '10.0.0.3', port: 80 }, { ip: '10.0.0.4', port: 80, weight: 5000 }] }));
  const refused = await ctl(['servers', 'import', bad, ...E]);
  t.is(refused.code, 4);
  t.regex(refused.err, /10\.0\.0\.4:80: .*weight/);
  t.deepEqual(api.pool.snapshot().servers, before.servers);
});

test('settings get and set', async (t) => {
  const api = await startApi(t);
  const E = ['--endpoints', api.url];
  t.is((await ctl(['settings', 'get', 'balancer', ...E])).out, 'round-robin\n');
  t.regex((await ctl(['settings', 'get', ...E])).out, /^balancer +round-robin\nhealthCheck\.enabled +true\n/);
  t.deepEqual(json((await ctl(['settings', 'get', 'healthCheck.expectedStatus', '--json', ...E]))), { min: 200, max: 399 });
  const set = await ctl(['settings', 'set', 'balancer=least-connections', 'healthCheck.enabled=false', ...E]);
  t.is(set.code, 0, set.err);
  t.like(api.pool.snapshot().settings, { balancer: 'least-connections', healthCheck: { enabled: false } });
  const refused = await ctl(['settings', 'set', 'healthCheck.timeoutMs=5000', ...E]);
  t.is(refused.code, 4);
  t.regex(refused.err, /healthCheck\.timeoutMs must be less than the effective intervalMs/);
  t.is((await ctl(['settings', 'get', 'nope', ...E])).code, 2);
});

test('stats and cluster status of a single node', async (t) => {
  const api = await startApi(t);
  const E = ['--endpoints', api.url];
  const stats = await ctl(['stats', ...E]);
  t.is(stats.code, 0, stats.err);
  t.regex(stats.out, /member n1 \(active\)/);
  t.regex(stats.out, /client requests: 10 answered, 2 failed/);
  t.regex(stats.out, /10\.0\.0\.1:80 +healthy +no +no +1 +9 +3 +ok 200 2s ago/);
  t.like(json(await ctl(['stats', '--json', ...E])), { nodeId: 'n1', client: { success: 10 }, servers: [{ id: '10.0.0.1:80' }] });
  const status = json<{ leaderId: string; members: Record<string, unknown>[] }>(await ctl(['cluster', 'status', '--json', ...E]));
  t.is(status.leaderId, 'n1');
  t.like(status.members[0], { id: 'n1', raftAddress: '127.0.0.1:8688', adminUrl: api.url, role: 'voter', raftRole: 'leader', active: true, term: 0, lag: null, lastContactMs: null, reachable: true });
  const transfer = await ctl(['cluster', 'transfer', ...E]);
  t.is(transfer.code, 4);
  t.regex(transfer.err, /409 CONFLICT: a single node has no other member/);
});

/** A fake of the documented membership and snapshot API: three voters, one change at a time. */
async function fakeMembership(t: ExecutionContext): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const members = new Map<string, Record<string, unknown>>([
    ['n1', { id: 'n1', role: 'voter', raftAddress: '127.0.0.1:8688', adminAddress: '127.0.0.1:8687', autoPromote: true, live: true }],
    ['n2', { id: 'n2', role: 'voter', raftAddress: '127.0.0.1:8698', adminAddress: '127.0.0.1:8697', autoPromote: true, live: false }],
  ]);
  const url = await listen(t, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}${body === '' ? '' : ` ${body}`}`);
      const send = (status: number, value?: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'x-weldr-index': '42', ...(value === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...headers });
        res.end(value === undefined ? undefined : JSON.stringify(value));
      };
      const path = new URL(req.url!, 'http://x');
      const force = path.searchParams.get('force') === 'true';
      const one = /^\/cluster\/members\/([^/]+)(\/promote)?$/.exec(path.pathname);
      if (req.method === 'GET' && path.pathname === '/cluster/members') return send(200, { clusterId: 'c0ffee', leaderId: 'n1', members: [...members.values()] });
      if (req.method === 'POST' && path.pathname === '/cluster/members') {
        const m = JSON.parse(body) as Record<string, unknown>;
        const record = { ...m, role: 'learner', autoPromote: m['autoPromote'] ?? true };
        members.set(String(m['id']), record);
        return send(201, record);
      }
      if (one !== null) {
        const m = members.get(one[1]!);
        if (m === undefined) return send(404, { error: { code: 'NOT_FOUND', message: `${one[1]} is not a member` } });
        if (req.method === 'POST' && one[2] !== undefined) {
          if (!force) return send(409, { error: { code: 'NOT_CAUGHT_UP', message: `${one[1]} is 12 entries behind` } });
          m['role'] = 'voter';
          return send(200, m);
        }
        if (req.method === 'DELETE') {
          if (!force) return send(409, { error: { code: 'QUORUM_AT_RISK', message: 'n2 is not live: the other voters could not commit without it' } });
          members.delete(one[1]!);
          return send(204);
        }
      }
      if (req.method === 'GET' && path.pathname === '/cluster/snapshot') {
        return send(200, { format: 'weldr-snapshot', version: 1, clusterId: 'c0ffee', index: 42, takenBy: 'n1', takenAt: '2026-12-06T10:00:00.000Z', state: { servers: [] } });
      }
      send(404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path.pathname}` } });
    });
  });
  return { url, requests };
}

test('member list, add, promote, remove against the documented membership API', async (t) => {
  const api = await fakeMembership(t);
  const E = ['--endpoints', api.url];
  const list = await ctl(['member', 'list', ...E]);
  t.is(list.code, 0, list.err);
  t.regex(list.out, /^ID +ROLE +RAFT ADDRESS +ADMIN ADDRESS +PROXY ADDRESS +AUTO-PROMOTE +LIVE\nn1 +voter +127\.0\.0\.1:8688 +127\.0\.0\.1:8687 +unknown +yes +yes\nn2 .* no\n/);
  t.regex(list.out, /cluster c0ffee; leader: n1/);

  const add = await ctl(['member', 'add', 'n4', '--raft', '10.0.0.4:8688', '--admin', '10.0.0.4:8687', '--proxy', '10.0.0.4:8080', '--no-auto-promote', ...E]);
  t.is(add.code, 0, add.err);
  t.regex(add.out, /n4 added as a learner\. Start it on an empty data directory with --join http:\/\/127\.0\.0\.1:\d+/);
  t.regex(api.requests.at(-1)!, /^POST \/cluster\/members \{"id":"n4","raftAddress":"10\.0\.0\.4:8688","adminAddress":"10\.0\.0\.4:8687","proxyAddress":"10\.0\.0\.4:8080","autoPromote":false\}$/);

  const notCaughtUp = await ctl(['member', 'promote', 'n4', ...E]);
  t.is(notCaughtUp.code, 4);
  t.regex(notCaughtUp.err, /409 NOT_CAUGHT_UP: n4 is 12 entries behind/);
  const forced = await ctl(['member', 'promote', 'n4', '--force', '--json', ...E]);
  t.like(json(forced), { id: 'n4', role: 'voter' });
  t.is(api.requests.at(-1), 'POST /cluster/members/n4/promote?force=true');

  const atRisk = await ctl(['member', 'remove', 'n1', ...E]);
  t.is(atRisk.code, 4);
  t.regex(atRisk.err, /409 QUORUM_AT_RISK/);
  const removed = await ctl(['member', 'remove', 'n1', '--force', '--json', ...E]);
  t.deepEqual(json(removed), { removed: 'n1', index: 42 });
  t.is((await ctl(['member', 'remove', 'n9', ...E])).code, 4);
});

test('snapshot save writes the document as served; a member without the API is exit 4 with an upgrade hint', async (t) => {
  const api = await fakeMembership(t);
  const file = join(dir, 'backup.json');
  const saved = await ctl(['snapshot', 'save', file, '--endpoints', api.url]);
  t.is(saved.code, 0, saved.err);
  t.regex(saved.out, /saved the state at index 42 \(taken by n1\) to .*backup\.json/);
  t.like(JSON.parse(readFileSync(file, 'utf8')), { format: 'weldr-snapshot', index: 42, clusterId: 'c0ffee' });
  t.is(api.requests.at(-1), 'GET /cluster/snapshot');

  // A member of an older version, without the route: 404 from its router.
  const old = await listen(t, (req, res) => {
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}` } }));
  });
  const r = await ctl(['snapshot', 'save', join(dir, 'none.json'), '--endpoints', old]);
  t.is(r.code, 4);
  t.regex(r.err, /runs a weldr without this API/);
  // Today's single node serves the route but keeps no Raft state in this harness (a memory pool without members).
  const single = await startApi(t);
  const s = await ctl(['snapshot', 'save', join(dir, 'single.json'), '--endpoints', single.url]);
  t.is(s.code, 4);
  t.regex(s.err, /409 CONFLICT/);
});
