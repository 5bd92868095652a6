// A node's life: readiness, logs, graceful shutdown, restarts with a durable pool.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import avaTest from 'ava';
import { request, WebSocket } from 'undici';
import { addOrigin, adminCall } from './helpers/admin.js';
import { makeTempDir, startNode, type WeldrNode } from './helpers/node.js';
import { startOrigin } from './helpers/origins.js';
import { nodeWithOrigins, receivedBy } from './helpers/fixtures.js';
import { reservedPort } from './helpers/ports.js';
import { runWeldr, spawnWeldr } from './helpers/process.js';
import { fetchVia, waitForRouting } from './helpers/routing.js';
import { within } from './helpers/wait.js';
import { limitedTest } from './helpers/limit.js';

// Each test starts its own node and origins: at most 2 at a time (helpers/limit.ts).
const test = limitedTest(avaTest, 2);

test('a started node is healthy and ready, and every log line carries nodeId', async (t) => {
  const node = await startNode(t, { id: 'life-1', store: 'memory' });
  t.is((await adminCall(node, 'GET', '/health')).status, 200);
  t.is((await adminCall(node, 'GET', '/ready')).status, 200);
  t.true(node.proc.lines.length > 0);
  t.true(node.proc.lines.every((l) => l.nodeId === 'life-1'), 'nodeId on every line');
  t.is(node.proc.stderr, '');
});

test('SIGTERM: an in-flight request finishes, then the node exits 0', async (t) => {
  const { node, origins: [origin] } = await nodeWithOrigins(t, ['life-slow'], { store: 'memory' });

  const pending = request(`${node.proxyUrl}/delay/1500`);
  await receivedBy(origin!, '/delay/1500');
  node.proc.signal('SIGTERM');
  const res = await within('the in-flight response', pending, 15_000);
  t.is(res.statusCode, 200);
  t.regex(await res.body.text(), /delayed 1500 ms/);
  const exit = await within('the node to exit', node.proc.exited, 15_000);
  t.deepEqual(exit, { code: 0, signal: null });
  t.truthy(node.proc.lines.find((l) => l.event === 'stopped'));
});

test('while draining after SIGTERM, /ready answers 503 and /health still 200', async (t) => {
  const { node, origins: [origin] } = await nodeWithOrigins(t, ['life-drain'], { store: 'memory' });
  const pending = request(`${node.proxyUrl}/delay/3000`);
  await receivedBy(origin!, '/delay/3000');
  node.proc.signal('SIGTERM');
  await node.proc.waitForLine('stopping', (l) => l.event === 'stopping');
  t.is((await adminCall(node, 'GET', '/ready')).status, 503);
  t.is((await adminCall(node, 'GET', '/health')).status, 200);
  t.is((await pending).statusCode, 200);
  t.is((await node.proc.exited).code, 0);
});

test('SIGTERM: the shutdown deadline cuts a request that takes too long', async (t) => {
  const { node, origins: [origin] } = await nodeWithOrigins(t, ['life-stuck'], { store: 'memory', args: ['--shutdown-timeout', '300ms'] });

  const pending = request(`${node.proxyUrl}/delay/30000`).then(
    (res) => res.body.text().then(() => 'completed', () => 'cut'),
    () => 'cut',
  );
  await receivedBy(origin!, '/delay/30000');
  node.proc.signal('SIGTERM');
  const exit = await within('the node to exit after its deadline', node.proc.exited, 15_000);
  t.is(exit.code, 0);
  t.not(await within('the client to see the end', pending, 15_000), 'completed');
});

test('a second signal exits at once', async (t) => {
  const { node, origins: [origin] } = await nodeWithOrigins(t, ['life-twice'], { store: 'memory', args: ['--shutdown-timeout', '60s'] });
  const pending = request(`${node.proxyUrl}/delay/30000`).catch(() => undefined);
  await receivedBy(origin!, '/delay/30000');
  node.proc.signal('SIGTERM');
  await node.proc.waitForLine('shutting down', (l) => l.event === 'stopping');
  node.proc.signal('SIGTERM');
  const exit = await within('the node to exit on the second signal', node.proc.exited, 10_000);
  t.is(exit.code, 143);
  t.truthy(node.proc.lines.find((l) => l.event === 'exit_now'), 'the last line is not lost');
  await pending;
});

// A join keeps retrying while the cluster cannot answer (60 s by default): one SIGTERM
// must end it, as it ends a running node, not wait for the join's deadline.
test('SIGTERM while a join keeps retrying: the node stops at once and exits 0', async (t) => {
  const nobody = await reservedPort();
  const node = spawnWeldr(
    t,
    'weldr joining',
    ['start', '--id', 'life-join', '--join', `http://127.0.0.1:${nobody}`, '--raft', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--workers', '0', '--data', makeTempDir(t)],
    { WELDR_CLUSTER_TOKEN: 'life-join-token-0123456789abcdefghij' },
  );
  await node.waitForLine('a join retry', (l) => l.event === 'join_retry');
  node.signal('SIGTERM');
  const exit = await within('the joining node to exit on one SIGTERM', node.exited, 5000);
  t.deepEqual(exit, { code: 0, signal: null });
  t.truthy(node.lines.find((l) => l.event === 'stopped'));
  t.falsy(node.lines.find((l) => l.event === 'exit_now'), 'stopped by the first signal, not by a timer or a second one');
});

test('--store level: the pool, the settings and remembered idempotency keys survive a restart', async (t) => {
  const origin = await startOrigin(t, 'life-durable');
  const dataDir = makeTempDir(t);
  const first = await startNode(t, { dataDir, store: 'level' });
  await addOrigin(first, origin);
  t.is((await adminCall(first, 'PATCH', '/settings', { balancer: 'least-connections' })).status, 200);
  const keyed = (node: WeldrNode) =>
    request(`${node.adminUrl}/servers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'e2e-restart-1' },
      body: JSON.stringify({ ip: '127.0.0.1', port: origin.port, weight: 7 }),
    }).then(async (res) => ({ status: res.statusCode, replayed: res.headers['idempotent-replayed'], body: await res.body.text() }));
  const original = await keyed(first);
  t.is(original.status, 200); // the server existed: an update
  await waitForRouting(first, ['life-durable']);
  t.is((await first.proc.stop('SIGTERM')).code, 0);

  const second = await startNode(t, { dataDir, store: 'level' });
  const servers = await adminCall<{ port: number; weight: number }[]>(second, 'GET', '/servers');
  t.is(servers.status, 200);
  t.deepEqual(servers.body.map((s) => [s.port, s.weight]), [[origin.port, 7]]);
  t.is((await adminCall<{ balancer: string }>(second, 'GET', '/settings')).body.balancer, 'least-connections');
  const retried = await keyed(second);
  t.is(retried.replayed, 'true', 'a retry after the restart is recognised');
  t.is(retried.body, original.body);
  await waitForRouting(second, ['life-durable']);
  t.is((await fetchVia(second, '/')).serverId, 'life-durable');
});

test('a data directory already in use: clear error, exit 1', async (t) => {
  const dataDir = makeTempDir(t);
  await startNode(t, { dataDir, store: 'level' });
  const second = spawnWeldr(t, 'weldr same-data', ['start', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data', dataDir]);
  const exit = await within('the second node to exit', second.exited, 15_000);
  t.is(exit.code, 1);
  t.regex(second.stderr, /data directory .* is in use by another process/);
});

// Each failure to open the store is one line naming the directory and the reason, and
// exit 1: never a stack trace (which a supervisor would log on every restart).
const CLUSTER_ARGS = ['--raft', '127.0.0.1:0', '--peers', 'n2=127.0.0.1:9', '--insecure-peers'];
const unusableDataDirs: [string, (dir: string) => string, RegExp, string[]?][] = [
  ['a file where the directory should be', (dir) => writeFile(join(dir, 'afile'), 'x'), /cannot use .*afile as the data directory: a file is in the way/],
  ['a path under a file', (dir) => join(writeFile(join(dir, 'afile'), 'x'), 'sub'), /cannot use .*afile\/sub as the data directory: a file is in the way/],
  ['an unreadable LevelDB (CURRENT corrupt)', (dir) => (writeFile(join(dir, 'CURRENT'), 'MANIFEST-999999\n'), dir), /cannot open data directory .*: IO error: .*MANIFEST-999999/],
  ['cluster mode, a file where the directory should be', (dir) => writeFile(join(dir, 'afile'), 'x'), /cannot use .*afile as the data directory: a file is in the way/, CLUSTER_ARGS],
  // node's recursive mkdir loops forever there (ENOENT under an existing parent): the node hung at start.
  ...(existsSync('/proc/self') ? [['a directory under /proc', () => '/proc/weldr-data', /cannot open data directory \/proc\/weldr-data: ENOENT/] as [string, (dir: string) => string, RegExp]] : []),
];
for (const [name, prepare, pattern, extra = []] of unusableDataDirs) {
  test(`an unusable data directory (${name}): one clear line, exit 1`, async (t) => {
    const dataDir = prepare(makeTempDir(t));
    const { code, stderr } = await runWeldr(t, ['start', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data', dataDir, ...extra]);
    t.is(code, 1, stderr);
    t.regex(stderr, pattern);
    t.is(stderr.trim().split('\n').length, 1, stderr);
    t.false(/\n\s+at /.test(stderr), 'no stack trace');
  });
}

function writeFile(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

test('an admin listener off loopback without a token does not start: exit 2, the fix in the message', async (t) => {
  // 192.0.2.1 (TEST-NET-1) is never local: had the check let it through, the bind would fail (exit 1).
  const { code, stdout, stderr } = await runWeldr(t, ['start', '--store', 'memory', '--listen', '127.0.0.1:0', '--admin', '192.0.2.1:0']);
  t.is(code, 2, stderr);
  t.regex(stderr, /the admin API on 192\.0\.2\.1:0 is reachable from other hosts and has no token.*Set WELDR_ADMIN_TOKEN.*or bind --admin to 127\.0\.0\.1/);
  t.is(stdout, '', 'nothing started');
});

test('with a token, an admin listener off loopback is warned about: its reads are open', async (t) => {
  const { code, stdout } = await runWeldr(t, ['start', '--store', 'memory', '--listen', '127.0.0.1:0', '--admin', '192.0.2.1:0'], { WELDR_ADMIN_TOKEN: 'lifecycle-admin-token-0123' });
  t.is(code, 1);
  const warning = stdout.split('\n').filter((l) => l.includes('"admin_exposed"'));
  t.is(warning.length, 1, stdout);
  t.regex(warning[0] ?? '', /"level":40.*reads \(pool, stats, metrics\) are open/);
  t.false(stdout.includes('lifecycle-admin-token-0123'), 'the token is not in the log');
});

test('a port already in use: clear error, exit 1, nothing left running', async (t) => {
  const first = await startNode(t, { store: 'memory' });
  const dataDir = makeTempDir(t);
  const second = spawnWeldr(t, 'weldr clash', ['start', '--listen', `127.0.0.1:${first.proxyPort}`, '--admin', '127.0.0.1:0', '--data', dataDir]);
  const exit = await within('the clashing node to exit', second.exited, 15_000);
  t.is(exit.code, 1);
  t.regex(second.stdout + second.stderr, /address already in use/);
});

// Upgraded tunnels are not tracked by the HTTP server after the 101; the proxy's
// close() has to end them itself at the deadline, or they would outlive "stopped" and
// keep the process alive until weldr's 5 s exit safety net.
test('SIGTERM with an open WebSocket: the deadline closes the tunnel and the node exits 0', async (t) => {
  const { node } = await nodeWithOrigins(t, ['life-ws'], { store: 'memory', args: ['--shutdown-timeout', '300ms'] });
  const ws = new WebSocket(`ws://127.0.0.1:${node.proxyPort}/ws`);
  await within('the WebSocket to open', new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('websocket error'));
  }), 10_000);
  const closed = new Promise<void>((resolve) => {
    ws.onclose = () => resolve();
  });
  node.proc.signal('SIGTERM');
  await node.proc.waitForLine('stopped', (l) => l.event === 'stopped');
  // Far below the safety net; only event propagation has to happen here.
  await within('the client to see the tunnel close', closed, 2_000);
  t.is((await within('the node to exit', node.proc.exited, 15_000)).code, 0);
});
